"""modelpress for training code: pruning masks, sparsity schedules and the
whole-model compression functions of the C++ library (docs/python.md).

Weights may be NumPy arrays or PyTorch CPU tensors, float32, float16 or
bfloat16. They are read in place, never copied: a PyTorch tensor is handed
to the library as a NumPy view of its storage (bfloat16 as its int16 bits).
Masks come back as bool arrays of the weight's shape; for a PyTorch weight,
as a bool tensor sharing the array's memory.
"""

import functools
import os

from . import _modelpress as _core
from ._modelpress import (  # noqa: F401  (re-exported)
    CorruptError,
    UnsupportedError,
    agp_sparsity,
    iterative_rounds,
    iterative_sparsity,
    reduction_axis,
)

__all__ = [
    "CorruptError", "UnsupportedError", "unstructured_mask", "global_masks", "nm_mask", "apply_mask",
    "reduction_axis", "agp_sparsity", "iterative_sparsity", "iterative_rounds", "prune_file", "quantize_file",
    "pack_file", "unpack_file", "inspect_file", "GramAccumulator", "reconstruct", "obs_saliency",
]


def _is_torch(x):
    # Checked by module name so that NumPy-only users never import torch.
    return type(x).__module__.split(".")[0] == "torch"


def _buffer(w, dtype):
    """(buffer, dtype) for the library: a NumPy view of a tensor's memory."""
    if not _is_torch(w):
        return w, dtype
    import torch

    if w.device.type != "cpu":
        raise ValueError("modelpress reads CPU tensors; got a tensor on " + str(w.device) +
                         " (move it with .cpu(), which copies)")
    t = w.detach()
    if t.dtype == torch.bfloat16:
        # NumPy has no bfloat16: the same bytes viewed as int16, no copy.
        if dtype not in ("", "bfloat16"):
            raise TypeError("a bfloat16 tensor cannot be read as " + dtype)
        return t.view(torch.int16).numpy(), "bfloat16"
    if t.dtype not in (torch.float32, torch.float16):
        raise TypeError("weights must be float32, float16 or bfloat16, got " + str(t.dtype))
    return t.numpy(), dtype


def _like(mask, w):
    """The mask as the caller's kind of array: a torch bool tensor for torch weights."""
    if _is_torch(w):
        import torch

        return torch.from_numpy(mask)
    return mask


def _prev(previous):
    if previous is None:
        return None
    if _is_torch(previous):
        return previous.detach().numpy()
    return previous


def unstructured_mask(w, sparsity, *, previous=None, dtype="", threads=0):
    """Keep-mask of w with floor(sparsity * w.size) smallest |w| pruned (False).

    previous: an earlier mask; what it pruned stays pruned and counts toward
    the target. dtype: "bfloat16" for bfloat16 bits held in an int16 array.
    """
    buf, dt = _buffer(w, dtype)
    return _like(_core.unstructured_mask(buf, sparsity, previous=_prev(previous), dtype=dt, threads=threads), w)


def global_masks(weights, sparsity, *, previous=None, dtypes=None, threads=0):
    """Keep-masks of several tensors with one magnitude threshold over all of them."""
    weights = list(weights)
    if dtypes is not None and len(dtypes) != len(weights):
        raise ValueError("global_masks: %d dtypes for %d tensors" % (len(dtypes), len(weights)))
    bufs, dts = [], []
    for i, w in enumerate(weights):
        b, d = _buffer(w, "" if dtypes is None else dtypes[i])
        bufs.append(b)
        dts.append(d)
    prev = None if previous is None else [_prev(p) for p in previous]
    masks = _core.global_masks(bufs, sparsity, previous=prev, dtypes=dts, threads=threads)
    return [_like(m, w) for m, w in zip(masks, weights)]


def nm_mask(w, n, m, role="linear", *, previous=None, dtype=""):
    """N:M keep-mask: the n largest |w| of every m consecutive weights along the
    reduction axis of `role` ("linear": nn.Linear [out, in], axis 1; "conv":
    [out, in/groups, k...], axis 1; "matmul": [..., in, out], axis -2;
    "convtranspose": [in, out/groups, k...], axis 0)."""
    buf, dt = _buffer(w, dtype)
    return _like(_core.nm_mask(buf, n, m, role, previous=_prev(previous), dtype=dt), w)


def apply_mask(w, mask, *, dtype=""):
    """Zeroes w in place where mask is False (w must be writable and contiguous)."""
    buf, dt = _buffer(w, dtype)
    _core.apply_mask(buf, _prev(mask), dtype=dt)


class GramAccumulator:
    """Streaming Gram matrix H = X^T X of a layer's input rows, for reconstruct.

    add(rows): a float32 array or CPU tensor [n, columns] (for nn.Linear, the
    layer's inputs; for a convolution, torch.nn.functional.unfold patches
    transposed to [n, in/groups * kh * kw], one accumulator per group). Rows
    are folded in float32 chunks into a float64 total; gram() returns H as a
    float64 array [columns, columns].
    """

    def __init__(self, columns):
        self._h = _core.GramAccumulator(columns)

    def add(self, rows):
        self._h.add(_prev(rows))

    def gram(self):
        return self._h.gram()

    @property
    def columns(self):
        return self._h.columns

    @property
    def rows(self):
        return self._h.rows


def reconstruct(w, mask, gram, role="linear", *, damp=0.01, method="auto", groups=1, dtype="", threads=0,
                return_info=False):
    """Weights re-fitted so the layer's outputs on the calibration inputs
    behind `gram` (GramAccumulator.gram()) change least: the weights `mask`
    keeps are the least-squares optimum (method "exact", or SparseGPT's
    block updates "obs"; "auto" picks exact up to 512 columns), pruned ones
    are 0. A new float32 array (a tensor for torch input) of w's shape; with
    return_info, also {"error_before", "error_after", "method"}: relative
    output errors of the plainly masked and the re-fitted weights.
    role: "linear" [out, in], "conv" [out, in/groups, k...] (gram from
    unfolded patches, one matrix per group), "matmul" [in, out]."""
    buf, dt = _buffer(w, dtype)
    out, info = _core.reconstruct(buf, _prev(mask), _prev(gram), role, damp=damp, method=method, groups=groups,
                                  dtype=dt, threads=threads)
    if _is_torch(w):
        import torch

        out = torch.from_numpy(out)
    return (out, info) if return_info else out


def obs_saliency(w, gram, role="linear", *, damp=0.01, groups=1, dtype="", threads=0):
    """w^2 / [H^-1]_ii per weight: pass it to unstructured_mask / global_masks /
    nm_mask in place of w to choose the mask by OBS saliency instead of |w|."""
    buf, dt = _buffer(w, dtype)
    out = _core.obs_saliency(buf, _prev(gram), role, damp=damp, groups=groups, dtype=dt, threads=threads)
    if _is_torch(w):
        import torch

        out = torch.from_numpy(out)
    return out


def _paths(fn, count):
    """fn accepting str or os.PathLike (pathlib.Path) for its first `count` arguments."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        args = [os.fspath(a) if i < count else a for i, a in enumerate(args)]
        if "calib_data" in kwargs and isinstance(kwargs["calib_data"], os.PathLike):
            kwargs["calib_data"] = os.fspath(kwargs["calib_data"])
        return fn(*args, **kwargs)

    return wrapper


prune_file = _paths(_core.prune_file, 2)
quantize_file = _paths(_core.quantize_file, 2)
pack_file = _paths(_core.pack_file, 2)
unpack_file = _paths(_core.unpack_file, 2)
inspect_file = _paths(_core.inspect_file, 1)
