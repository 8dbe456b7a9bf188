#!/usr/bin/env bash
# Artifact size and speed against general-purpose compressors, measured in
# one run on the same files (DESIGN.md, "Performance").
# usage: bench/pack/run.sh [BUILD_DIR] [WORK_DIR]
#
# Inputs: the dense float32 sample models, a larger dense MLP (make_large.py),
# and 90%-sparse INT8 QDQ versions of all of them (make_sparse_int8.py), each
# re-saved by `modelpress convert` so the artifact restores it byte for byte.
# Sizes: artifact vs `zstd -19 --long=27` and `xz -9e` of the .onnx, and the
# order-0 bound of the tensors (`modelpress inspect --json`: totals.bound_bytes)
# plus the stored graph. Times: best of N runs of pack (default level, all
# cores) vs `zstd -3 -T0`, unpack vs `zstd -d`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
WORK="${2:-$(mktemp -d)}"
MP="$BUILD/tools/modelpress/modelpress"
PY=/usr/bin/python3
mkdir -p "$WORK"

inputs=()
for m in "$ROOT"/sample_models/*.onnx; do inputs+=("$m"); done
"$PY" "$ROOT/bench/pack/make_large.py" "$WORK/large_mlp.raw.onnx"
"$MP" convert "$WORK/large_mlp.raw.onnx" -o "$WORK/large_mlp.onnx" >/dev/null
inputs+=("$WORK/large_mlp.onnx")
for m in "${inputs[@]}"; do
  b=$(basename "$m" .onnx)
  "$PY" "$ROOT/bench/pack/make_sparse_int8.py" "$m" "$WORK/$b.s.onnx"
  "$MP" convert "$WORK/$b.s.onnx" -o "$WORK/${b}_sparse90_int8.onnx" >/dev/null
  inputs+=("$WORK/${b}_sparse90_int8.onnx")
done

# best_time N CMD...: the fastest of N runs, in milliseconds.
best_time() {
  local n=$1 best=999999999 t0 t1 ms
  shift
  for ((i = 0; i < n; i++)); do
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    ((ms < best)) && best=$ms
  done
  echo "$best"
}

printf "%-34s %10s %10s %10s %10s %10s %8s %8s | %8s %8s %8s %8s\n" model onnx mpk zstd-19 xz-9e bound "vs zstd" "vs xz" "pack ms" "zstd-3" "unpk ms" "zstd -d"
for m in "${inputs[@]}"; do
  b=$(basename "$m" .onnx)
  size=$(stat -c%s "$m")
  n=$((size > 5000000 ? 3 : 10))
  "$MP" pack "$m" -o "$WORK/$b.mpk" >/dev/null
  mpk=$(stat -c%s "$WORK/$b.mpk")
  zstd -19 --long=27 -q -f "$m" -o "$WORK/$b.zst"
  z19=$(stat -c%s "$WORK/$b.zst")
  x9=$(xz -9e -c "$m" | wc -c)
  bound=$("$MP" inspect --json "$WORK/$b.mpk" | "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(int(j["totals"]["bound_bytes"] + j["graph"]["stored_bytes"]))')
  tp=$(best_time $n "$MP" pack "$m" -o "$WORK/$b.t.mpk")
  tz=$(best_time $n zstd -3 -T0 -q -f "$m" -o "$WORK/$b.t.zst")
  tu=$(best_time $n "$MP" unpack "$WORK/$b.mpk" -o "$WORK/$b.t.onnx")
  tzd=$(best_time $n zstd -d -q -f "$WORK/$b.zst" -o "$WORK/$b.t2.onnx")
  cmp -s "$m" "$WORK/$b.t.onnx" || { echo "$b: unpacked model differs" >&2; exit 1; }
  pct() { "$PY" -c "print(f'{100*($1/$2-1):+.1f}%')"; }
  printf "%-34s %10d %10d %10d %10d %10d %8s %8s | %8d %8d %8d %8d\n" "$b" "$size" "$mpk" "$z19" "$x9" "$bound" \
    "$(pct "$mpk" "$z19")" "$(pct "$mpk" "$x9")" "$tp" "$tz" "$tu" "$tzd"
done
