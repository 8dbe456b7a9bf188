#!/usr/bin/env bash
# Global 90% magnitude pruning of a ~400 MB MLP: modelpress against
# torch.nn.utils.prune.global_unstructured and a plain read+write of the same
# file (modelpress convert), all measured in this run on this machine.
# usage: bench/prune/bench_prune.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
# On tmpfs when available, so disk write-back does not blur the comparison.
DEFAULT_WORK="$BUILD/bench-prune"
[ -d /dev/shm ] && DEFAULT_WORK=/dev/shm/modelpress-bench-prune
WORK="${2:-$DEFAULT_WORK}"
MP="$BUILD/tools/modelpress/modelpress"
mkdir -p "$WORK"
[ -f "$WORK/mlp.onnx" ] || /usr/bin/python3 "$ROOT/bench/prune/make_synthetic_mlp.py" "$WORK/mlp.onnx"
size=$(( $(stat -c %s "$WORK/mlp.onnx") + $(stat -c %s "$WORK/mlp.onnx.data") ))

# measure NAME CMD...: best wall time of 3 runs and the peak RSS of that run.
measure() {
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
  eval "T_$(echo "$name" | tr -c 'a-z' '_')=$best"
}

cat /dev/null >"$WORK/results.txt"
echo "model: $(awk -v s="$size" 'BEGIN{printf "%.0f", s/1e6}') MB of float32 weights (external data), $(nproc) cores"
# Warm the page cache so every contender reads from memory.
cat "$WORK/mlp.onnx.data" >/dev/null
measure "plain read+write (convert)" "$MP" convert "$WORK/mlp.onnx" -o "$WORK/out.onnx" --no-check
measure "modelpress prune global 0.9" "$MP" prune unstructured "$WORK/mlp.onnx" -o "$WORK/out.onnx" --sparsity 0.9 --scope global -q --no-check
measure "torch global_unstructured 0.9" /usr/bin/python3 "$ROOT/bench/prune/torch_global_prune.py" "$WORK/mlp.onnx" 0.9 "$WORK/out.bin"
