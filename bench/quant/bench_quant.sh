#!/usr/bin/env bash
# Weight-only INT8 quantization of the ~400 MB synthetic MLP against a plain
# read+write of the same file (modelpress convert), both measured in this run:
# best wall time of 3 and the peak RSS of that run.
# usage: bench/quant/bench_quant.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
DEFAULT_WORK="$BUILD/bench-quant"
[ -d /dev/shm ] && DEFAULT_WORK=/dev/shm/modelpress-bench-quant
WORK="${2:-$DEFAULT_WORK}"
MP="$BUILD/tools/modelpress/modelpress"
mkdir -p "$WORK"
[ -f "$WORK/mlp.onnx" ] || /usr/bin/python3 "$ROOT/bench/prune/make_synthetic_mlp.py" "$WORK/mlp.onnx"
size=$(( $(stat -c %s "$WORK/mlp.onnx") + $(stat -c %s "$WORK/mlp.onnx.data") ))

measure() {  # NAME CMD...
  local name="$1"
  shift
  local best="" rss=""
  for _ in 1 2 3; do
    rm -f "$WORK"/out*
    /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >/dev/null
    read -r t m <"$WORK/time.txt"
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$t; rss=$m; fi
  done
  printf '%-34s %8.2f s  %8.0f MB peak RSS  (%.2fx model size)\n' "$name" "$best" "$((rss / 1024))" \
    "$(awk -v r="$rss" -v s="$size" 'BEGIN{print r*1024/s}')"
}

echo "model: $(awk -v s="$size" 'BEGIN{printf "%.0f", s/1e6}') MB of float32 weights (external data), $(nproc) cores"
cat "$WORK/mlp.onnx.data" >/dev/null
measure "plain read+write (convert)" "$MP" convert "$WORK/mlp.onnx" -o "$WORK/out.onnx" --no-check
measure "quantize weight-only" "$MP" quantize "$WORK/mlp.onnx" -o "$WORK/out.onnx" -q --no-check
measure "quantize weight-only + checker" "$MP" quantize "$WORK/mlp.onnx" -o "$WORK/out.onnx" -q
ls -l "$WORK"/out.onnx* | awk '{s+=$5} END {printf "output: %.0f MB\n", s/1e6}'
