"""Masks of the module against the CLI's pruning and against plain definitions."""
import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import modelpress


def initializers(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def test_global_masks_equal_cli_global_prune(tmp_path, samples, cli):
    src = samples / "digits_mlp.onnx"
    out = tmp_path / "p.onnx"
    cli("prune", "unstructured", src, "-o", out, "--sparsity", "0.9", "--scope", "global", "-q")
    before, after = initializers(src), initializers(out)
    names = ["fc1.weight", "fc2.weight", "fc3.weight"]
    masks = modelpress.global_masks([before[n] for n in names], 0.9)
    total = sum(before[n].size for n in names)
    assert sum(int((~m).sum()) for m in masks) == int(0.9 * total)
    for n, m in zip(names, masks):
        assert m.shape == before[n].shape and m.dtype == np.bool_
        np.testing.assert_array_equal(~m, after[n] == 0, err_msg=n)


def test_unstructured_masks_equal_cli_layer_prune(tmp_path, samples, cli):
    src = samples / "digits_cnn.onnx"
    out = tmp_path / "p.onnx"
    cli("prune", "unstructured", src, "-o", out, "--sparsity", "0.7", "-q")
    report = modelpress.inspect_file(str(out))
    before, after = initializers(src), initializers(out)
    pruned = [t["name"] for t in report["tensors"] if t["role"] in ("conv_weight", "gemm_weight")]
    assert len(pruned) >= 3
    for n in pruned:
        m = modelpress.unstructured_mask(before[n], 0.7)
        np.testing.assert_array_equal(~m, after[n] == 0, err_msg=n)


def test_nm_masks_equal_cli_nm_prune(tmp_path, samples, cli):
    src = samples / "digits_cnn.onnx"
    out = tmp_path / "nm.onnx"
    cli("prune", "nm", src, "-o", out, "--n", "2", "--m", "4", "-q")
    before, after = initializers(src), initializers(out)
    roles = {t["name"]: t["role"] for t in modelpress.inspect_file(str(src))["tensors"]}
    compared = 0
    for name, role in roles.items():
        w = before[name]
        if role not in ("conv_weight", "gemm_weight") or w.shape[1] % 4:
            continue
        m = modelpress.nm_mask(w, 2, 4, "conv" if role == "conv_weight" else "linear")
        np.testing.assert_array_equal(~m, after[name] == 0, err_msg=name)
        compared += 1
    assert compared >= 2


def reference_nm(w, n, m, axis):
    """Keep the n largest |w| of each group of m along `axis` (lower index wins ties)."""
    moved = np.moveaxis(np.abs(w), axis, -1)
    groups = moved.reshape(*moved.shape[:-1], moved.shape[-1] // m, m)
    order = np.argsort(-groups, axis=-1, kind="stable")
    keep = np.zeros_like(groups, dtype=bool)
    np.put_along_axis(keep, order[..., :n], True, axis=-1)
    return np.moveaxis(keep.reshape(moved.shape), -1, axis)


def test_nm_linear_groups_run_along_input_features():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((8, 16)).astype(np.float32)  # nn.Linear: [out, in]
    m = modelpress.nm_mask(w, 2, 4, "linear")
    assert (m.reshape(8, 4, 4).sum(-1) == 2).all()
    np.testing.assert_array_equal(m, reference_nm(w, 2, 4, axis=1))
    # Along the output axis the groups would differ: the axis matters.
    assert not np.array_equal(m, reference_nm(w, 2, 4, axis=0))


def test_nm_conv_groups_run_along_input_channels():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((6, 8, 3, 3)).astype(np.float32)  # [K, C, kH, kW]
    m = modelpress.nm_mask(w, 2, 4, "conv")
    assert (m.reshape(6, 2, 4, 3, 3).sum(2) == 2).all()
    np.testing.assert_array_equal(m, reference_nm(w, 2, 4, axis=1))
    assert modelpress.reduction_axis("conv", [6, 8, 3, 3]) == 1
    assert modelpress.reduction_axis("matmul", [2, 8, 6]) == 1
    assert modelpress.reduction_axis("convtranspose", [8, 6, 3, 3]) == 0


def test_torch_dtypes_give_the_same_masks_as_float32():
    # Values exactly representable in float16 and bfloat16: bfloat16's 8
    # significant bits, and nothing small enough to be a float16 subnormal.
    torch.manual_seed(3)
    v = torch.randn(64, 64).to(torch.bfloat16).to(torch.float32).numpy()
    v[np.abs(v) < 2.0**-10] = 0
    ref = modelpress.unstructured_mask(v, 0.8)
    assert int((~ref).sum()) == int(0.8 * v.size)
    for dt in (torch.float32, torch.float16, torch.bfloat16):
        t = torch.from_numpy(v).to(dt)
        m = modelpress.unstructured_mask(t, 0.8)
        assert isinstance(m, torch.Tensor) and m.dtype == torch.bool and m.shape == t.shape
        np.testing.assert_array_equal(m.numpy(), ref, err_msg=str(dt))
        np.testing.assert_array_equal(modelpress.nm_mask(t, 2, 4).numpy(), modelpress.nm_mask(v, 2, 4))
    # NumPy float16 and raw bfloat16 bits with dtype="bfloat16".
    np.testing.assert_array_equal(modelpress.unstructured_mask(v.astype(np.float16), 0.8), ref)
    bits = torch.from_numpy(v).to(torch.bfloat16).view(torch.int16).numpy()
    np.testing.assert_array_equal(modelpress.unstructured_mask(bits, 0.8, dtype="bfloat16"), ref)


def test_previous_mask_keeps_pruned_weights_pruned():
    rng = np.random.default_rng(4)
    w = rng.standard_normal(1000).astype(np.float32)
    first = modelpress.unstructured_mask(w, 0.5)
    w2 = w.copy()
    w2[~first] = 100.0  # pruned weights that grew back during training
    second = modelpress.unstructured_mask(w2, 0.7, previous=first)
    assert not (second & ~first).any()
    assert int((~second).sum()) == 700


def test_global_masks_of_torch_parameters_and_apply_mask_in_place():
    torch.manual_seed(0)
    layers = [torch.nn.Linear(64, 300), torch.nn.Linear(300, 100)]
    weights = [l.weight for l in layers]
    masks = modelpress.global_masks(weights, 0.95)
    with torch.no_grad():
        for w, m in zip(weights, masks):
            modelpress.apply_mask(w, m)
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert zeros == int(0.95 * sum(w.numel() for w in weights))
    for w, m in zip(weights, masks):
        assert bool((w[~m] == 0).all()) and bool((w[m] != 0).all())


def test_schedules():
    # Zhu & Gupta: s_t = s_f + (s_i - s_f)(1 - (t - t0) / (n dt))^3
    assert modelpress.agp_sparsity(0, 0, 100, 0.0, 0.95) == 0.0
    assert modelpress.agp_sparsity(100, 0, 100, 0.0, 0.95) == pytest.approx(0.95)
    assert modelpress.agp_sparsity(50, 0, 100, 0.0, 0.95) == pytest.approx(0.95 * (1 - 0.5**3))
    assert modelpress.agp_sparsity(55, 0, 100, 0.0, 0.9, frequency=10) == pytest.approx(0.9 * (1 - 0.5**3))
    values = [modelpress.agp_sparsity(t, 10, 90, 0.1, 0.9) for t in range(0, 120)]
    assert values == sorted(values)
    assert modelpress.iterative_sparsity(0, 0.2, 0.9) == 0.0
    assert modelpress.iterative_sparsity(3, 0.2, 0.9) == pytest.approx(1 - 0.8**3)
    rounds = modelpress.iterative_rounds(0.2, 0.9)
    assert modelpress.iterative_sparsity(rounds, 0.2, 0.9) == pytest.approx(0.9)
    assert modelpress.iterative_sparsity(rounds - 1, 0.2, 0.9) < 0.9
