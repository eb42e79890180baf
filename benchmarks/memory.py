"""Peak extra memory of one call, measured in a fresh subprocess.

CPU has no allocator peak counter like torch.cuda.max_memory_allocated, so we measure the resident-set peak:
the child builds the inputs, warms the implementation up on the same shapes (so MKL/OpenMP buffers and lazy
initialisation are already counted in the baseline), records its RSS, resets the kernel's peak-RSS mark
(writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS), runs the call once more and reports
VmHWM - baseline. Tensors above 64 KiB are mmapped by glibc (the child fixes the threshold) and returned on free, so the difference is the peak of
what the call itself allocated (its output included), not of the imports or the input construction. On CUDA,
use max_memory_allocated instead.
"""
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, sys, torch
sys.path[:0] = {paths!r}
import importlib
mod = importlib.import_module({module!r})
fn = getattr(mod, {func!r})
inputs = mod.make_inputs(**{kwargs!r})
out = fn(*inputs); del out
torch.manual_seed(0)
def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
out = fn(*inputs)
peak = status("VmHWM")
print(json.dumps({{"extra": max(0, peak - base), "base": base, "out_bytes": out.numel() * out.element_size()}}))
"""


def peak_extra_bytes(module, func, **kwargs):
    """Peak RSS growth (bytes) of one call of ``module.func(*module.make_inputs(**kwargs))`` in a fresh
    process (Linux), after a warm-up call; returns {"extra", "base", "out_bytes"}."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = _CHILD.format(paths=[root, os.path.join(root, "python")], module=module, func=func, kwargs=kwargs)
    # A fixed mmap threshold stops glibc from raising it after the warm-up frees its buffers (it would then
    # serve the measured call from already-resident heap pages, and RSS would not show the allocations).
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1)),
               MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])
