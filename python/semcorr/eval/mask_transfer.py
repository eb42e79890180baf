"""Caltech-101 metrics: quality of an object mask transferred through correspondences.

The dense correspondence is given for every target pixel as the source location it comes
from (``(H_t, W_t, 2)`` of ``(x, y)`` source pixels, non-finite or negative = no match).
The source mask is read at those locations (nearest pixel), giving the transferred mask
in the target frame, which is compared with the target mask:

* LT-ACC (label transfer accuracy): fraction of target pixels whose transferred label
  (object / background) equals the target label.
* IoU: ``|transferred & target| / |transferred | target|`` of the object masks.
* LOC-ERR (localisation error, from DSP): every pixel is expressed in coordinates relative
  to its mask's bounding box (0..1 across the box); the error is the mean of
  ``|dx| + |dy|`` between a target pixel and its source match, over target pixels whose
  match falls inside the source image.

These follow the definitions used by DSP, Proposal Flow, WeakAlign and HPF (Caltech-101).
"""
from __future__ import annotations

import math

import torch

__all__ = ["transfer_mask", "label_transfer_accuracy", "mask_iou", "localization_error"]


def _inside(pts: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Round (..., 2) source points to pixels; return (ix, iy, inside-mask)."""
    finite = torch.isfinite(pts).all(dim=-1)
    p = torch.where(finite[..., None], pts, torch.full_like(pts, -1.0))
    ix = torch.round(p[..., 0]).long()
    iy = torch.round(p[..., 1]).long()
    inside = finite & (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    return ix.clamp(0, w - 1), iy.clamp(0, h - 1), inside


def transfer_mask(src_mask: torch.Tensor, src_points: torch.Tensor) -> torch.Tensor:
    """Read ``src_mask`` (H_s, W_s) at ``src_points`` (..., 2); outside/invalid reads False."""
    m = torch.as_tensor(src_mask).bool()
    h, w = m.shape
    ix, iy, inside = _inside(torch.as_tensor(src_points, dtype=torch.float64), h, w)
    return m[iy, ix] & inside


def label_transfer_accuracy(transferred: torch.Tensor, tgt_mask: torch.Tensor) -> float:
    t = torch.as_tensor(transferred).bool()
    g = torch.as_tensor(tgt_mask).bool()
    if t.shape != g.shape:
        raise ValueError(f"mask shapes differ: {tuple(t.shape)} vs {tuple(g.shape)}")
    return float((t == g).double().mean())


def mask_iou(transferred: torch.Tensor, tgt_mask: torch.Tensor) -> float:
    """IoU of two boolean masks; ``nan`` when both are empty."""
    t = torch.as_tensor(transferred).bool()
    g = torch.as_tensor(tgt_mask).bool()
    if t.shape != g.shape:
        raise ValueError(f"mask shapes differ: {tuple(t.shape)} vs {tuple(g.shape)}")
    union = int((t | g).sum())
    if union == 0:
        return math.nan
    return int((t & g).sum()) / union


def _box_relative(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of x and y relative to the mask's bounding box: (x - left) / box_width."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if ys.numel() == 0:
        raise ValueError("localization_error needs non-empty masks")
    left, right = int(xs.min()), int(xs.max())
    top, bottom = int(ys.min()), int(ys.max())
    h, w = mask.shape
    gx = torch.arange(w, dtype=torch.float64)[None, :].expand(h, w)
    gy = torch.arange(h, dtype=torch.float64)[:, None].expand(h, w)
    return (gx - left) / (right - left + 1), (gy - top) / (bottom - top + 1)


def localization_error(src_mask: torch.Tensor, tgt_mask: torch.Tensor,
                       src_points: torch.Tensor) -> float:
    """LOC-ERR. ``src_points``: (H_t, W_t, 2) source location of every target pixel.

    ``nan`` when no target pixel has a match inside the source image.
    """
    s = torch.as_tensor(src_mask).bool()
    t = torch.as_tensor(tgt_mask).bool()
    pts = torch.as_tensor(src_points, dtype=torch.float64)
    if pts.shape[:2] != t.shape or pts.shape[-1] != 2:
        raise ValueError(f"src_points must be (H_t, W_t, 2) = {tuple(t.shape) + (2,)}, got {tuple(pts.shape)}")
    tx, ty = _box_relative(t)
    sx, sy = _box_relative(s)
    ix, iy, inside = _inside(pts, *s.shape)
    if not bool(inside.any()):
        return math.nan
    err = (tx - sx[iy, ix]).abs() + (ty - sy[iy, ix]).abs()
    return float(err[inside].mean())
