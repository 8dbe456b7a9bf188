"""The peer for the pruning benchmark: torch.nn.utils.prune.global_unstructured
(L1, i.e. magnitude) over the Gemm weights of an ONNX model with external data,
then the pruned weights written back to a raw file.

usage: /usr/bin/python3 torch_global_prune.py MODEL.onnx SPARSITY OUT.bin
"""
import sys

import numpy as np
import onnx
import torch
from torch.nn.utils import prune


def main():
    path, sparsity, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    model = onnx.load(path, load_external_data=False)
    base = path.rsplit("/", 1)[0] if "/" in path else "."
    layers = []
    for t in model.graph.initializer:
        if not t.name.endswith(".weight"):
            continue
        ext = {e.key: e.value for e in t.external_data}
        w = np.fromfile(f"{base}/{ext['location']}", dtype=np.float32, count=int(ext["length"]) // 4,
                        offset=int(ext.get("offset", 0))).reshape(tuple(t.dims))
        lin = torch.nn.Linear(t.dims[1], t.dims[0], bias=False)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
        layers.append(lin)
    torch.set_num_threads(2)
    prune.global_unstructured([(l, "weight") for l in layers], pruning_method=prune.L1Unstructured, amount=sparsity)
    with open(out, "wb") as f:
        zeros = total = 0
        for l in layers:
            prune.remove(l, "weight")
            w = l.weight.detach().numpy()
            zeros += int((w == 0).sum())
            total += w.size
            w.tofile(f)
    print(f"torch: {zeros}/{total} zeros")


if __name__ == "__main__":
    main()
