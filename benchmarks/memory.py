"""Peak extra memory of one call, measured in a fresh subprocess.

CPU has no allocator peak counter like torch.cuda.max_memory_allocated, so we measure the resident-set peak:
the child builds the inputs, warms the implementation up on the same shapes (so MKL/OpenMP buffers and lazy
initialisation are already counted in the baseline), records its RSS, runs the call once more and reports
ru_maxrss - baseline. Large tensors are mmapped by glibc and returned on free, so the difference is the
peak of what the call itself allocated (its output included). On CUDA, use max_memory_allocated instead.
"""
import json
import os
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, torch
sys.path[:0] = {paths!r}
import importlib
mod = importlib.import_module({module!r})
fn = getattr(mod, {func!r})
inputs = mod.make_inputs(**{kwargs!r})
out = fn(*inputs); del out
torch.manual_seed(0)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
base = rss()
peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out = fn(*inputs)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"extra": max(0, peak - max(base, 0)), "peak_before": peak_before, "base": base,
                  "out_bytes": out.numel() * out.element_size()}}))
"""


def peak_extra_bytes(module, func, **kwargs):
    """Peak RSS growth (bytes) of ``module.func(*module.make_inputs(**kwargs))`` in a fresh process.

    The warm-up call's own peak raises ru_maxrss; the measured call only shows if it exceeds that, so the
    child frees the warm-up output and reports peak - baseline, which is exact when the measured call's peak
    is at least the warm-up's (it is: same call, same shapes)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = _CHILD.format(paths=[root, os.path.join(root, "python")], module=module, func=func, kwargs=kwargs)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1)))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])
