"""Writes a synthetic MLP of about 400 MB of float32 weights (Gemm layers,
transB=1, external data) for the pruning benchmark.

usage: /usr/bin/python3 make_synthetic_mlp.py OUT.onnx [--hidden 4096] [--layers 6]
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--inputs", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--layers", type=int, default=6, help="hidden-to-hidden layers")
    p.add_argument("--classes", type=int, default=1000)
    args = p.parse_args()

    rng = np.random.default_rng(0)
    dims = [args.inputs] + [args.hidden] * (args.layers + 1) + [args.classes]
    nodes, inits = [], []
    x = "input"
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        w = rng.standard_normal((fan_out, fan_in), dtype=np.float32) / np.float32(np.sqrt(fan_in))
        b = np.zeros(fan_out, dtype=np.float32)
        inits += [numpy_helper.from_array(w, f"fc{i}.weight"), numpy_helper.from_array(b, f"fc{i}.bias")]
        y = f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [y], transB=1))
        if i + 2 < len(dims):
            nodes.append(helper.make_node("Relu", [y], [y + "_relu"]))
            y += "_relu"
        x = y
    graph = helper.make_graph(
        nodes, "synthetic_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", args.inputs])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", args.classes])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    data = os.path.basename(args.out) + ".data"
    onnx.save_model(model, args.out, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data, size_threshold=1024)
    size = os.path.getsize(args.out) + os.path.getsize(os.path.join(os.path.dirname(args.out) or ".", data))
    print(f"wrote {args.out} ({size / 1e6:.0f} MB with its data file)")


if __name__ == "__main__":
    main()
