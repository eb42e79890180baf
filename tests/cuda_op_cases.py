"""The table of tests/test_cuda_ops.py: one row per (op, main option set), torchvision style.

A row builds its inputs on the CPU in float32 (`make(empty)` returns a list of `Arg`) and names how each input
is treated: X = floating input that follows the tested dtype and gets a gradient; F = floating input that stays
float32 and gets no gradient (Hough centres, smoothing kernel); I = integer/bool input (indices, bins, masks).
`fn(*tensors)` calls the op and returns its output(s). Shapes are tiny; value ranges follow
tests/test_emu_half.py (distinct values k/256 where the op selects by comparison, so rounding to float16 /
bfloat16 creates no tie and the selected indices are the same in every precision)."""
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from semcorr_ext import ops

X, F, I = "x", "f", "i"
HALF = (torch.float16, torch.bfloat16)
# Pseudo-dtype of a row: float32 inputs with PyTorch's TF32 switches on, which on sm_80+ selects the op's tensor-core
# TF32 kernel (csrc/common/tensor_cores.h); plain float32 rows run with the switches off (the exact SIMT kernel).
TF32 = "tf32"
TC_OPS = {"corr4d", "corr4d_topk", "conv4d", "sparse_conv4d"}  # ops with tensor-core kernels: TF32 rows


@dataclass
class Arg:
    t: torch.Tensor
    kind: str


@dataclass
class Case:
    op: str                        # public name in semcorr_ext.ops
    opts: str                      # option-set id
    make: Callable[[bool], list[Arg]]  # make(empty) -> inputs (float32 / int on the CPU)
    fn: Callable                   # fn(*tensors) -> output or tuple of outputs
    half: bool = True              # accepts float16 / bfloat16 on CUDA (docs/OPS.md#precision)
    scale: float = 1.0             # atol multiplier (output magnitude, a few stored intermediates)
    grad_scale: float = 4.0        # atol multiplier of the gradients
    atomics: bool = False          # CUDA kernel votes with float atomics: alerts under deterministic mode
    dtypes: tuple = field(init=False)

    def __post_init__(self):
        self.dtypes = (torch.float32,) + (HALF if self.half else ()) if self.op not in INT_OPS else (None,)
        if self.op in TC_OPS:
            self.dtypes += (TF32,)

    @property
    def id(self):
        return f"{self.op}-{self.opts}"


INT_OPS = {"kernel_map4d", "patchmatch_propagate"}


def _g(seed):
    return torch.Generator().manual_seed(seed)


def rnd(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=_g(seed)) * scale


def distinct(*shape, seed=0):
    """Distinct values k/256 - 0.5 (exact in float16 and bfloat16), any zero-sized shape allowed."""
    n = 1
    for s in shape:
        n *= s
    assert n <= 256
    return (torch.randperm(n, generator=_g(seed)).float() / 256.0 - 0.5).view(*shape)


def _b(empty, n=2):
    """Batch size: 0 for the empty-input variant."""
    return 0 if empty else n


# ---- 1. correlation -------------------------------------------------------------------------------------------
def _corr_inputs(empty):
    return [Arg(rnd(_b(empty), 5, 3, 4), X), Arg(rnd(_b(empty), 5, 4, 3, seed=1), X)]


def _topk_inputs(empty):
    # channel 0 of tgt distinct, channel 1 ones; src = (1, 0): correlation d (or d / sqrt(d^2 + 1), normalised),
    # strictly increasing in d, so the top-k is the same in every precision
    B = _b(empty, 1)
    src = torch.zeros(B, 2, 3, 4)
    src[:, 0] = 1.0
    tgt = torch.ones(B, 2, 5, 6)
    if B:
        tgt[:, 0] = distinct(B, 5, 6, seed=1)
    return [Arg(src, X), Arg(tgt, X)]


def _mm_inputs(empty):
    return [Arg(rnd(_b(empty), 3, 4, 3, 5, seed=3).abs(), X)]


# ---- 2. consensus ---------------------------------------------------------------------------------------------
def _conv_inputs(empty, bias=True):
    args = [Arg(rnd(_b(empty, 1), 2, 3, 4, 3, 3), X), Arg(rnd(3, 2, 3, 3, 3, 3, seed=1, scale=0.1), X)]
    return args + ([Arg(rnd(3, seed=2), X)] if bias else [])


def _pool_inputs(empty):
    x = distinct(1, 2, 4, 2, 4, 4)
    return [Arg(x[:0] if empty else x, X)]


def _coords(empty):
    c = torch.tensor([[0, i, j, k, l] for i in range(2) for j in range(2) for k in range(2) for l in range(3)])
    c = c[torch.randperm(len(c), generator=_g(0))[:17]]  # an irregular subset
    return c[:0] if empty else c


def _sparse_inputs(empty, bias=True):
    n = len(_coords(empty))
    args = [Arg(rnd(n, 3), X), Arg(_coords(empty), I), Arg(rnd(4, 3, 3, 3, 3, 3, seed=1, scale=0.2), X)]
    return args + ([Arg(rnd(4, seed=2), X)] if bias else [])


# ---- 3. patchmatch --------------------------------------------------------------------------------------------
PM_SIZE = (5, 6)  # target grid of the patchmatch rows


def _matches(empty):
    B, H, W = _b(empty), 3, 4
    return torch.stack([torch.randint(0, PM_SIZE[0], (B, H, W, 1), generator=_g(0)),
                        torch.randint(0, PM_SIZE[1], (B, H, W, 1), generator=_g(1))], -1)


def _candidates(empty, n=3):
    # -1 and past-the-end entries: windows partly outside the target grid; empty: no candidate per position
    n = 0 if empty else n
    return torch.stack([torch.randint(-1, PM_SIZE[0] + 1, (1, 3, 3, n), generator=_g(5)),
                        torch.randint(-1, PM_SIZE[1] + 1, (1, 3, 3, n), generator=_g(6))], -1)


def _points(empty, m=7):
    m = 0 if empty else m
    # batch ids and coordinates partly out of range: their windows read zeros
    return torch.stack([torch.randint(-1, 2, (m,), generator=_g(7))] +
                       [torch.randint(-2, n + 2, (m,), generator=_g(8 + k)) for k, n in enumerate((3, 3) + PM_SIZE)], 1)


def _corr5(seed=0):
    return rnd(1, 3, 3, *PM_SIZE, seed=seed)


def _select_inputs(empty):
    B = _b(empty, 1)
    cand = torch.randint(0, 6, (B, 2, 3, 8, 2), generator=_g(0))
    scores = distinct(1, 2, 3, 8, seed=1)[:B]
    valid = (torch.rand(1, 2, 3, 8, generator=_g(2)) < 0.7)[:B]
    return [Arg(cand, I), Arg(scores, X), Arg(valid, I)]


# ---- 4. hough -------------------------------------------------------------------------------------------------
def _hough_match_inputs(empty):
    Ns = 0 if empty else 9
    return [Arg(torch.rand(1, Ns, 11, generator=_g(0)), X), Arg(torch.rand(1, Ns, 2, generator=_g(1)) * 40, F),
            Arg(torch.rand(1, 11, 2, generator=_g(2)) * 30, F)]


def _hough_vote_inputs(empty, nbins, kernel):
    Ns, n = 0 if empty else 9, 1
    for s in nbins:
        n *= s
    args = [Arg(torch.rand(1, Ns, 11, generator=_g(0)), X), Arg(torch.randint(-1, n, (1, Ns, 11), generator=_g(3)), I)]
    if kernel:
        args.append(Arg(torch.rand(*([3] * len(nbins)), generator=_g(4)), F))
    return args


# ---- 5. soft argmax -------------------------------------------------------------------------------------------
def _ksa_inputs(empty):
    return [Arg(rnd(1, 0 if empty else 3, 4, 5, 6, scale=0.1), X)]


def _km(coords):
    km = ops.kernel_map4d(coords, 3)
    return km.in_rows, km.out_rows, km.offsets_ptr


CASES = [
    Case("corr4d", "default", _corr_inputs, lambda s, t: ops.corr4d(s, t)),
    Case("corr4d", "relu-power3-eps0", _corr_inputs, lambda s, t: ops.corr4d(s, t, relu=True, power=3.0, eps=0.0)),
    Case("corr4d", "unnormalized-relu", _corr_inputs, lambda s, t: ops.corr4d(s, t, normalize=False, relu=True),
         scale=4.0, grad_scale=8.0),
    Case("corr4d_topk", "normalized-k4", _topk_inputs, lambda s, t: ops.corr4d_topk(s, t, 4)),
    Case("corr4d_topk", "unnormalized-k5", _topk_inputs, lambda s, t: ops.corr4d_topk(s, t, 5, normalize=False)),
    Case("mutual_matching", "default", _mm_inputs, lambda c: ops.mutual_matching(c), grad_scale=8.0),
    Case("conv4d", "bias-pad1", _conv_inputs, lambda x, w, b: ops.conv4d(x, w, b, 1), scale=4.0, grad_scale=16.0),
    Case("conv4d", "nobias-nopad", lambda e: _conv_inputs(e, bias=False), lambda x, w: ops.conv4d(x, w),
         scale=4.0, grad_scale=16.0),
    Case("conv4d", "bias-pad-1010", _conv_inputs, lambda x, w, b: ops.conv4d(x, w, b, (1, 0, 1, 0)), scale=4.0,
         grad_scale=16.0),
    Case("max_pool4d", "k2", _pool_inputs, lambda x: ops.max_pool4d(x, 2)),
    Case("max_pool4d", "k2121", _pool_inputs, lambda x: ops.max_pool4d(x, (2, 1, 2, 1))),
    Case("kernel_map4d", "k3", lambda e: [Arg(_coords(e), I)], _km),
    Case("kernel_map4d", "k3-int32", lambda e: [Arg(_coords(e).int(), I)], _km),
    Case("sparse_conv4d", "bias", _sparse_inputs, lambda f, c, w, b: ops.sparse_conv4d(f, c, w, b),
         scale=4.0, grad_scale=8.0),
    Case("sparse_conv4d", "nobias", lambda e: _sparse_inputs(e, bias=False), lambda f, c, w: ops.sparse_conv4d(f, c, w),
         scale=4.0, grad_scale=8.0),
    Case("patchmatch_propagate", "neighbours", lambda e: [Arg(_matches(e), I)],
         lambda m: ops.patchmatch_propagate(m, ops.patchmatch.pmnc_offsets().to(m.device), target_size=PM_SIZE)),
    Case("patchmatch_propagate", "random3-radius2", lambda e: [Arg(_matches(e), I)],
         lambda m: ops.patchmatch_propagate(m, ops.patchmatch.pmnc_offsets().to(m.device), target_size=PM_SIZE,
                                            random_samples=3, radius=2, seed=11, iteration=2)),
    Case("gather_windows4d", "w3", lambda e: [Arg(_corr5(), X), Arg(_candidates(e), I)],
         lambda c, cand: ops.gather_windows4d(c, cand, 3)),
    Case("gather_windows4d", "w1", lambda e: [Arg(_corr5(), X), Arg(_candidates(e), I)],
         lambda c, cand: ops.gather_windows4d(c, cand, 1)),
    Case("gather_windows4d_points", "w3", lambda e: [Arg(_corr5(), X), Arg(_points(e), I)],
         lambda c, p: ops.gather_windows4d_points(c, p, 3)),
    Case("gather_windows4d_points", "w5", lambda e: [Arg(_corr5(), X), Arg(_points(e), I)],
         lambda c, p: ops.gather_windows4d_points(c, p, 5)),
    Case("gather_windows4d_linear", "bias-w3",
         lambda e: [Arg(_corr5(), X), Arg(_points(e), I), Arg(rnd(2, 3, 3, 3, 3, seed=4, scale=0.2), X),
                    Arg(rnd(2, seed=5), X)],
         lambda c, p, w, b: ops.gather_windows4d_linear(c, p, w, b), scale=8.0, grad_scale=16.0),
    Case("gather_windows4d_linear", "nobias-w1",
         lambda e: [Arg(_corr5(), X), Arg(_points(e), I), Arg(rnd(3, 1, 1, 1, 1, seed=4), X)],
         lambda c, p, w: ops.gather_windows4d_linear(c, p, w), scale=4.0, grad_scale=16.0),
    Case("patchmatch_select", "k3", _select_inputs, lambda cand, s, v: ops.patchmatch_select(cand, s, v, 3)),
    Case("patchmatch_select", "k8-indices", _select_inputs,
         lambda cand, s, v: ops.patchmatch_select(cand, s, v, 8, return_indices=True)),
    Case("hough_match", "smooth-ncells64", _hough_match_inputs,
         lambda a, sc, tc: ops.hough_match(a, sc, tc, (40, 40), (30, 30), ncells=64), atomics=True, scale=2.0),
    Case("hough_match", "nosmooth-ncells512", _hough_match_inputs,
         lambda a, sc, tc: ops.hough_match(a, sc, tc, (40, 40), (30, 30), ncells=512, smooth=False), atomics=True,
         scale=2.0),
    Case("hough_vote", "1d-kernel", lambda e: _hough_vote_inputs(e, (20,), True),
         lambda a, b, k: ops.hough_vote(a, b, 20, smooth_kernel=k), atomics=True, scale=2.0),
    Case("hough_vote", "2d-nokernel", lambda e: _hough_vote_inputs(e, (3, 4), False),
         lambda a, b: ops.hough_vote(a, b, (3, 4)), atomics=True, scale=2.0),
    Case("hough_vote", "3d-kernel", lambda e: _hough_vote_inputs(e, (2, 3, 4), True),
         lambda a, b, k: ops.hough_vote(a, b, (2, 3, 4), smooth_kernel=k), atomics=True, scale=2.0),
    Case("kernel_soft_argmax", "sigma5", _ksa_inputs, lambda c: ops.kernel_soft_argmax(c), scale=2.0),
    Case("kernel_soft_argmax", "plain-beta10", _ksa_inputs,
         lambda c: ops.kernel_soft_argmax(c, beta=10.0, sigma=None), scale=2.0),
    Case("kernel_soft_argmax", "unnormalized", _ksa_inputs,
         lambda c: ops.kernel_soft_argmax(c, sigma=2.0, normalize=False), scale=2.0),
]
