"""Pure-PyTorch / pure-Python references of the PatchMatch ops (docs/OPS.md#patchmatch): the contract written plainly.

Loops over pixels in Python (slow; meant for small test shapes). The random candidates use the same
counter-based hash as the kernels, written with Python integers masked to 64 bits.
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["patchmatch_propagate", "gather_windows4d", "gather_windows4d_points", "gather_windows4d_linear",
           "patchmatch_select", "pm_hash"]

_M64 = (1 << 64) - 1
_NEIGHBOURS8 = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _mix64(z: int) -> int:
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def pm_hash(seed: int, iteration: int, b: int, i: int, j: int, sample: int) -> int:
    """The 64-bit counter-based hash of the random candidates: splitmix64's finaliser chained over the key."""
    h = _mix64(seed & _M64)
    for x in (iteration, b, i, j, sample):
        h = _mix64(h ^ (x & _M64))
    return h


def _bounded(bits32: int, n: int) -> int:
    return (bits32 * n) >> 32


def patchmatch_propagate(matches: Tensor, offsets: Tensor, *, target_size: Sequence[int], random_samples: int = 0,
                         radius: int = 0, seed: int = 0, iteration: int = 0) -> Tuple[Tensor, Tensor]:
    """Reference of :func:`semcorr_ext.ops.patchmatch_propagate` (same arguments, order and validity rule)."""
    B, Hs, Ws, K, _ = matches.shape
    P, R = offsets.shape[0], int(random_samples)
    Ht, Wt = int(target_size[0]), int(target_size[1])
    N = K * (9 + P + R)
    m = matches.tolist()
    off = offsets.tolist()
    cand = torch.empty(B, Hs, Ws, N, 2, dtype=torch.int64)
    valid = torch.empty(B, Hs, Ws, N, dtype=torch.bool)

    def clamp(r, c):
        return min(max(r, 0), Ht - 1), min(max(c, 0), Wt - 1)

    for b in range(B):
        for i in range(Hs):
            for j in range(Ws):
                own = m[b][i][j]
                items = [(tuple(own[k]), True) for k in range(K)]
                for di, dj in off:
                    ii, jj = i + di, j + dj
                    inside = 0 <= ii < Hs and 0 <= jj < Ws
                    for k in range(K):
                        items.append((tuple(m[b][ii][jj][k]) if inside else tuple(own[k]), inside))
                for k in range(K):
                    for dr, dc in _NEIGHBOURS8:
                        items.append(((own[k][0] + dr, own[k][1] + dc), True))
                for k in range(K):
                    for r in range(R):
                        h = pm_hash(seed, iteration, b, i, j, k * R + r)
                        span = 2 * radius + 1
                        items.append(((own[k][0] + _bounded(h & 0xFFFFFFFF, span) - radius,
                                       own[k][1] + _bounded(h >> 32, span) - radius), True))
                seen = set()
                for n, (rc, ok) in enumerate(items):
                    rc = clamp(*rc)
                    cand[b, i, j, n, 0], cand[b, i, j, n, 1] = rc
                    valid[b, i, j, n] = ok and rc not in seen
                    seen.add(rc)
    return cand.to(matches.device), valid.to(matches.device)


def gather_windows4d(corr: Tensor, candidates: Tensor, window: int = 5) -> Tensor:
    """Reference of :func:`semcorr_ext.ops.gather_windows4d` by zero-padding the volume and advanced indexing
    (differentiable through PyTorch's own autograd)."""
    if corr.dim() == 6 and corr.shape[1] == 1:
        corr = corr.squeeze(1)
    B, Hs, Ws, Ht, Wt = corr.shape
    N = candidates.shape[3]
    r = window // 2
    pad = torch.nn.functional.pad(corr, (r, r, r, r, r, r, r, r))  # positions shift by r in every dim
    d = torch.arange(window, device=corr.device)
    bi = torch.arange(B, device=corr.device).view(B, 1, 1, 1, 1, 1, 1, 1)
    ii = (torch.arange(Hs, device=corr.device).view(1, Hs, 1, 1, 1, 1, 1, 1) + d.view(1, 1, 1, 1, window, 1, 1, 1))
    jj = (torch.arange(Ws, device=corr.device).view(1, 1, Ws, 1, 1, 1, 1, 1) + d.view(1, 1, 1, 1, 1, window, 1, 1))
    u = candidates[..., 0].view(B, Hs, Ws, N, 1, 1, 1, 1) + r + (d.view(1, 1, 1, 1, 1, 1, window, 1) - r)
    v = candidates[..., 1].view(B, Hs, Ws, N, 1, 1, 1, 1) + r + (d.view(1, 1, 1, 1, 1, 1, 1, window) - r)
    # candidates far outside the grid: read a zero of the padding (positions beyond it are all zero anyway)
    outside = (u < 0) | (u >= Ht + 2 * r) | (v < 0) | (v >= Wt + 2 * r)
    out = pad[bi, ii, jj, u.clamp(0, Ht + 2 * r - 1), v.clamp(0, Wt + 2 * r - 1)]
    return torch.where(outside, torch.zeros((), dtype=out.dtype, device=out.device), out)


def gather_windows4d_points(corr: Tensor, points: Tensor, window: int = 5) -> Tensor:
    """Reference of :func:`semcorr_ext.ops.gather_windows4d_points`: every tap's 4D position, read where it is
    inside the volume (differentiable through PyTorch's own autograd)."""
    if corr.dim() == 6 and corr.shape[1] == 1:
        corr = corr.squeeze(1)
    B, Hs, Ws, Ht, Wt = corr.shape
    M, r = points.shape[0], window // 2
    d = torch.arange(window, device=corr.device) - r
    shape = [M] + [window] * 4
    pos = [points[:, 0].view(M, 1, 1, 1, 1).expand(shape)]
    for k in range(4):
        view = [1, 1, 1, 1, 1]
        view[k + 1] = window
        pos.append(points[:, k + 1].view(M, 1, 1, 1, 1) + d.view(view))
    if corr.numel() == 0:  # every tap is outside an empty volume (and indexing it would raise)
        return corr.new_zeros(shape)
    inside = torch.ones(shape, dtype=torch.bool, device=corr.device)
    for p, n in zip(pos, (B, Hs, Ws, Ht, Wt)):
        inside &= (p >= 0) & (p < n)
    out = corr[tuple(p.clamp(0, max(n - 1, 0)) for p, n in zip(pos, (B, Hs, Ws, Ht, Wt)))]
    return torch.where(inside, out, torch.zeros((), dtype=out.dtype, device=out.device))


def gather_windows4d_linear(corr: Tensor, points: Tensor, weight: Tensor, bias=None) -> Tensor:
    """Reference of :func:`semcorr_ext.ops.gather_windows4d_linear`: the windows, then ``F.linear``."""
    win = gather_windows4d_points(corr, points, weight.shape[-1])
    return torch.nn.functional.linear(win.flatten(1), weight.flatten(1), bias)


def patchmatch_select(candidates: Tensor, scores: Tensor, valid: Tensor, k: int, return_indices: bool = False):
    """Reference of :func:`semcorr_ext.ops.patchmatch_select`: a stable sort of the valid candidates by
    (NaN last, score descending, index ascending)."""
    B, Hs, Ws, N, _ = candidates.shape
    m = torch.full((B, Hs, Ws, k, 2), -1, dtype=torch.int64, device=candidates.device)
    s = torch.full((B, Hs, Ws, k), float("-inf"), dtype=scores.dtype, device=scores.device)
    idx = torch.full((B, Hs, Ws, k), -1, dtype=torch.int64, device=candidates.device)
    sl = scores.detach().double().tolist() if scores.numel() else None
    vl = valid.tolist() if valid.numel() else None
    for b in range(B):
        for i in range(Hs):
            for j in range(Ws):
                order = [n for n in range(N) if vl[b][i][j][n]]
                key = lambda n: (sl[b][i][j][n] != sl[b][i][j][n], -sl[b][i][j][n]  # noqa: E731
                                 if sl[b][i][j][n] == sl[b][i][j][n] else 0.0, n)
                order.sort(key=key)
                for t, n in enumerate(order[:k]):
                    idx[b, i, j, t] = n
                    m[b, i, j, t] = candidates[b, i, j, n]
    sel = idx.clamp_min(0)
    picked = torch.gather(scores, 3, sel) if N > 0 else s
    s = torch.where(idx >= 0, picked, s)
    return (m, s, idx) if return_indices else (m, s)
