"""SCNet's training loss and its ground truth, as the released code computes them.

* :func:`scnet_loss` is ``vl_nnpfloss`` (``dagnn.PFLoss``): for the active source proposals, positives are the
  target proposals with IoU > 0.5 to the warped source box; for each source row with P positives, the P
  highest-scoring target proposals among those with IoU <= 0.2 are its (hard) negatives (when fewer exist,
  the ``sort`` of the released code fills the row's quota with the next entries, IoU > 0.2 included, and so
  do we). Hinge with margin 1: ``sum(max(0, 1 - z) over positives + max(0, 1 + z) over negatives) /
  (2 * number of positives)``; 0 when there is no positive.
* :func:`active_proposals` is ``crop_active_boxset.m`` (the rows the loss uses, ``idx_for_active_opA``): the
  source proposals covered by more than 75 % by an object box (``rectint`` over the proposal's area, boxes as
  ``(x, y, x1 - x0, y1 - y0)``) that contain at least one visible keypoint.
* :func:`region_iou` is the IoU matrix of ``makeGT_PASCAL.m`` (the ``1 - IoU2GT`` the loss receives): the
  four corners of each active source box are warped into the target image, rounded and clamped; the ground
  truth box averages the two smallest and the two largest warped x (and y) coordinates; IoU with each target
  box uses MATLAB's ``bboxOverlapRatio`` on ``(x, y, x1 - x0 + 1, y1 - y0 + 1)`` boxes.
"""
from typing import Callable, Optional

import torch

__all__ = ["scnet_loss", "region_iou", "active_proposals", "POS_IOU", "NEG_IOU", "MARGIN", "ACTIVE_IOA"]

POS_IOU, NEG_IOU, MARGIN = 0.5, 0.2, 1.0
ACTIVE_IOA = 0.75  # conf.threshold_intersection of set_conf_PASCAL.m


def scnet_loss(z: torch.Tensor, iou: torch.Tensor, active: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The released hinge loss of one pair.

    Args:
        z: (Ns, Nt) scores (``AG_out`` / ``A_out``) of all source x target proposals.
        iou: (Na, Nt) IoU of the warped active source proposals with the target proposals (``1 - IoU2GT``).
        active: (Na,) int64 rows of ``z`` of the active source proposals (``idx_for_active_opA``, 0-based);
            ``None``: all rows (then Na = Ns).
    Returns:
        a scalar tensor, differentiable in ``z``.
    """
    if z.dim() != 2 or iou.dim() != 2:
        raise ValueError("z and iou must be 2-D, got %s and %s" % (tuple(z.shape), tuple(iou.shape)))
    A = z if active is None else z.index_select(0, active.to(z.device).long())
    if A.shape != iou.shape:
        raise ValueError("iou must be (active rows, Nt) = %s, got %s" % (tuple(A.shape), tuple(iou.shape)))
    iou = iou.to(A.device)
    pos = iou > POS_IOU
    n_pos = pos.sum(1)
    total = int(n_pos.sum())
    if total == 0:
        return z.sum() * 0
    # hard negatives: the n_pos[i] best scores of row i once IoU > 0.2 is pushed to -inf (stable, as MATLAB)
    cand = A.detach().masked_fill(iou > NEG_IOU, float("-inf"))
    order = torch.sort(cand, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(A.shape[1], device=A.device).expand_as(order))
    neg = rank < n_pos[:, None]
    loss = (MARGIN - A).clamp(min=0)[pos].sum() + (MARGIN + A).clamp(min=0)[neg].sum()
    return loss / (2 * total)


def _matlab_round(x):
    return torch.where(x >= 0, torch.floor(x + 0.5), torch.ceil(x - 0.5))


def region_iou(src_boxes: torch.Tensor, tgt_boxes: torch.Tensor, warp_points: Callable, tgt_hw) -> torch.Tensor:
    """(Ns, Nt) IoU of each source box warped into the target (``makeGT_PASCAL.m``) with each target box.

    ``warp_points`` maps (P, 2) source pixels (x, y) to target pixels (0-based, as our boxes); the released
    code warps the corners with a thin-plate spline of the keypoints, any map can be given here."""
    H, W = float(tgt_hw[0]), float(tgt_hw[1])
    s1 = src_boxes.to(torch.float64) + 1  # 1-based as the released code
    x0, y0, x1, y1 = s1.unbind(1)
    corners = torch.stack([torch.stack(p, 1) for p in [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]], 1)  # (Ns, 4, 2)
    w = warp_points((corners - 1).reshape(-1, 2)).to(torch.float64).reshape(corners.shape) + 1
    wx = _matlab_round(w[..., 0]).clamp(1, W).sort(1).values
    wy = _matlab_round(w[..., 1]).clamp(1, H).sort(1).values
    gt = torch.stack([(wx[:, 0] + wx[:, 1]) / 2, (wy[:, 0] + wy[:, 1]) / 2,
                      (wx[:, 2] + wx[:, 3]) / 2, (wy[:, 2] + wy[:, 3]) / 2], 1)
    gt = torch.stack([gt[:, 0].clamp(1, W), gt[:, 1].clamp(1, H), gt[:, 2].clamp(1, W), gt[:, 3].clamp(1, H)], 1)
    t1 = tgt_boxes.to(torch.float64) + 1

    def xywh(b):
        return b[:, 0], b[:, 1], b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1

    ax, ay, aw, ah = xywh(gt)
    bx, by, bw, bh = xywh(t1)
    iw = (torch.minimum((ax + aw)[:, None], (bx + bw)[None]) - torch.maximum(ax[:, None], bx[None])).clamp(min=0)
    ih = (torch.minimum((ay + ah)[:, None], (by + bh)[None]) - torch.maximum(ay[:, None], by[None])).clamp(min=0)
    inter = iw * ih
    return inter / ((aw * ah)[:, None] + (bw * bh)[None] - inter)


def active_proposals(boxes: torch.Tensor, object_boxes: torch.Tensor, keypoints: torch.Tensor,
                     threshold: float = ACTIVE_IOA) -> torch.Tensor:
    """Indices (ascending, int64) of the proposals the released training uses for a source image.

    Args:
        boxes: (R, 4) proposals (x0, y0, x1, y1).
        object_boxes: (K, 4) annotated object boxes, same coordinates.
        keypoints: (P, 2) visible keypoints (x, y), same coordinates.
    """
    b = boxes.to(torch.float64)
    o = object_boxes.to(torch.float64).reshape(-1, 4)
    iw = (torch.minimum(b[:, None, 2], o[None, :, 2]) - torch.maximum(b[:, None, 0], o[None, :, 0])).clamp(min=0)
    ih = (torch.minimum(b[:, None, 3], o[None, :, 3]) - torch.maximum(b[:, None, 1], o[None, :, 1])).clamp(min=0)
    area = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[:, None]
    covered = (iw * ih / area > threshold).any(1)
    kp = keypoints.to(torch.float64).reshape(-1, 2)
    inside = ((kp[None, :, 0] >= b[:, None, 0]) & (kp[None, :, 0] <= b[:, None, 2]) &
              (kp[None, :, 1] >= b[:, None, 1]) & (kp[None, :, 1] <= b[:, None, 3])).any(1)
    return torch.nonzero(covered & inside).reshape(-1)
