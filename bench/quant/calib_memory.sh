#!/usr/bin/env bash
# Peak memory of static INT8 calibration on a torchvision ResNet-18 (random
# weights) with 64 and 256 calibration images of 3x224x224, for minmax and
# entropy (histogram) calibration at two batch sizes. The calibration file is
# read whole, so peak RSS is: the model + the .npy + what calibration holds
# (the executor's live set for one batch, one observer per activation). The
# last column subtracts the first two; it should follow the batch size, not
# the number of samples.
# usage: bench/quant/calib_memory.sh [BUILD_DIR] [WORK_DIR]
# METHODS, BATCHES and SAMPLES (space-separated lists) narrow the grid; each
# run on 256 samples takes minutes on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/bench/common.sh" "$@"
WORK="${2:-$BUILD/bench-calib}"
mkdir -p "$WORK"
if [ ! -f "$WORK/resnet18.onnx" ] || [ ! -f "$WORK/resnet18_x.npy" ]; then
  /usr/bin/python3 "$ROOT/bench/runtime/make_models.py" --out "$WORK" --images 256 >/dev/null
fi
model_mb=$(stat -c %s "$WORK/resnet18.onnx" | awk '{printf "%.0f", $1/1e6}')
npy_mb=$(stat -c %s "$WORK/resnet18_x.npy" | awk '{printf "%.0f", $1/1e6}')
echo "model: ResNet-18, ${model_mb} MB; calibration file: 256 images, ${npy_mb} MB (read whole)"
printf '%-9s %6s %8s %10s %14s %22s\n' method batch samples "time (s)" "peak RSS (MB)" "RSS - model - .npy (MB)"
for method in ${METHODS:-minmax entropy}; do
  for batch in ${BATCHES:-8 32}; do
    for samples in ${SAMPLES:-64 256}; do
      /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$MP" quantize "$WORK/resnet18.onnx" -o "$WORK/out.onnx" \
        --mode static --calib-data "$WORK/resnet18_x.npy" --samples "$samples" --batch "$batch" \
        --calibrate "$method" -q --no-check >/dev/null
      read -r t m <"$WORK/time.txt"
      printf '%-9s %6d %8d %10.1f %14d %22d\n' "$method" "$batch" "$samples" "$t" "$((m / 1024))" \
        "$((m / 1024 - model_mb - npy_mb))"
    done
  done
done
rm -f "$WORK/out.onnx" "$WORK/time.txt"
