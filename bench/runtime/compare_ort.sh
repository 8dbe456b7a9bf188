#!/usr/bin/env bash
# Executor vs ONNX Runtime, both on one thread, same inputs, same run:
# the digits CNN (360 test images) and a torchvision ResNet-18 with random
# weights (8 images of 3x224x224). Reports the fastest of several passes of
# each and the ratio (ours / ORT). Target: <= 3x.
#
#   bash bench/runtime/compare_ort.sh [BUILD_DIR]   (default: build)
#
# Needs the built CLI in BUILD_DIR and ONNX Runtime in BUILD_DIR/ort
# (bash tests/ort/install.sh BUILD_DIR/ort). Generated models go to
# BUILD_DIR/bench-runtime and are never committed.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-build}" && pwd)
cli=$build/tools/modelpress/modelpress
out=$build/bench-runtime
repeat=${REPEAT:-5}
export MODELPRESS_ORT_DIR=${MODELPRESS_ORT_DIR:-$build/ort}
[ -x "$cli" ] || { echo "compare_ort.sh: no CLI at $cli; build first" >&2; exit 2; }
[ -f "$out/resnet18.onnx" ] || /usr/bin/python3 "$src/bench/runtime/make_models.py" --out "$out" >&2

ours() {  # fastest of $repeat passes of modelpress eval
  local best=
  for _ in $(seq "$repeat"); do
    s=$("$cli" eval "$1" --input "$2" --batch "$3" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
    best=$(/usr/bin/python3 -c "print(min(float('$s'), float('${best:-inf}')))")
  done
  echo "$best"
}

printf '%-12s %8s %6s %12s %12s %7s\n' model samples batch "ours (s)" "ORT (s)" ratio
run() {
  local name=$1 model=$2 x=$3 batch=$4
  local o r samples
  o=$(ours "$model" "$x" "$batch")
  r=$(node "$src/bench/runtime/ort_time.mjs" "$model" "$x" --batch "$batch" --repeat "$repeat" --threads 1)
  samples=$(echo "$r" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["samples"])')
  r=$(echo "$r" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  /usr/bin/python3 -c "print('%-12s %8d %6d %12.4f %12.4f %6.2fx' % ('$name', $samples, $batch, $o, $r, $o / $r))"
}
run digits_cnn "$src/sample_models/digits_cnn.onnx" "$src/sample_models/digits_test_img.npy" 32
run resnet18 "$out/resnet18.onnx" "$out/resnet18_x.npy" 8
