"""Weights are read in place: no weight-sized buffer is made for a mask."""
import subprocess
import sys
import textwrap

import numpy as np
import torch

import modelpress
from modelpress import _buffer


def test_torch_tensors_are_handed_over_as_views_of_their_storage():
    for dt in (torch.float32, torch.float16, torch.bfloat16):
        t = torch.randn(300, 64).to(dt)
        buf, dtype = _buffer(t, "")
        assert buf.__array_interface__["data"][0] == t.data_ptr(), dt
        assert dtype == ("bfloat16" if dt == torch.bfloat16 else "")
    p = torch.nn.Parameter(torch.randn(10, 10))
    assert _buffer(p, "")[0].__array_interface__["data"][0] == p.data_ptr()


def test_returned_torch_mask_shares_memory_with_the_array():
    m = modelpress.unstructured_mask(torch.randn(100), 0.5)
    # Flipping the tensor shows through its NumPy view: one buffer, not two.
    view = m.numpy()
    m[0] = not bool(m[0])
    assert bool(view[0]) == bool(m[0])


# Peak RSS of the mask call alone, in a fresh process. getrusage's ru_maxrss
# survives fork and exec (the child would start at pytest's peak), so the
# address space's own high-water mark (VmHWM) is read instead, reset to the
# current RSS just before the call (clear_refs 5).
PEAK = textwrap.dedent("""
    import sys
    import numpy as np
    import modelpress
    n = 32 * 1024 * 1024
    w = np.empty(n, dtype=np.float32)
    rng = np.random.default_rng(0)
    for i in range(0, n, 1 << 20):  # in slices, so no temporary raises the peak beforehand
        rng.random(dtype=np.float32, out=w[i:i + (1 << 20)])
    if sys.argv[1] == "torch":
        import torch
        w = torch.from_numpy(w)
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = status("VmRSS")
    assert status("VmHWM") < before + (1 << 20), "the high-water mark was not reset"
    if sys.argv[2] == "unstructured":
        m = modelpress.unstructured_mask(w, 0.9)
    else:
        m = modelpress.nm_mask(w.reshape(4096, -1), 2, 4)
    after = status("VmHWM")
    print(after - before, w.numel() * 4 if hasattr(w, "numel") else w.nbytes, int((~m).sum()))
""")


def test_peak_memory_of_a_mask_is_far_below_a_weight_copy():
    for kind in ("numpy", "torch"):
        for fn in ("unstructured", "nm"):
            out = subprocess.run([sys.executable, "-c", PEAK, kind, fn], capture_output=True, text=True)
            assert out.returncode == 0, out.stderr
            grown, weight_bytes, pruned = map(int, out.stdout.split())
            n = weight_bytes // 4
            assert pruned == (int(0.9 * n) if fn == "unstructured" else n // 2)
            # The bool mask is a quarter of the weight; anything near a copy
            # of the weights (one more weight size) would exceed this bound.
            assert grown >= 0.9 * n, (kind, fn, grown)  # the bool mask itself was seen
            assert grown < weight_bytes // 4 + weight_bytes // 2, (kind, fn, grown, weight_bytes)
