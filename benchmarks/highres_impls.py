"""The implementations compared by bench_highres.py (correlation + readout of DINOv2-sized features on large
patch grids), importable by the memory-measuring subprocess (benchmarks/memory.py).

``plain*`` is the pipeline a paper's code writes, here GeoAware-SC's released zero-shot readout
(``utils/utils_correspondence.py``: descriptors divided by their norms, one matmul for the full (Ns, Nt)
similarity, argmax, a 0/1 window mask multiplied in, SFNet's softmax with temperature 0.02 over all targets,
marginal sums) generalised to a batch and non-square grids, written plainly from reading it (not copied).
``plain_consensus`` computes our sparse consensus the dense way (as Sparse NC-Net's dense equivalent would): the
top-10 candidates both ways by ``topk`` on the full volume, the ReLU'd volume masked to them, the hand-set
all-ones 3^4 filter as a dense 4D convolution (NC-Net's conv3d loop, benchmarks/baselines_consensus.py), the
best candidate of each source row as the window centre: the same numbers as ``ours_consensus``.
``ours*`` is :class:`semcorr.models.dino.DinoMatcher`'s readout: banded ``ops.corr4d`` read out band by band;
with consensus, ``ops.corr4d_topk`` both ways + ``ops.sparse_conv4d`` on the candidates only.
"""
import torch
from torch import nn

from benchmarks.baselines_consensus import ncnet_conv4d
from semcorr.models.dino import DinoMatcher

C = 768
WINDOW = 5
TEMPERATURE = 0.02
TOPK = 10


def make_inputs(grid, C=C, seed=0):
    """Two (1, C, grid, grid) feature maps, spatially smooth like ViT tokens (neighbours alike)."""
    g = torch.Generator().manual_seed(seed)
    fs = torch.nn.functional.avg_pool2d(torch.randn(1, C, grid + 2, grid + 2, generator=g), 3, stride=1)
    ft = torch.nn.functional.avg_pool2d(torch.randn(1, C, grid + 2, grid + 2, generator=g), 3, stride=1)
    return fs.contiguous(), ft.contiguous()


def _matcher(**kw):
    return DinoMatcher(backbone=nn.Identity(), window=WINDOW, beta=1 / TEMPERATURE, **kw)


def ours(fs, ft):
    return _matcher().canvas_matches(fs, ft)[0]


def ours_consensus(fs, ft):
    return _matcher(consensus="sparse", topk=TOPK).canvas_matches(fs, ft)[0]


def _plain_similarity(fs, ft):
    a = fs.flatten(2)
    b = ft.flatten(2)
    a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
    b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
    return torch.bmm(a.transpose(1, 2), b)  # (B, Ns, Nt): the full volume


def _plain_window_readout(sim, Hs, Ws, Ht, Wt, centre=None):
    B, Ns, Nt = sim.shape
    idx = sim.argmax(-1) if centre is None else centre
    mx, my = idx % Wt, idx // Wt
    r = torch.arange(-WINDOW, WINDOW + 1)
    ox, oy = torch.meshgrid(r, r, indexing="ij")
    wx = (mx[..., None] + ox.flatten()).clamp(0, Wt - 1)
    wy = (my[..., None] + oy.flatten()).clamp(0, Ht - 1)
    mask = torch.zeros_like(sim)
    mask.scatter_(2, wy * Wt + wx, 1.0)
    corr = sim * mask
    M = corr.max(-1, keepdim=True).values
    e = torch.exp((corr - M) / TEMPERATURE)
    p = (e / e.sum(-1, keepdim=True)).view(B, Ns, Ht, Wt)
    xs, ys = torch.linspace(-1, 1, Wt), torch.linspace(-1, 1, Ht)
    gx = (p.sum(2) * xs).sum(-1)
    gy = (p.sum(3) * ys).sum(-1)
    return torch.stack([(gx + 1) * (Wt - 1) / 2, (gy + 1) * (Ht - 1) / 2], -1).view(B, Hs, Ws, 2)


def plain(fs, ft):
    Hs, Ws = fs.shape[-2:]
    Ht, Wt = ft.shape[-2:]
    return _plain_window_readout(_plain_similarity(fs, ft), Hs, Ws, Ht, Wt)


def plain_consensus(fs, ft):
    B = fs.shape[0]
    Hs, Ws = fs.shape[-2:]
    Ht, Wt = ft.shape[-2:]
    sim = _plain_similarity(fs, ft)
    cand = torch.zeros_like(sim, dtype=torch.bool)
    cand.scatter_(2, sim.topk(TOPK, 2).indices, True)
    cand.scatter_(1, sim.topk(TOPK, 1).indices, True)
    vol = (sim.relu() * cand).view(B, 1, Hs, Ws, Ht, Wt)
    score = ncnet_conv4d(vol, sim.new_ones(1, 1, 3, 3, 3, 3)).view(B, Hs * Ws, Ht * Wt)
    centre = score.masked_fill(~cand, float("-inf")).argmax(-1)
    del score, vol, cand
    return _plain_window_readout(sim, Hs, Ws, Ht, Wt, centre)
