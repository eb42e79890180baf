"""Sparse NC-Net's relocalisation of matches (``lib/relocalize.py`` of ignacio-rocco/sparse-ncnet).

The published evaluation (``eval/eval_hpatches_extract.py``, ``eval/eval_inloc_extract.py``: ``--relocalize 1
--reloc_type hard_soft --reloc_hard_crop_size 2``) runs the consensus on features max-pooled 2x2 from a grid
twice as fine, then moves every match back to that fine grid:

* hard: the match (coarse cells A, B) covers ``crop x crop`` fine cells on each side (``crop = 2``: the 4
  fine cells of the coarse cell; ``crop = 3``: the 3x3 around it). The pair of fine cells with the largest
  correlation (L2-normalised fine features) is taken: A moves to the row of the maximum of the crop x crop
  correlation matrix, B to its column (first maximum on ties, as ``torch.argmax``).
* soft: on the fine grid, B moves by the expected offset under ``softmax(sigma * <f_A(centre), f_B(3x3)>)``
  over its 3x3 neighbourhood (sigma = 10), and A likewise against B's centre: sub-cell positions.

Positions are ``(yA, xA, yB, xB)`` in cells. The published code cuts the neighbourhoods with
``torchvision.ops.roi_pool`` on integer boxes: each bin is one cell, and a bin outside the feature map is 0;
:func:`gather_cells` is that, without building boxes.
"""
from typing import Optional

import torch

__all__ = ["gather_cells", "relocalize_hard", "relocalize_soft", "relocalize", "RELOCALIZATIONS"]

#: the published ``--reloc_type`` values (None: no relocalisation)
RELOCALIZATIONS = (None, "hard", "soft", "hard_soft", "hard_hard")


def gather_cells(feat: torch.Tensor, b: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``feat`` (B, C, H, W) at integer cells: ``b`` (N,), ``y``/``x`` (N, M) -> (N, M, C); cells outside the map
    give zeros (what ``roi_pool`` gives for an empty bin)."""
    B, C, H, W = feat.shape
    inside = (y >= 0) & (y < H) & (x >= 0) & (x < W)
    flat = (b.view(-1, 1) * H + y.clamp(0, H - 1)) * W + x.clamp(0, W - 1)
    rows = feat.permute(0, 2, 3, 1).reshape(B * H * W, C)[flat.reshape(-1)].reshape(*flat.shape, C)
    return rows * inside.unsqueeze(-1).to(rows.dtype)


def _cells(pos: torch.Tensor) -> torch.Tensor:
    # roi_pool rounds its box corners; positions reaching here are whole cells
    return torch.round(pos).long()


def relocalize_hard(b: torch.Tensor, pos: torch.Tensor, feat_a: torch.Tensor, feat_b: torch.Tensor,
                    crop_size: int = 2, upsample: bool = True) -> torch.Tensor:
    """Hard relocalisation (published ``relocalize``). ``pos`` (N, 4) = (yA, xA, yB, xB) on the coarse grid
    (``upsample``: doubled first, as after the 2x2 max-pool) or already on the fine grid; ``feat_a``/``feat_b``
    (B, C, H, W) the L2-normalised fine features. Returns the new (N, 4) positions on the fine grid."""
    if crop_size not in (2, 3):
        raise ValueError("relocalize_hard: crop_size must be 2 or 3 (the published choices), got %r" % (crop_size,))
    if upsample:
        pos = pos * 2
    d = torch.arange(crop_size, device=pos.device) - crop_size % 2  # crop 2: (0, 1); crop 3: (-1, 0, 1)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    dy, dx = dy.reshape(1, -1), dx.reshape(1, -1)
    c = _cells(pos)
    fa = gather_cells(feat_a, b, c[:, :1] + dy, c[:, 1:2] + dx)  # (N, crop^2, C)
    fb = gather_cells(feat_b, b, c[:, 2:3] + dy, c[:, 3:4] + dx)
    corr = torch.bmm(fa, fb.transpose(1, 2))  # (N, crop^2 of A, crop^2 of B)
    ia = corr.max(dim=2).values.argmax(dim=1)
    ib = corr.max(dim=1).values.argmax(dim=1)
    delta = torch.stack([dy[0, ia], dx[0, ia], dy[0, ib], dx[0, ib]], 1).to(pos.dtype)
    return pos + delta


def relocalize_soft(b: torch.Tensor, pos: torch.Tensor, feat_a: torch.Tensor, feat_b: torch.Tensor,
                    sigma: float = 10.0, upsample: bool = True) -> torch.Tensor:
    """Soft relocalisation (published ``relocalize_soft``): each side moves by the softmax-weighted mean offset
    over its 3x3 fine neighbourhood, weights ``softmax(sigma * correlation with the other side's centre)``."""
    if upsample:
        pos = pos * 2
    d = torch.arange(-1, 2, device=pos.device)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    dy, dx = dy.reshape(1, -1), dx.reshape(1, -1)
    c = _cells(pos)
    fa = gather_cells(feat_a, b, c[:, :1] + dy, c[:, 1:2] + dx)  # (N, 9, C); index 4 is the centre
    fb = gather_cells(feat_b, b, c[:, 2:3] + dy, c[:, 3:4] + dx)
    w_b = torch.softmax(sigma * (fb * fa[:, 4:5]).sum(-1), dim=1)  # where B moves, seen from A's centre
    w_a = torch.softmax(sigma * (fa * fb[:, 4:5]).sum(-1), dim=1)
    fy, fx = dy.to(pos.dtype), dx.to(pos.dtype)
    delta = torch.stack([(w_a * fy).sum(1), (w_a * fx).sum(1), (w_b * fy).sum(1), (w_b * fx).sum(1)], 1)
    return pos + delta


def relocalize(b: torch.Tensor, pos: torch.Tensor, feat_a: torch.Tensor, feat_b: torch.Tensor,
               method: Optional[str] = "hard_soft", crop_size: int = 2) -> torch.Tensor:
    """The published ``--reloc_type`` chains on coarse positions (N, 4) -> fine positions: ``"hard"``,
    ``"soft"``, ``"hard_soft"`` (the evaluation default: hard with ``crop_size``, then soft without
    upsampling), ``"hard_hard"`` (hard, then hard with crop 2 without upsampling, as the HPatches script).
    ``None`` returns ``pos`` unchanged."""
    if method not in RELOCALIZATIONS:
        raise ValueError("relocalization must be one of %s, got %r" % (RELOCALIZATIONS, method))
    if method is None:
        return pos
    if method.startswith("hard"):
        pos = relocalize_hard(b, pos, feat_a, feat_b, crop_size=crop_size)
    else:
        pos = relocalize_soft(b, pos, feat_a, feat_b)
    if method == "hard_soft":
        pos = relocalize_soft(b, pos, feat_a, feat_b, upsample=False)
    elif method == "hard_hard":
        pos = relocalize_hard(b, pos, feat_a, feat_b, crop_size=2, upsample=False)
    return pos
