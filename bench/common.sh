# Shared setup of the benchmark scripts; source it after setting ROOT:
#   ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"; source "$ROOT/bench/common.sh" "$@"
# Sets BUILD (first argument or $ROOT/build) and MP (the modelpress binary).
BUILD="${1:-$ROOT/build}"
MP="$BUILD/tools/modelpress/modelpress"

# ort_setup: installs onnxruntime-node for the build when missing, sets S (the
# sample models) and tmp (removed on exit), and defines top1 and cosine.
ort_setup() {
  export MODELPRESS_ORT_DIR="${MODELPRESS_ORT_DIR:-$BUILD/ort}"
  bash "$ROOT/tests/ort/install.sh" "$MODELPRESS_ORT_DIR" >/dev/null
  S="$ROOT/sample_models"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
}

top1() {  # model data labels -> top-1 in percent, measured by ONNX Runtime
  node "$ROOT/tests/ort/accuracy.mjs" "$1" "$2" "$3" | sed -E 's/.*"top1":([0-9.]+).*/\1/' | awk '{printf "%.2f", 100*$1}'
}

cosine() {  # a b data opt-level -> "mean / min" cosine of the outputs, by ONNX Runtime
  node "$ROOT/tests/ort/cosine.mjs" "$1" "$2" "$3" --opt-level "$4" |
    sed -E 's/.*"mean_cosine":([0-9.e-]+),"min_cosine":([0-9.e-]+).*/\1 \2/' | awk '{printf "%.5f / %.5f", $1, $2}'
}

# mlp_setup NAME [WORK_DIR]: the ~400 MB synthetic MLP (external data) in WORK,
# on tmpfs when available so disk write-back does not blur comparisons; sets
# WORK and size (bytes of model + data).
mlp_setup() {
  local default="$BUILD/bench-$1"
  [ -d /dev/shm ] && default="/dev/shm/modelpress-bench-$1"
  WORK="${2:-$default}"
  mkdir -p "$WORK"
  [ -f "$WORK/mlp.onnx" ] || /usr/bin/python3 "$ROOT/bench/prune/make_synthetic_mlp.py" "$WORK/mlp.onnx"
  size=$(($(stat -c %s "$WORK/mlp.onnx") + $(stat -c %s "$WORK/mlp.onnx.data")))
  echo "model: $(awk -v s="$size" 'BEGIN{printf "%.0f", s/1e6}') MB of float32 weights (external data), $(nproc) cores"
  # Warm the page cache so every contender reads from memory.
  cat "$WORK/mlp.onnx.data" >/dev/null
}

# measure NAME CMD...: best wall time of 3 runs and the peak RSS of that run,
# relative to the model size; outputs are written to $WORK/out*.
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
}
