#!/usr/bin/env bash
# usage: selftest.sh DIR [CONFORMANCE_DIR]
# Installs onnxruntime-node into DIR and tests the oracle scripts; the ONNX
# conformance models (default: shared/onnx-conformance beside the repo) are
# used when present and skipped otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: selftest.sh DIR [CONFORMANCE_DIR]" >&2
  exit 2
fi
bash "$here/install.sh" "$1"
MODELPRESS_ORT_DIR=$(cd "$1" && pwd)
export MODELPRESS_ORT_DIR
exec node "$here/selftest.mjs" "${2:-$here/../../../shared/onnx-conformance}"
