"""Object co-segmentation metrics: precision P and Jaccard index J (as reported on TSS and Internet by
Rubinstein et al. 2013, MaCoSNet and others).

* **P** (precision): the fraction of pixels whose foreground/background label agrees with the ground truth
  (foreground and background pixels both count).
* **J** (Jaccard): ``|pred ∩ gt| / |pred ∪ gt|`` over foreground pixels; 1 when both are empty.

Predictions may be soft (probabilities): they are thresholded at ``threshold`` (foreground where
``pred >= threshold``); a prediction of another size is first resized (bilinear) to the ground truth's size.
Ground truth is thresholded at 0.5 (any positive value of a {0, 1} / {0, 255} mask counts, see ``_as_bool``).
Per-image scores are averaged over images (the convention of the published tables).
"""
from typing import Dict

import torch
import torch.nn.functional as F

__all__ = ["precision", "jaccard", "coseg_scores", "CosegMeter"]


def _as_batch(mask: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(mask)
    if m.dim() == 2:
        m = m[None]
    if m.dim() == 4:
        if m.shape[1] != 1:
            raise ValueError("masks must be (H, W), (B, H, W) or (B, 1, H, W), got shape %s" % (tuple(m.shape),))
        m = m[:, 0]
    if m.dim() != 3:
        raise ValueError("masks must be (H, W), (B, H, W) or (B, 1, H, W), got shape %s" % (tuple(m.shape),))
    return m


def _as_bool(gt: torch.Tensor) -> torch.Tensor:
    if gt.dtype == torch.bool:
        return gt
    g = gt.float()
    if g.numel() and float(g.max()) > 1.0:  # 0/255 masks
        g = g / 255.0
    return g >= 0.5


def _prepare(pred: torch.Tensor, gt: torch.Tensor, threshold: float):
    p, g = _as_batch(pred), _as_batch(gt)
    if p.shape[0] != g.shape[0]:
        raise ValueError("batch sizes differ: pred has %d, gt has %d" % (p.shape[0], g.shape[0]))
    if p.dtype != torch.bool:
        p = p.float()
        if tuple(p.shape[-2:]) != tuple(g.shape[-2:]):
            p = F.interpolate(p[:, None], size=tuple(g.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
        p = p >= threshold
    elif tuple(p.shape[-2:]) != tuple(g.shape[-2:]):
        p = F.interpolate(p[:, None].float(), size=tuple(g.shape[-2:]), mode="nearest")[:, 0] >= 0.5
    return p, _as_bool(g.to(p.device))


def precision(pred: torch.Tensor, gt: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-image fraction of correctly labelled pixels: (B,) float64."""
    p, g = _prepare(pred, gt, threshold)
    return (p == g).flatten(1).double().mean(1)


def jaccard(pred: torch.Tensor, gt: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-image foreground intersection over union: (B,) float64 (1 where both masks are empty)."""
    p, g = _prepare(pred, gt, threshold)
    inter = (p & g).flatten(1).sum(1).double()
    union = (p | g).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def coseg_scores(pred: torch.Tensor, gt: torch.Tensor, threshold: float = 0.5) -> Dict[str, float]:
    """``{"P": mean precision, "J": mean Jaccard, "n": number of images}`` over a batch."""
    P, J = precision(pred, gt, threshold), jaccard(pred, gt, threshold)
    return {"P": float(P.mean()), "J": float(J.mean()), "n": int(P.numel())}


class CosegMeter:
    """Accumulates per-image P and J over batches: ``update(pred, gt)``, then ``summary()``."""

    def __init__(self, threshold: float = 0.5):
        self.threshold = float(threshold)
        self.sum_p = 0.0
        self.sum_j = 0.0
        self.n = 0

    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        P, J = precision(pred, gt, self.threshold), jaccard(pred, gt, self.threshold)
        self.sum_p += float(P.sum())
        self.sum_j += float(J.sum())
        self.n += int(P.numel())

    def summary(self) -> Dict[str, float]:
        if self.n == 0:
            return {"P": float("nan"), "J": float("nan"), "n": 0}
        return {"P": self.sum_p / self.n, "J": self.sum_j / self.n, "n": self.n}
