#!/usr/bin/python3
"""A larger dense float32 MLP (about 17 MB of weights, normal-distributed like
trained layers) so the pack benchmark measures throughput, not process start.
usage: /usr/bin/python3 make_large.py OUT.onnx"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)
dims = [1024, 2048, 1024, 10]
inits, nodes, x = [], [], "input"
for i in range(len(dims) - 1):
    w = (rng.standard_normal((dims[i + 1], dims[i])) * np.sqrt(2.0 / dims[i])).astype(np.float32)
    b = (rng.standard_normal(dims[i + 1]) * 0.01).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"fc{i}.weight"), numpy_helper.from_array(b, f"fc{i}.bias")]
    y = "logits" if i == len(dims) - 2 else f"h{i}"
    nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [y + ("_pre" if y != "logits" else "")], transB=1))
    if y != "logits":
        nodes.append(helper.make_node("Relu", [y + "_pre"], [y]))
    x = y
graph = helper.make_graph(nodes, "large_mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", dims[0]])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", dims[-1]])], inits)
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
