#!/usr/bin/env bash
# Builds the reader fuzzer with clang and runs it for a bounded time on a
# seed corpus of real artifacts packed from the sample models.
# usage: fuzz/run.sh MODELPRESS_BINARY WORK_DIR [SECONDS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cli="$1"
work="$2"
seconds="${3:-60}"
mkdir -p "$work/corpus" "$work/findings"
CC=clang CXX=clang++ cmake -S "$ROOT/fuzz" -B "$work/build" >/dev/null
cmake --build "$work/build" -j "$(nproc)" --target pack_reader_fuzz 2>&1 | { grep -vE '^\[ *[0-9]+%\]' || true; }
for m in "$ROOT"/sample_models/*.onnx; do
  "$cli" pack "$m" -o "$work/corpus/$(basename "$m" .onnx).mpk" --level 3 >/dev/null
done
# -rss_limit_mb and -malloc_limit_mb catch over-allocation; findings go to $work/findings.
"$work/build/pack_reader_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 \
  -artifact_prefix="$work/findings/" -print_final_stats=1 "$work/corpus" 2>&1 | tail -n 12
