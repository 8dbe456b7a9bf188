#!/usr/bin/python3
"""Train, prune, quantize and pack the digits MLP (64-300-100-10) with modelpress.

    PYTHONPATH=build/python MODELPRESS_ORT_DIR=build/ort /usr/bin/python3 examples/train_prune_digits.py

1. Trains the MLP densely with PyTorch on sample_models/digits_train_*.npy.
2. For every target sparsity, fine-tunes a copy while raising global magnitude
   sparsity along Zhu & Gupta's cubic schedule (AGP); the masks come from
   modelpress.global_masks and are re-applied after every optimizer step.
   The same loop with torch.nn.utils.prune.global_unstructured runs next to it.
3. Exports each pruned model to ONNX, quantizes it to INT8 (static, calibrated
   on the training split) and packs it with the module's file functions.
4. Measures top-1 on the test split with ONNX Runtime (tests/ort/accuracy.mjs)
   and prints a Markdown table (docs/python.md shows one run).

A benchmark and example, not a test: it prints what it measures.
"""
import argparse
import copy
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.utils.prune as torch_prune

import modelpress

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"


def load(split):
    x = np.load(SAMPLES / f"digits_{split}_x.npy")
    y = np.load(SAMPLES / f"digits_{split}_y.npy")
    return torch.from_numpy(x), torch.from_numpy(y)


def make_model():
    return torch.nn.Sequential(
        torch.nn.Linear(64, 300), torch.nn.ReLU(),
        torch.nn.Linear(300, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 10))


def linear_layers(model):
    return [m for m in model if isinstance(m, torch.nn.Linear)]


def batches(x, y, batch, generator):
    order = torch.randperm(len(x), generator=generator)
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        yield x[idx], y[idx]


def train(model, x, y, epochs, lr, seed, after_step=None):
    """Adam on cross-entropy; after_step(step) runs after every optimizer step."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    step = 0
    for _ in range(epochs):
        for xb, yb in batches(x, y, 64, g):
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
            step += 1
            if after_step:
                after_step(step)
    return step


@torch.no_grad()
def torch_top1(model, x, y):
    return float((model(x).argmax(1) == y).float().mean())


def steps_per_epoch(n):
    return (n + 63) // 64


def finetune_modelpress(dense, x, y, target, epochs, seed):
    """AGP to `target` global sparsity with modelpress masks; returns (model, mask seconds)."""
    model = copy.deepcopy(dense)
    weights = [l.weight for l in linear_layers(model)]
    total = epochs * steps_per_epoch(len(x))
    end = int(total * 0.7)  # ramp over 70% of the steps, then recover at the final sparsity
    masks = None
    mask_seconds = 0.0

    def after_step(step):
        nonlocal masks, mask_seconds
        if step % 10 == 0 and step <= end + 10:
            t = time.perf_counter()
            s = modelpress.agp_sparsity(step, 0, end, 0.0, target, frequency=10)
            # One thread, as torch runs here: on 50,000 weights starting threads costs more than it saves.
            masks = modelpress.global_masks(weights, s, previous=masks, threads=1)
            mask_seconds += time.perf_counter() - t
        if masks is not None:
            with torch.no_grad():
                for w, m in zip(weights, masks):
                    modelpress.apply_mask(w, m)

    train(model, x, y, epochs, 1e-3, seed, after_step)
    return model, mask_seconds


def finetune_torch(dense, x, y, target, epochs, seed):
    """The same schedule with torch.nn.utils.prune.global_unstructured (L1)."""
    model = copy.deepcopy(dense)
    params = [(l, "weight") for l in linear_layers(model)]
    total = epochs * steps_per_epoch(len(x))
    end = int(total * 0.7)
    current = 0.0
    mask_seconds = 0.0

    def after_step(step):
        nonlocal current, mask_seconds
        if step % 10 == 0 and step <= end + 10:
            t = time.perf_counter()
            s = modelpress.agp_sparsity(step, 0, end, 0.0, target, frequency=10)
            if s > current:
                # torch prunes a fraction of what is still unpruned.
                amount = (s - current) / (1.0 - current)
                torch_prune.global_unstructured(params, pruning_method=torch_prune.L1Unstructured, amount=amount)
                current = s
            mask_seconds += time.perf_counter() - t
        # The forward pre-hook recomputes weight = weight_orig * mask; weight_orig
        # keeps training underneath, as the torch tutorial's loop does.

    train(model, x, y, epochs, 1e-3, seed, after_step)
    for module, name in params:
        if torch_prune.is_pruned(module):
            torch_prune.remove(module, name)
    return model, mask_seconds


@torch.no_grad()
def drop_dead_neurons(model):
    """A copy without the hidden units that pruning disconnected, computing the same function.

    A unit whose outgoing weights are all zero is unused; one whose incoming
    weights are all zero outputs the constant relu(bias), which is folded into
    the next layer's bias. Either way its row, bias and column go.
    """
    layers = [copy.deepcopy(l) for l in linear_layers(model)]
    for a, b in zip(layers, layers[1:]):
        no_in = (a.weight == 0).all(dim=1)
        no_out = (b.weight == 0).all(dim=0)
        b.bias += b.weight[:, no_in & ~no_out] @ torch.relu(a.bias[no_in & ~no_out])
        keep = ~(no_in | no_out)
        a.weight = torch.nn.Parameter(a.weight[keep].clone())
        a.bias = torch.nn.Parameter(a.bias[keep].clone())
        b.weight = torch.nn.Parameter(b.weight[:, keep].clone())
        a.out_features, b.in_features = int(keep.sum()), int(keep.sum())
    return torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2])


def export(model, path):
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 64), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)


def ort_top1(path, x_file, y_file):
    ort_dir = os.environ.get("MODELPRESS_ORT_DIR")
    if not ort_dir:
        return None
    out = subprocess.run(["node", str(ROOT / "tests/ort/accuracy.mjs"), str(path), str(x_file), str(y_file)],
                         capture_output=True, text=True, env={**os.environ, "MODELPRESS_ORT_DIR": ort_dir})
    if out.returncode != 0:
        raise RuntimeError("accuracy.mjs failed: " + out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])["top1"]


def sparsity_of(model):
    ws = [l.weight for l in linear_layers(model)]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sparsities", default="0.8,0.9,0.95,0.97")
    ap.add_argument("--dense-epochs", type=int, default=40)
    ap.add_argument("--finetune-epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="keep the models here (default: a temporary folder)")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # repeatable, and fair to both pruning loops
    x, y = load("train")
    xt, yt = load("test")
    x_file, y_file = SAMPLES / "digits_test_x.npy", SAMPLES / "digits_test_y.npy"
    calib = SAMPLES / "digits_train_x.npy"

    out = pathlib.Path(args.out) if args.out else pathlib.Path(tempfile.mkdtemp(prefix="train_prune_digits."))
    out.mkdir(parents=True, exist_ok=True)

    t = time.perf_counter()
    dense = make_model()
    train(dense, x, y, args.dense_epochs, 1e-3, args.seed)
    dense_seconds = time.perf_counter() - t
    export(dense, out / "dense.onnx")
    dense_bytes = (out / "dense.onnx").stat().st_size
    dense_ort = ort_top1(out / "dense.onnx", x_file, y_file)
    print(f"dense: torch top-1 {torch_top1(dense, xt, yt):.4f}, ONNX Runtime top-1 {dense_ort}, "
          f"{dense_bytes} bytes, trained in {dense_seconds:.1f} s", file=sys.stderr)
    # The pruned models train for finetune_epochs more; so does this reference.
    longer = copy.deepcopy(dense)
    train(longer, x, y, args.finetune_epochs, 1e-3, args.seed)
    export(longer, out / "dense_longer.onnx")
    longer_ort = ort_top1(out / "dense_longer.onnx", x_file, y_file)

    rows = []
    for target in (float(s) for s in args.sparsities.split(",")):
        row = {"target": target}
        for name, finetune in (("mp", finetune_modelpress), ("torch", finetune_torch)):
            t = time.perf_counter()
            model, mask_seconds = finetune(dense, x, y, target, args.finetune_epochs, args.seed)
            row[name + "_seconds"] = time.perf_counter() - t
            row[name + "_mask_seconds"] = mask_seconds
            row[name + "_sparsity"] = sparsity_of(model)
            stem = out / f"{name}_{int(round(target * 100))}"
            export(model, stem.with_suffix(".onnx"))
            row[name + "_fp32"] = ort_top1(stem.with_suffix(".onnx"), x_file, y_file)
            if name == "mp":
                # Two weight encodings: int8 per output channel (the default), and
                # one scale per tensor with 7-bit weights (reduce_range), which
                # drops the per-channel scales and one bit of every kept weight;
                # the second also on the model without its disconnected units.
                small = drop_dead_neurons(model)
                with torch.no_grad():
                    row["shrink_max_diff"] = float((small(xt) - model(xt)).abs().max())
                export(small, f"{stem}_shrunk.onnx")
                row["hidden"] = [l.out_features for l in linear_layers(small)[:-1]]
                for tag, per_channel, reduce_range, src in (("pc", True, False, stem.with_suffix(".onnx")),
                                                            ("pt7", False, True, stem.with_suffix(".onnx")),
                                                            ("small", False, True, f"{stem}_shrunk.onnx")):
                    q_file, mpk, back = (f"{stem}_{tag}.onnx", f"{stem}_{tag}.mpk", f"{stem}_{tag}_unpacked.onnx")
                    modelpress.quantize_file(str(src), q_file, mode="static", calib_data=str(calib),
                                             per_channel=per_channel, reduce_range=reduce_range)
                    packed = modelpress.pack_file(q_file, mpk)
                    modelpress.unpack_file(mpk, back)
                    row[tag + "_top1"] = ort_top1(back, x_file, y_file)
                    row[tag + "_bytes"] = packed["artifact_bytes"]
                    row[tag + "_ratio"] = dense_bytes / packed["artifact_bytes"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}"

    print(f"dense float32: top-1 {pct(dense_ort)} % (ONNX Runtime), {dense_bytes:,} bytes; "
          f"trained {args.finetune_epochs} epochs more without pruning: {pct(longer_ort)} %\n")
    print("| target | fp32 top-1 | INT8 per-channel: top-1 / bytes / vs dense "
          "| INT7 per-tensor: top-1 / bytes / vs dense | + dead units removed: hidden / top-1 / bytes / vs dense "
          "| torch.prune fp32 top-1 "
          "| fine-tune s modelpress / torch.prune | of which masks s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['target']:.0%} | {pct(r['mp_fp32'])} "
              f"| {pct(r['pc_top1'])} / {r['pc_bytes']:,} / {r['pc_ratio']:.1f}× "
              f"| {pct(r['pt7_top1'])} / {r['pt7_bytes']:,} / {r['pt7_ratio']:.1f}× "
              f"| {'-'.join(map(str, r['hidden']))} / {pct(r['small_top1'])} / {r['small_bytes']:,} / "
              f"{r['small_ratio']:.1f}× | {pct(r['torch_fp32'])} "
              f"| {r['mp_seconds']:.1f} / {r['torch_seconds']:.1f} "
              f"| {r['mp_mask_seconds']:.2f} / {r['torch_mask_seconds']:.2f} |")
    print(f"\nmodels in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
