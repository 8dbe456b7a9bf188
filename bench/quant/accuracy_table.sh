#!/usr/bin/env bash
# Accuracy of quantized sample models measured with ONNX Runtime: top-1 of
# the digits models (calibrated on digits_train_*, tested on digits_test_*)
# and the cosine similarity of resnet_mini / mobilenet_block outputs against
# float32 on held-out random inputs, for every mode and calibration method.
# usage: bench/quant/accuracy_table.sh [BUILD_DIR]   (prints Markdown tables)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/bench/common.sh" "$@"
ort_setup

echo "| model | float | weight-only | static minmax | static percentile | static entropy |"
echo "| --- | --- | --- | --- | --- | --- |"
for m in mlp cnn; do
  model="$S/digits_$m.onnx"
  x="$S/digits_test_x.npy"; train="$S/digits_train_x.npy"
  [ "$m" = cnn ] && x="$S/digits_test_img.npy" && train="$S/digits_train_img.npy"
  y="$S/digits_test_y.npy"
  "$MP" quantize "$model" -o "$tmp/w.onnx" -q
  row="| digits_$m | $(top1 "$model" "$x" "$y") | $(top1 "$tmp/w.onnx" "$x" "$y") |"
  for c in minmax percentile entropy; do
    "$MP" quantize "$model" -o "$tmp/s.onnx" -q --mode static --calib-data "$train" --calibrate "$c"
    row="$row $(top1 "$tmp/s.onnx" "$x" "$y") |"
  done
  echo "$row"
done

# Held-out random inputs: 64 calibration samples, 32 test samples, U(-1, 1).
/usr/bin/python3 - "$tmp" <<'PY'
import sys, numpy as np
d = sys.argv[1]
np.save(f"{d}/calib.npy", np.random.default_rng(1).uniform(-1, 1, (64, 3, 32, 32)).astype(np.float32))
np.save(f"{d}/held.npy", np.random.default_rng(2).uniform(-1, 1, (32, 3, 32, 32)).astype(np.float32))
PY
echo
echo "| model | quantization | ONNX Runtime opt level | minmax | percentile | entropy |"
echo "| --- | --- | --- | --- | --- | --- |"
for m in resnet_mini mobilenet_block; do
  model="$S/$m.onnx"
  "$MP" quantize "$model" -o "$tmp/w.onnx" -q
  echo "| $m | weight-only | all | $(cosine "$model" "$tmp/w.onnx" "$tmp/held.npy" all) | | |"
  for variant in "uint8:basic:" "uint8:all:" "uint8:all:--reduce-range" "int8:basic:" "int8:all:--reduce-range"; do
    IFS=: read -r act opt flags <<<"$variant"
    row="| $m | static $act $flags | $opt |"
    for c in minmax percentile entropy; do
      # shellcheck disable=SC2086
      "$MP" quantize "$model" -o "$tmp/s.onnx" -q --mode static --calib-data "$tmp/calib.npy" --calibrate "$c" --activations "$act" $flags
      row="$row $(cosine "$model" "$tmp/s.onnx" "$tmp/held.npy" "$opt") |"
    done
    echo "$row"
  done
done
