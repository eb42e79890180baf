"""PatchMatch neighbourhood consensus written plainly, for agreement tests and as benchmark baselines.

* :func:`pmnc_candidates_plain`: PMNC's propagation as the published method describes it — shift the whole
  match field by each offset (no padding wrap), add the 3x3 neighbourhood of the own match — vectorised torch,
  no de-duplication.
* :func:`windows_unfold`: the local 4D windows around candidates from a zero-padded volume and ``unfold``.
* :func:`dense_nc_scores`: the scoring conv stack applied densely (NC-Net's neighbourhood consensus, "same"
  padding) with plain ``conv3d`` loops (no semcorr op), the proxy against which window scoring is checked.
"""
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["pmnc_candidates_plain", "windows_unfold", "conv4d_plain", "dense_nc_scores"]


def pmnc_candidates_plain(field: torch.Tensor, offsets: Sequence, target_size) -> torch.Tensor:
    """field (B, Hs, Ws, 2) int64 (row, col) -> (B, Hs, Ws, 1 + P + 8, 2) candidates, (-1, -1) where a shifted
    neighbour does not exist. Candidates are clamped into the target grid."""
    B, Hs, Ws, _ = field.shape
    Ht, Wt = target_size
    out, exists = [field], [torch.ones(B, Hs, Ws, dtype=torch.bool)]
    for di, dj in offsets:
        shifted = torch.zeros_like(field)
        ok = torch.zeros(B, Hs, Ws, dtype=torch.bool)
        i0, i1 = max(0, -di), min(Hs, Hs - di)
        j0, j1 = max(0, -dj), min(Ws, Ws - dj)
        if i0 < i1 and j0 < j1:
            shifted[:, i0:i1, j0:j1] = field[:, i0 + di:i1 + di, j0 + dj:j1 + dj]
            ok[:, i0:i1, j0:j1] = True
        out.append(shifted)
        exists.append(ok)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                out.append(field + torch.tensor([dr, dc]))
                exists.append(torch.ones(B, Hs, Ws, dtype=torch.bool))
    cand = torch.stack(out, 3)
    cand = torch.stack([cand[..., 0].clamp(0, Ht - 1), cand[..., 1].clamp(0, Wt - 1)], -1)
    return torch.where(torch.stack(exists, 3).unsqueeze(-1), cand, torch.full_like(cand, -1))


def windows_unfold(corr: torch.Tensor, cand: torch.Tensor, w: int) -> torch.Tensor:
    """(B, Hs, Ws, Ht, Wt), (B, Hs, Ws, N, 2) in-grid candidates -> (B, Hs, Ws, N, w, w, w, w) by unfolding the
    zero-padded volume over all four dims and indexing the candidates' windows."""
    B, Hs, Ws, Ht, Wt = corr.shape
    r = w // 2
    pad = F.pad(corr, (r, r) * 4)
    # (B, Hs, Ws, Ht, Wt, w, w, w, w): every 4D position's window
    win = pad.unfold(1, w, 1).unfold(2, w, 1).unfold(3, w, 1).unfold(4, w, 1)
    b = torch.arange(B).view(B, 1, 1, 1)
    i = torch.arange(Hs).view(1, Hs, 1, 1)
    j = torch.arange(Ws).view(1, 1, Ws, 1)
    return win[b, i, j, cand[..., 0], cand[..., 1]]


def conv4d_plain(x: torch.Tensor, weight: torch.Tensor, bias=None, padding=0) -> torch.Tensor:
    """4D cross-correlation as a sum of conv3d over the first kernel dim (NC-Net's Conv4d, written plainly).
    x (B, Cin, A, Bd, C, D), weight (Cout, Cin, k1, k2, k3, k4), zero padding `padding` in every dim."""
    k1 = weight.shape[2]
    p = padding
    xp = F.pad(x, (0, 0, 0, 0, 0, 0, p, p)) if p else x
    A = xp.shape[2] - k1 + 1
    out = 0
    for t in range(k1):
        sl = xp[:, :, t:t + A].transpose(1, 2).reshape(-1, x.shape[1], *xp.shape[3:])
        out = out + F.conv3d(sl, weight[:, :, t], padding=p)
    out = out.view(x.shape[0], A, weight.shape[0], *out.shape[2:]).transpose(1, 2)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1, 1, 1)
    return out


def dense_nc_scores(corr: torch.Tensor, layers, symmetric: bool = True) -> torch.Tensor:
    """Apply a conv4d stack [(weight, bias), ...] with "same" padding and ReLU between layers to the whole
    volume (B, Hs, Ws, Ht, Wt) -> (B, Hs, Ws, Ht, Wt); ``symmetric`` adds the stack applied to the transposed
    volume (source <-> target), transposed back (NC-Net's symmetric mode)."""

    def stack(x):
        x = x.unsqueeze(1)
        for li, (w, b) in enumerate(layers):
            x = conv4d_plain(x, w, b, padding=w.shape[-1] // 2)
            if li + 1 < len(layers):
                x = F.relu(x)
        return x.squeeze(1)

    out = stack(corr)
    if symmetric:
        out = out + stack(corr.permute(0, 3, 4, 1, 2)).permute(0, 3, 4, 1, 2)
    return out
