"""The implementations compared by bench_consensus.py, importable by the memory-measuring subprocess
(benchmarks/memory.py): make_inputs(**kwargs) and one function per implementation."""
import torch

from benchmarks import baselines_consensus as bl
from semcorr_ext import ops

# NC-Net's consensus: kernel 5, channels 1 -> 16 -> 16 -> 1
STACK = [(1, 16), (16, 16), (16, 1)]


def make_inputs(layer, grid, k=5, B=1, seed=0, grad=False):
    """layer: "cin-cout" (one Conv4d) or "stack" (symmetric NeighConsensus [k]*3 / [16, 16, 1])."""
    g = torch.Generator().manual_seed(seed)
    pairs = STACK if layer == "stack" else [tuple(int(v) for v in layer.split("-"))]
    ws = [(torch.randn(co, ci, k, k, k, k, generator=g) / (ci * k ** 4) ** 0.5).requires_grad_(grad) for ci, co in pairs]
    bs = [(torch.randn(co, generator=g) * 0.1).requires_grad_(grad) for ci, co in pairs]
    x = torch.rand(B, pairs[0][0], grid, grid, grid, grid, generator=g).requires_grad_(grad and layer != "stack")
    return x, ws, bs


def _net(conv, x, ws, bs, relu):
    for w, b in zip(ws, bs):
        x = conv(x, w, b)
        if relu:
            x = torch.relu(x)
    return x


def _sym(conv, x, ws, bs):
    return _net(conv, x, ws, bs, True) + _net(conv, x.permute(0, 1, 4, 5, 2, 3), ws, bs, True).permute(0, 1, 4, 5, 2, 3)


def ours(x, ws, bs):
    """semcorr_ext.ops.conv4d (one layer, or the symmetric stack with ReLUs)."""
    return _sym(ops.conv4d, x, ws, bs) if len(ws) > 1 else ops.conv4d(x, ws[0], bs[0])


def ncnet(x, ws, bs):
    """NC-Net's conv3d loop (one layer, or the symmetric stack with ReLUs)."""
    return _sym(bl.ncnet_conv4d, x, ws, bs) if len(ws) > 1 else bl.ncnet_conv4d(x, ws[0], bs[0])


def _fwd_bwd(fn, x, ws, bs):
    out = fn(x, ws, bs)
    out.sum().backward()
    return out.detach()


def ours_fwd_bwd(x, ws, bs):
    return _fwd_bwd(ours, x, ws, bs)


def ncnet_fwd_bwd(x, ws, bs):
    return _fwd_bwd(ncnet, x, ws, bs)


def flops(layer, grid, k=5, B=1, backward=False):
    pairs = STACK if layer == "stack" else [tuple(int(v) for v in layer.split("-"))]
    f = sum(2.0 * B * ci * co * k ** 4 * grid ** 4 for ci, co in pairs) * (2 if layer == "stack" else 1)
    return f * (3 if backward else 1)  # backward: grad_x + grad_w, each as costly as the forward
