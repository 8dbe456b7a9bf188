#!/usr/bin/env bash
# Top-1 accuracy of the digits models after magnitude pruning, measured with
# ONNX Runtime: global and layer-wise at several sparsities, and 2:4.
# usage: bench/prune/accuracy_table.sh [BUILD_DIR]   (prints a Markdown table)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/bench/common.sh" "$@"
ort_setup

echo "| model | dense | pruning | 50% | 70% | 80% | 90% | 95% |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for m in mlp cnn; do
  model="$S/digits_$m.onnx"
  x="$S/digits_test_x.npy"
  [ "$m" = cnn ] && x="$S/digits_test_img.npy"
  y="$S/digits_test_y.npy"
  dense=$(top1 "$model" "$x" "$y")
  for scope in global layer; do
    row="| digits_$m | $dense | $scope |"
    for s in 0.5 0.7 0.8 0.9 0.95; do
      "$MP" prune unstructured "$model" -o "$tmp/p.onnx" --sparsity "$s" --scope "$scope" -q
      row="$row $(top1 "$tmp/p.onnx" "$x" "$y") |"
    done
    echo "$row"
  done
  "$MP" prune nm "$model" -o "$tmp/nm.onnx" -q
  echo "| digits_$m | $dense | 2:4 | $(top1 "$tmp/nm.onnx" "$x" "$y") (50% of the eligible weights) | | | | |"
done
