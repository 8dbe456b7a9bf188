#!/usr/bin/env bash
# Installs the build into a temporary prefix and builds a separate project
# against it with find_package(modelpress); runs the installed CLI.
# usage: check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1"
src="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/tests/install/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
out=$("$tmp/consumer/consumer" "$src/sample_models/digits_mlp.onnx")
echo "$out"
[ "$out" = "linear weights: 3" ]
# The installed executable finds its plugin (every subcommand but unpack) and
# restores what it packed.
"$tmp/prefix/bin/modelpress" pack "$src/sample_models/digits_mlp.onnx" -o "$tmp/m.mpk" --level 3 >/dev/null
"$tmp/prefix/bin/modelpress" unpack "$tmp/m.mpk" -o "$tmp/m.onnx" >/dev/null
cmp "$tmp/m.onnx" "$src/sample_models/digits_mlp.onnx"
