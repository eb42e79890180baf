"""The implementations compared by bench_soft_argmax.py, importable by the memory-measuring subprocess
(benchmarks/memory.py): ``make_inputs(**kwargs)`` and one function per implementation returning a tensor."""
import torch

from benchmarks import baselines_soft_argmax as sfnet
from semcorr_ext import ops


def make_inputs(B, grid, layout="ours", grad=False, seed=0):
    """A ReLU'd correlation volume (B, grid, grid, grid, grid) in our layout or SFNet's (B, grid^2, grid, grid),
    plus the upstream gradient of the (B, grid, grid, 2) output when ``grad``."""
    g = torch.Generator().manual_seed(seed)
    corr = torch.randn(B, grid, grid, grid, grid, generator=g).clamp_(min=0)
    if layout == "sfnet":
        corr = sfnet.to_target_major(corr)
    w = torch.randn(B, grid, grid, 2, generator=g)
    return (corr, w) if grad else (corr,)


def ours(corr):
    return ops.kernel_soft_argmax(corr, beta=50.0, sigma=5.0)


def sfnet_published(corr_tm):
    """SFNet L2normalize + find_correspondence.kernel_soft_argmax on the target-major volume."""
    g = int(round(corr_tm.shape[1] ** 0.5))
    return sfnet.sfnet_find_correspondence(corr_tm, g, g)


def ours_fwd_bwd(corr, w):
    c = corr.detach().requires_grad_()
    (ours(c) * w).sum().backward()
    return c.grad


def sfnet_published_fwd_bwd(corr_tm, w):
    c = corr_tm.detach().requires_grad_()
    (sfnet_published(c) * w).sum().backward()
    return c.grad
