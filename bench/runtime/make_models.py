#!/usr/bin/python3
"""Writes the executor benchmark's inputs into a build folder (never committed):
resnet18.onnx (torchvision ResNet-18, random weights, batch dim dynamic) and
resnet18_x.npy (random images). Uses Debian's python3-torch/torchvision."""
import argparse
import os

import numpy as np
import torch
import torchvision

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True, help="folder to write into")
parser.add_argument("--images", type=int, default=8, help="number of 3x224x224 images")
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)

torch.manual_seed(0)
torch.set_num_threads(1)
model = torchvision.models.resnet18(weights=None).eval()
x = torch.randn(args.images, 3, 224, 224)
torch.onnx.export(model, x[:1], os.path.join(args.out, "resnet18.onnx"), opset_version=13,
                  input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
np.save(os.path.join(args.out, "resnet18_x.npy"), x.numpy().astype(np.float32))
print("wrote", os.path.join(args.out, "resnet18.onnx"), "and resnet18_x.npy")
