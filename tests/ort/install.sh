#!/usr/bin/env bash
# Installs the pinned onnxruntime-node into DIR (never into the source tree).
set -euo pipefail

ORT_VERSION=1.30.0

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: install.sh DIR" >&2
  exit 2
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)
pkg="$dir/node_modules/onnxruntime-node"

# Prints the loaded binding's version, or fails.
probe() {
  node -e '
    const ort = require(process.argv[1]);
    if (typeof ort.InferenceSession?.create !== "function") throw new Error("no InferenceSession");
    console.log(ort.env.versions.node);
  ' "$pkg" 2>&1
}

if [ "$(probe || true)" = "$ORT_VERSION" ]; then
  echo "onnxruntime-node@$ORT_VERSION already installed in $dir"
  exit 0
fi

# Whatever is there is the wrong version or broken: drop it, and npm's record
# of it, so that npm installs afresh rather than trusting that record.
rm -rf "$pkg" "$dir/node_modules/onnxruntime-common" "$dir/node_modules/.package-lock.json"

log="$dir/npm-install.log"
# --ignore-scripts: the package's postinstall would try to download extra
# binaries; the CPU library for linux x64 is already inside the tarball.
if ! npm install --no-save --no-package-lock --no-audit --no-fund --ignore-scripts \
    --prefix "$dir" "onnxruntime-node@$ORT_VERSION" >"$log" 2>&1; then
  echo "install.sh: npm install onnxruntime-node@$ORT_VERSION into $dir failed:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi

if ! version=$(probe) || [ "$version" != "$ORT_VERSION" ]; then
  echo "install.sh: onnxruntime-node@$ORT_VERSION was installed in $dir but does not load:" >&2
  echo "$version" >&2
  exit 1
fi
echo "installed onnxruntime-node@$ORT_VERSION into $dir"
