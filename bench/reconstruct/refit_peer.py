"""The numpy peer of refit_bench: a plain dense least-squares solve on the same data.

usage: /usr/bin/python3 bench/reconstruct/refit_peer.py X.npy W.npy
H = X^T X, then W' = (H + damp I)^-1 (H + damp I) W solved for all outputs at
once (numpy's LAPACK; no mask, so it is the cheapest possible dense re-fit:
one factorisation shared by every output). Prints one JSON line.
"""
import json
import sys
import time

import numpy as np


def main():
    x = np.load(sys.argv[1])
    w = np.load(sys.argv[2]).astype(np.float64)
    t0 = time.perf_counter()
    h = x.T.astype(np.float64) @ x.astype(np.float64)
    gram_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    hd = h + 0.01 * np.mean(np.diag(h)) * np.eye(h.shape[0])
    sol = np.linalg.solve(hd, hd @ w)
    solve_s = time.perf_counter() - t0
    print(json.dumps({"peer": "numpy dense solve", "numpy": np.__version__, "gram_s": round(gram_s, 3),
                      "solve_s": round(solve_s, 3), "max_change": float(np.abs(sol - w).max())}))


if __name__ == "__main__":
    main()
