"""Random calibration and evaluation inputs for the random-weight sample models.

usage: /usr/bin/python3 bench/reconstruct/make_inputs.py OUT_DIR
Writes {resnet_mini,transformer_tiny}_{calib,eval}.npy: standard normal
float32 samples, calibration and evaluation from different seeds.
"""
import sys

import numpy as np

SHAPES = {"resnet_mini": (3, 32, 32), "transformer_tiny": (16, 64)}


def main():
    out = sys.argv[1]
    for name, shape in SHAPES.items():
        for split, seed, n in (("calib", 1, 256), ("eval", 2, 128)):
            x = np.random.default_rng(seed).standard_normal((n,) + shape).astype(np.float32)
            np.save(f"{out}/{name}_{split}.npy", x)


if __name__ == "__main__":
    main()
