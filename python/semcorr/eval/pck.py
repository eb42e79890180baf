"""Percentage of correct keypoints (PCK) and its reference lengths.

A transferred keypoint is correct when its L2 distance to the ground truth is
``<= alpha * L``. Three conventions for the reference length ``L`` are in use:

* ``alpha_img`` (PF-PASCAL): ``L = max(H, W)`` of the image the error is measured in.
* ``alpha_bbox`` (SPair-71k, PF-PASCAL with boxes): ``L = max(h, w)`` of the object box.
* PF-WILLOW's keypoint box: ``L`` = longest side of the box around the *valid* keypoints
  (PF-WILLOW ships no object boxes; NC-Net/WeakAlign/HPF all use this box).

Keypoints are padded to a fixed count with ``-1``; a keypoint is valid when both of its
coordinates are finite and ``>= 0``. Padded keypoints never count, neither in PCK nor in
``L``. All functions work on batches: keypoints ``(B, N, 2)`` as ``(x, y)`` pixels.
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = [
    "valid_mask",
    "keypoint_distances",
    "pck",
    "pck_counts",
    "thresh_img",
    "thresh_bbox",
    "thresh_kps_bbox",
]


def valid_mask(kps: torch.Tensor) -> torch.Tensor:
    """(..., N, 2) keypoints -> (..., N) bool: both coordinates finite and >= 0."""
    finite = torch.isfinite(kps).all(dim=-1)
    return finite & (kps[..., 0] >= 0) & (kps[..., 1] >= 0)


def keypoint_distances(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """L2 distance per keypoint, (B, N); ``inf`` where the prediction is not finite."""
    _check_kps(pred, "pred")
    _check_kps(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and gt {tuple(gt.shape)} must have the same shape")
    d = torch.linalg.vector_norm(pred.double() - gt.double(), dim=-1)
    return torch.where(torch.isfinite(d), d, torch.full_like(d, float("inf")))


def pck_counts(pred: torch.Tensor, gt: torch.Tensor, thresh: torch.Tensor,
               alphas: float | Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer counts behind PCK.

    Returns ``(correct, n_valid)``: ``correct`` is (B, A) int64, the number of valid
    keypoints within ``alpha * thresh`` for every alpha; ``n_valid`` is (B,) int64.
    Validity is decided by ``gt`` only (a missing prediction of a valid keypoint is wrong).
    """
    alphas_t = torch.as_tensor(_as_list(alphas), dtype=torch.float64)
    dist = keypoint_distances(pred, gt)                               # (B, N)
    valid = valid_mask(gt)                                            # (B, N)
    thresh = torch.as_tensor(thresh, dtype=torch.float64, device=dist.device).reshape(-1)
    if thresh.numel() != dist.shape[0]:
        raise ValueError(f"thresh has {thresh.numel()} entries for a batch of {dist.shape[0]}")
    limit = alphas_t.to(dist.device)[None, :, None] * thresh[:, None, None]    # (B, A, 1)
    ok = (dist[:, None, :] <= limit) & valid[:, None, :]
    return ok.sum(dim=-1).long(), valid.sum(dim=-1).long()


def pck(pred: torch.Tensor, gt: torch.Tensor, thresh: torch.Tensor, alpha: float) -> torch.Tensor:
    """Fraction of valid keypoints with ``||pred - gt|| <= alpha * thresh``, per pair.

    pred, gt: (B, N, 2) pixels (x, y), gt padded with -1. thresh: (B,) reference lengths
    (see :func:`thresh_img`, :func:`thresh_bbox`, :func:`thresh_kps_bbox`).
    Returns (B,) float64; ``nan`` for a pair without any valid keypoint.
    """
    correct, n_valid = pck_counts(pred, gt, thresh, [float(alpha)])
    out = correct[:, 0].double() / n_valid.double()
    return torch.where(n_valid > 0, out, torch.full_like(out, float("nan")))


def thresh_img(size) -> torch.Tensor:
    """``max(H, W)``. ``size``: an image tensor (..., H, W), a (B, 2) tensor of (H, W), or an (H, W) pair."""
    if isinstance(size, torch.Tensor) and size.dim() >= 3:
        return torch.tensor(float(max(size.shape[-2], size.shape[-1])), dtype=torch.float64)
    s = torch.as_tensor(size, dtype=torch.float64)
    if s.shape[-1] != 2:
        raise ValueError("size must end in (H, W)")
    return s.max(dim=-1).values


def thresh_bbox(bbox) -> torch.Tensor:
    """``max(x2 - x1, y2 - y1)`` of boxes (..., 4) given as (x1, y1, x2, y2)."""
    b = torch.as_tensor(bbox, dtype=torch.float64)
    if b.shape[-1] != 4:
        raise ValueError("bbox must end in (x1, y1, x2, y2)")
    return torch.maximum(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1])


def thresh_kps_bbox(kps: torch.Tensor) -> torch.Tensor:
    """PF-WILLOW: longest side of the box around the valid keypoints of (..., N, 2).

    ``nan`` where no keypoint is valid. Padded (-1) keypoints are ignored.
    """
    k = torch.as_tensor(kps, dtype=torch.float64)
    valid = valid_mask(k)
    inf = torch.tensor(float("inf"), dtype=torch.float64)
    lo = torch.where(valid[..., None], k, inf).amin(dim=-2)
    hi = torch.where(valid[..., None], k, -inf).amax(dim=-2)
    side = (hi - lo).amax(dim=-1)
    return torch.where(valid.any(dim=-1), side, torch.full_like(side, float("nan")))


def _check_kps(t: torch.Tensor, name: str) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 3 or t.shape[-1] != 2:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a (B, N, 2) tensor of (x, y) pixels, got {shape}")


def _as_list(alphas) -> list[float]:
    if isinstance(alphas, (int, float)):
        return [float(alphas)]
    return [float(a) for a in alphas]
