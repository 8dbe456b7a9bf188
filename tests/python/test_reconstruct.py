"""Reconstruction from Python: the Gram accumulator and the re-fit against
plain NumPy least squares, torch input, and errors."""
import numpy as np
import pytest
import torch

import modelpress


def layer(rows=300, cols=24, out=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    w = rng.standard_normal((out, cols)).astype(np.float32)  # nn.Linear layout [out, in]
    return x, w


def test_gram_accumulates_in_batches():
    x, _ = layer()
    h = modelpress.GramAccumulator(x.shape[1])
    for start in range(0, len(x), 64):
        h.add(x[start:start + 64])
    assert h.rows == len(x) and h.columns == x.shape[1]
    np.testing.assert_allclose(h.gram(), x.astype(np.float64).T @ x, rtol=1e-5, atol=1e-3)


def test_exact_refit_equals_numpy_least_squares():
    x, w = layer()
    h = modelpress.GramAccumulator(x.shape[1])
    h.add(x)
    mask = modelpress.unstructured_mask(w, 0.5)
    refit, info = modelpress.reconstruct(w, mask, h.gram(), "linear", damp=0.0, method="exact", return_info=True)
    assert refit.shape == w.shape and refit.dtype == np.float32
    assert np.all(refit[~mask] == 0)
    for r in range(w.shape[0]):
        keep = mask[r]
        # min ||X_keep v - X w_r||: the library's answer, computed independently.
        v, *_ = np.linalg.lstsq(x[:, keep].astype(np.float64), x.astype(np.float64) @ w[r], rcond=None)
        np.testing.assert_allclose(refit[r, keep], v, rtol=1e-3, atol=1e-3)
    assert info["method"] == "exact"
    assert info["error_after"] < info["error_before"]


def test_torch_input_and_nm_mask_are_kept():
    x, w = layer(cols=32)
    wt = torch.from_numpy(w)
    h = modelpress.GramAccumulator(32)
    h.add(torch.from_numpy(x))
    mask = modelpress.nm_mask(wt, 2, 4, "linear")
    refit = modelpress.reconstruct(wt, mask, h.gram(), "linear")
    assert isinstance(refit, torch.Tensor) and refit.shape == wt.shape
    kept = (refit != 0).reshape(w.shape[0], -1, 4).sum(-1)
    assert int(kept.max()) <= 2
    assert torch.all(refit[~mask] == 0)


def test_obs_saliency_masks_keep_the_count():
    x, w = layer()
    h = modelpress.GramAccumulator(x.shape[1])
    h.add(x)
    s = modelpress.obs_saliency(w, h.gram(), "linear")
    assert s.shape == w.shape and np.all(s >= 0)
    mask = modelpress.unstructured_mask(s, 0.75)
    assert int((~mask).sum()) == int(0.75 * w.size)


def test_errors_are_exceptions():
    x, w = layer()
    h = modelpress.GramAccumulator(x.shape[1])
    with pytest.raises(ValueError, match="shaped"):
        h.add(np.ascontiguousarray(x[:, :5]))
    with pytest.raises(ValueError, match="not C-contiguous"):
        h.add(np.concatenate([x, x], axis=1)[:, ::2])
    with pytest.raises(TypeError, match="float32"):
        h.add(x.astype(np.float64))
    h.add(x)
    mask = modelpress.unstructured_mask(w, 0.5)
    with pytest.raises(ValueError, match="gram has"):
        modelpress.reconstruct(w, mask, np.eye(5), "linear")
    with pytest.raises(TypeError, match="float64"):
        modelpress.reconstruct(w, mask, h.gram().astype(np.float32), "linear")
    with pytest.raises(ValueError, match="mask has"):
        modelpress.reconstruct(w, mask[:, :3].copy(), h.gram(), "linear")
    with pytest.raises(ValueError, match="unknown method"):
        modelpress.reconstruct(w, mask, h.gram(), "linear", method="fast")
    with pytest.raises(ValueError, match="convtranspose"):
        modelpress.reconstruct(w.reshape(8, 24, 1), mask.reshape(8, 24, 1), h.gram(), "convtranspose")
    with pytest.raises(ValueError):
        modelpress.GramAccumulator(0)
