#!/usr/bin/python3
"""Writes torchvision classifiers with random weights as ONNX (opset 13,
dynamic batch, BatchNorm kept as exported in eval mode) into a build folder,
never the source tree, for the structured-pruning table in
docs/structured.md. Uses Debian 12's python3-torch and python3-torchvision."""
import argparse
import os

import torch
import torchvision

MODELS = ["resnet18", "mobilenet_v2", "densenet121", "squeezenet1_1", "efficientnet_b0", "shufflenet_v2_x1_0"]

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True, help="folder to write into")
parser.add_argument("--models", default=",".join(MODELS), help="comma-separated torchvision model names")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)

torch.manual_seed(0)
torch.set_num_threads(1)

def randomize_norms(model):
    """Gives every BatchNorm a random affine and running statistics, as a
    trained network has. Freshly initialised ones are all 1/0, and the
    exporter then shares one tensor between all BatchNorms of a width through
    Identity nodes, which no trained model looks like."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


for name in args.models.split(","):
    model = getattr(torchvision.models, name)(weights=None).eval()
    randomize_norms(model)
    x = torch.randn(1, 3, 224, 224)
    path = os.path.join(args.out, name + ".onnx")
    # training=EVAL keeps BatchNormalization nodes, so the pruner must slice them.
    torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True,
                      training=torch.onnx.TrainingMode.PRESERVE)
    print("wrote", path)
