#!/usr/bin/env bash
# Re-fit time of one 4096x4096 MatMul layer on 512 calibration rows at 50% and
# 2:4 (OBS blocks), against a dense least-squares solve in numpy on the same
# data, measured in the same run.
# usage: bench/reconstruct/bench_refit.sh [BUILD_DIR] [SIZE] [SAMPLES]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$ROOT/build}"
SIZE="${2:-4096}"
SAMPLES="${3:-512}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$tmp" "$SIZE" "$SAMPLES" <<'PY'
import sys
import numpy as np
out, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
# Correlated inputs, as activations are: a shared low-rank part plus noise.
base = rng.standard_normal((n, 64)).astype(np.float32) @ rng.standard_normal((64, size)).astype(np.float32) / 8
x = (base + rng.standard_normal((n, size)).astype(np.float32)).astype(np.float32)
np.save(f"{out}/x.npy", x)
np.save(f"{out}/w.npy", (rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32))
PY
echo "modelpress (threads: ${MODELPRESS_THREADS:-all}, cores: $(nproc)):"
/usr/bin/time -f '  peak RSS %M KB, wall %e s' "$BUILD/bench/refit_bench" "$tmp/x.npy" "$tmp/w.npy" ${EXACT:+--exact}
echo "numpy peer:"
/usr/bin/time -f '  peak RSS %M KB, wall %e s' /usr/bin/python3 "$ROOT/bench/reconstruct/refit_peer.py" "$tmp/x.npy" "$tmp/w.npy"
