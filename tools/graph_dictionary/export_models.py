#!/usr/bin/python3
"""Exports the models the built-in graph dictionary is trained on.

usage: /usr/bin/python3 export_models.py OUT_DIR

Architectures from torchvision and torch.nn with random weights (nothing is
downloaded; the weights do not matter, only the graphs), exported by
torch.onnx at opset 13. None of them is a sample model or a benchmark input,
so the dictionary's gain measured there is not inflated by having seen them.
Uses Debian's python3-torch and python3-torchvision.
"""
import sys

import torch
import torchvision


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    encoder = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2)
    models = {
        "mobilenet_v2": (torchvision.models.mobilenet_v2(), (1, 3, 224, 224)),
        "squeezenet": (torchvision.models.squeezenet1_1(), (1, 3, 224, 224)),
        "shufflenet": (torchvision.models.shufflenet_v2_x0_5(), (1, 3, 224, 224)),
        "encoder": (encoder, (1, 16, 64)),
    }
    for name, (model, shape) in models.items():
        model.eval()
        torch.onnx.export(model, torch.randn(*shape), f"{out}/{name}.onnx", opset_version=13)


if __name__ == "__main__":
    main()
