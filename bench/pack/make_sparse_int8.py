#!/usr/bin/python3
"""Makes 90%-sparse INT8 (QDQ) versions of float models for the pack benchmark
with a fixed recipe of its own, so the artifact figures do not move when
modelpress's prune and quantize stages change.

usage: /usr/bin/python3 make_sparse_int8.py IN.onnx OUT.onnx [--sparsity 0.9]

Every Conv/Gemm/MatMul float32 weight: the smallest |w| (per tensor) are set
to zero, the rest quantized int8 symmetric per output channel (range
[-127, 127], zero point 0, round half to even) and read through a
DequantizeLinear, as DESIGN.md describes. Uses Debian's python3-onnx and numpy.
"""
import argparse

import numpy as np
import onnx
from onnx import helper, numpy_helper


def output_axis(node, ndim):
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return ndim - 1  # MatMul B [.., in, out]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--sparsity", type=float, default=0.9)
    args = ap.parse_args()
    model = onnx.load(args.inp)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    weights = {}
    for node in g.node:
        if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1 and node.input[1] in inits:
            t = inits[node.input[1]]
            if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 2:
                weights[t.name] = output_axis(node, len(t.dims))
    new_nodes = []
    for name, axis in weights.items():
        t = inits[name]
        w = numpy_helper.to_array(t).astype(np.float32)
        k = int(w.size * args.sparsity)
        if k > 0:
            cut = np.partition(np.abs(w).ravel(), k - 1)[k - 1]
            w = np.where(np.abs(w) <= cut, 0.0, w).astype(np.float32)
        moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
        amax = np.abs(moved).max(axis=1)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        g.initializer.remove(t)
        g.initializer.extend([
            numpy_helper.from_array(q, name + "_quantized"),
            numpy_helper.from_array(scale, name + "_scale"),
            numpy_helper.from_array(np.zeros(scale.shape, np.int8), name + "_zero_point"),
        ])
        new_nodes.append(helper.make_node("DequantizeLinear", [name + "_quantized", name + "_scale", name + "_zero_point"],
                                          [name], axis=axis, name=name + "_dequantize"))
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(new_nodes + nodes)
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and op.version < 13:
            op.version = 13
    onnx.save(model, args.out)


if __name__ == "__main__":
    main()
