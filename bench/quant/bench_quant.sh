#!/usr/bin/env bash
# Weight-only INT8 quantization of the ~400 MB synthetic MLP against a plain
# read+write of the same file (modelpress convert), both measured in this run:
# best wall time of 3 and the peak RSS of that run.
# usage: bench/quant/bench_quant.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/bench/common.sh" "$@"
mlp_setup quant "${2:-}"
measure "plain read+write (convert)" "$MP" convert "$WORK/mlp.onnx" -o "$WORK/out.onnx" --no-check
measure "quantize weight-only" "$MP" quantize "$WORK/mlp.onnx" -o "$WORK/out.onnx" -q --no-check
measure "quantize weight-only + checker" "$MP" quantize "$WORK/mlp.onnx" -o "$WORK/out.onnx" -q
ls -l "$WORK"/out.onnx* | awk '{s+=$5} END {printf "output: %.0f MB\n", s/1e6}'
