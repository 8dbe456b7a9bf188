"""Make the small ONNX models and the digits data bundled with modelpress.

Writes into --out (default: this script's folder):
  digits_{train,test}_{x,img,y}.npy  sklearn digits, pixels /16 -> [0,1]
  digits_mlp.onnx        MLP 64-300-100-10, trained on digits (opset 13)
  digits_cnn.onnx        small CNN on [N,1,8,8], trained on digits (opset 13)
  resnet_mini.onnx       two residual blocks, random weights, BN folded (opset 13)
  mobilenet_block.onnx   two inverted residual blocks, random weights (opset 13)
  transformer_tiny.onnx  2-layer encoder, hand-written attention, random (opset 17)

Run with Debian's interpreter: /usr/bin/python3 make_samples.py [--out DIR]
Seeds are fixed and torch runs on one thread, so a rerun with the same package
versions reproduces the same weights and accuracies.
"""

import argparse
import collections
import math
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SPLIT_SEED = 0
TORCH_SEED = 0


def make_digits(out):
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=SPLIT_SEED)
    arrays = {
        "digits_train_x": x_tr, "digits_train_y": y_tr,
        "digits_test_x": x_te, "digits_test_y": y_te,
        "digits_train_img": x_tr.reshape(-1, 1, 8, 8),
        "digits_test_img": x_te.reshape(-1, 1, 8, 8),
    }
    for name, arr in arrays.items():
        np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(arr))
    return arrays


class DigitsMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(y + skip)


class ResNetMini(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = BasicBlock(16, 16, 1)
        self.block2 = BasicBlock(16, 32, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_residual else y


class MobileNetBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.block1 = InvertedResidual(16, 16, 1, 4)
        self.block2 = InvertedResidual(16, 24, 2, 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class SelfAttention(nn.Module):
    def __init__(self, tokens, d_model, heads):
        super().__init__()
        # Sizes are plain ints, not read from tensor.shape, so tracing bakes them
        # into the Reshape constants instead of emitting Shape/Gather/Concat chains.
        self.tokens = tokens
        self.d_model = d_model
        self.heads = heads
        self.head_dim = d_model // heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def split_heads(self, t):
        return t.reshape(-1, self.tokens, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x):
        q, k, v = self.split_heads(self.q(x)), self.split_heads(self.k(x)), self.split_heads(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out(ctx.transpose(1, 2).reshape(-1, self.tokens, self.d_model))


class EncoderLayer(nn.Module):
    def __init__(self, tokens, d_model, heads, ffn):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(tokens, d_model, heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, ffn)
        self.ff2 = nn.Linear(ffn, d_model)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff2(F.gelu(self.ff1(self.ln2(x))))


class TransformerTiny(nn.Module):
    def __init__(self, tokens=16, d_model=64, heads=4, ffn=256, layers=2, classes=10):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, tokens, d_model) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(tokens, d_model, heads, ffn) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, classes)
        # Default LayerNorm affine is all ones / zeros: the exporter would then share
        # one initializer between every LayerNorm (via Identity nodes), and a
        # compressor would see trivially constant tensors.
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.LayerNorm):
                    m.weight.copy_(1.0 + 0.1 * torch.randn(d_model))
                    m.bias.copy_(0.05 * torch.randn(d_model))

    def forward(self, x):
        x = x + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.head(self.ln_f(x).mean(dim=1))


def train(model, x, y, epochs, lr, batch=64):
    gen = torch.Generator().manual_seed(TORCH_SEED)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()


@torch.no_grad()
def accuracy(model, x, y):
    pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((pred == y).mean())


@torch.no_grad()
def settle_batchnorm(model, shape, batches=8):
    # Fresh BN (mean 0, var 1, unit affine) folds to a no-op; a random affine plus
    # running stats from random batches make the folded Conv weights realistic.
    # momentum=None gives a plain average over the batches.
    gen = torch.Generator().manual_seed(TORCH_SEED + 1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
            m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
            m.momentum = None
    model.train()
    for _ in range(batches):
        model(torch.rand(shape, generator=gen) * 2 - 1)
    model.eval()


def export(model, example, path, opset):
    model.eval()
    torch.onnx.export(
        model, example, path,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=opset,
        training=torch.onnx.TrainingMode.EVAL,
        do_constant_folding=True)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def shape_str(value_info):
    dims = value_info.type.tensor_type.shape.dim
    return "[" + ",".join(d.dim_param or str(d.dim_value) for d in dims) + "]"


def describe(name, proto, path, torch_params):
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    init_elems = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    print(f"{name}: opset {opset}, IR {proto.ir_version}, {os.path.getsize(path)} bytes")
    for io, kind in ((proto.graph.input, "in"), (proto.graph.output, "out")):
        for v in io:
            print(f"  {kind}  {v.name} {shape_str(v)}")
    print(f"  torch params {torch_params}, initializer elements {init_elems}")
    print("  ops " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
    return ops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}, onnx {onnx.__version__}, numpy {np.__version__}")

    data = make_digits(args.out)
    print(f"digits split random_state={SPLIT_SEED}: "
          f"train {len(data['digits_train_y'])}, test {len(data['digits_test_y'])}")

    def path(name):
        return os.path.join(args.out, name + ".onnx")

    def n_params(model):
        return sum(p.numel() for p in model.parameters())

    results = {}

    torch.manual_seed(TORCH_SEED)
    mlp = DigitsMLP()
    train(mlp, data["digits_train_x"], data["digits_train_y"], epochs=60, lr=1e-3)
    acc = accuracy(mlp, data["digits_test_x"], data["digits_test_y"])
    print(f"digits_mlp test top-1 {acc:.4f}")
    proto = export(mlp, torch.zeros(1, 64), path("digits_mlp"), 13)
    results["digits_mlp"] = describe("digits_mlp", proto, path("digits_mlp"), n_params(mlp))

    torch.manual_seed(TORCH_SEED)
    cnn = DigitsCNN()
    train(cnn, data["digits_train_img"], data["digits_train_y"], epochs=30, lr=1e-3)
    acc = accuracy(cnn, data["digits_test_img"], data["digits_test_y"])
    print(f"digits_cnn test top-1 {acc:.4f}")
    proto = export(cnn, torch.zeros(1, 1, 8, 8), path("digits_cnn"), 13)
    results["digits_cnn"] = describe("digits_cnn", proto, path("digits_cnn"), n_params(cnn))

    for name, cls, opset in (("resnet_mini", ResNetMini, 13),
                             ("mobilenet_block", MobileNetBlock, 13)):
        torch.manual_seed(TORCH_SEED)
        model = cls()
        settle_batchnorm(model, (16, 3, 32, 32))
        proto = export(model, torch.zeros(1, 3, 32, 32), path(name), opset)
        results[name] = describe(name, proto, path(name), n_params(model))

    torch.manual_seed(TORCH_SEED)
    tf = TransformerTiny()
    proto = export(tf, torch.zeros(1, 16, 64), path("transformer_tiny"), 17)
    results["transformer_tiny"] = describe(
        "transformer_tiny", proto, path("transformer_tiny"), n_params(tf))

    for name in ("resnet_mini", "mobilenet_block"):
        if results[name].get("BatchNormalization"):
            print(f"note: {name} still has BatchNormalization nodes")
    if not results["transformer_tiny"].get("LayerNormalization"):
        print("note: transformer_tiny has no LayerNormalization node")


if __name__ == "__main__":
    main()
