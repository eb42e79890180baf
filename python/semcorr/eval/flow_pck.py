"""TSS metric: flow PCK (the flow accuracy of Taniai et al., CVPR 2016).

A ground-truth flow field ``F`` on the source image maps pixel ``p`` to ``p + F(p)`` in the
target. A pixel is evaluated when it lies in the source foreground mask and its ground
truth is known (Middlebury ``.flo`` marks unknown flow with components > 1e9); it is
correct when the predicted target location is within ``alpha * L`` of the ground truth,
``L = max(H, W)`` of the target image.
"""
from __future__ import annotations

import math

import torch

__all__ = ["UNKNOWN_FLOW_THRESH", "flow_valid", "flow_pck"]

UNKNOWN_FLOW_THRESH = 1e9


def _hw2(flow) -> torch.Tensor:
    f = torch.as_tensor(flow, dtype=torch.float64)
    if f.dim() != 3:
        raise ValueError("flow must be (H, W, 2) or (2, H, W)")
    if f.shape[-1] == 2:
        return f
    if f.shape[0] == 2:
        return f.permute(1, 2, 0)
    raise ValueError(f"flow must be (H, W, 2) or (2, H, W), got {tuple(f.shape)}")


def flow_valid(flow) -> torch.Tensor:
    """(H, W) bool: known ground-truth flow (finite, both components <= 1e9 in magnitude)."""
    f = _hw2(flow)
    return torch.isfinite(f).all(-1) & (f.abs() <= UNKNOWN_FLOW_THRESH).all(-1)


def flow_pck(pred_flow, gt_flow, mask, thresh: float, alpha: float) -> float:
    """Fraction of evaluated pixels with ``||pred_flow - gt_flow|| <= alpha * thresh``.

    Flows are (H, W, 2) or (2, H, W) displacements in pixels on the source image; ``mask``
    (H, W) selects the source foreground. ``nan`` when no pixel is evaluated.
    """
    p, g = _hw2(pred_flow), _hw2(gt_flow)
    if p.shape != g.shape:
        raise ValueError(f"flow shapes differ: {tuple(p.shape)} vs {tuple(g.shape)}")
    sel = torch.as_tensor(mask).bool() & flow_valid(g)
    n = int(sel.sum())
    if n == 0:
        return math.nan
    d = torch.linalg.vector_norm(p - g, dim=-1)
    d = torch.where(torch.isfinite(d), d, torch.full_like(d, float("inf")))
    return int(((d <= alpha * thresh) & sel).sum()) / n
