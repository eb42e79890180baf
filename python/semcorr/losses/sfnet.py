"""SFNet's losses (paper Sec. 3.2): mask consistency, flow consistency and smoothness, on the feature grid.

All terms work with the grid-level match fields of :meth:`semcorr.models.sfnet.SFNet.flows` (normalised over the
other image's grid, ``align_corners=True``: -1 / +1 = first / last cell centre) and binary foreground masks
resized to the grids (B, 1, H, W) in {0, 1}. Flows are ``field - identity`` in the same normalised units.

* mask consistency: ``sum (M_s - W(M_t; F_s2t))^2 / (H W)`` + the same target-side (``W`` = bilinear
  ``grid_sample``);
* flow consistency: ``sum ||M_s F_s2t + M_s W(F_t2s; F_s2t)||^2 / (N_s + 1)`` + target-side, ``N`` = foreground
  pixel count (a consistent pair has F_s2t = -F_t2s after warping);
* smoothness: ``sum M_s (|dF/dx| + |dF/dy|) / (N_s + 1)`` + target-side, with central differences /2 on the
  zero-padded flow, per flow component (the paper's L1 norm of the gradient; the released code sums the two
  components inside the absolute value).

Terms are summed over the batch, as in the released code. Total = 3 L_mask + 16 L_flow + 0.5 L_smooth (the
released code's lambda1..3, which the paper selected on PF-PASCAL's validation split).
"""
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow

__all__ = ["SFNetLoss", "DEFAULT_WEIGHTS", "identity_grid", "mask_consistency", "flow_consistency", "smoothness"]

DEFAULT_WEIGHTS = {"mask": 3.0, "flow": 16.0, "smooth": 0.5}


def identity_grid(H: int, W: int, like: torch.Tensor) -> torch.Tensor:
    """(1, H, W, 2) linspace field: the identity in grid-normalised coordinates."""
    return flow.grid_coords(H, W, dtype=like.dtype, device=like.device)[None]


def _warp(x: torch.Tensor, field: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(x, field.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


def mask_consistency(mask_s, mask_t, grid_s2t, grid_t2s):
    h, w = mask_s.shape[-2:]
    ht, wt = mask_t.shape[-2:]
    return (((_warp(mask_t, grid_s2t) - mask_s) ** 2).sum() / (h * w)
            + ((_warp(mask_s, grid_t2s) - mask_t) ** 2).sum() / (ht * wt))


def _to_flow(grid):  # (B, H, W, 2) field -> (B, 2, H, W) flow
    return (grid - identity_grid(grid.shape[1], grid.shape[2], grid)).permute(0, 3, 1, 2)


def _fg(mask):
    return mask.sum(dim=(2, 3), keepdim=True) + 1.0


def flow_consistency(mask_s, mask_t, grid_s2t, grid_t2s):
    f_s, f_t = _to_flow(grid_s2t), _to_flow(grid_t2s)
    warped_s = -_warp(f_t, grid_s2t) * mask_s
    warped_t = -_warp(f_s, grid_t2s) * mask_t
    return (((f_s * mask_s - warped_s) ** 2) / _fg(mask_s)).sum() + (((f_t * mask_t - warped_t) ** 2) / _fg(mask_t)).sum()


def _gradients(f):
    dx = (F.pad(f, (1, 1, 0, 0))[..., :, 2:] - F.pad(f, (1, 1, 0, 0))[..., :, :-2]) / 2
    dy = (F.pad(f, (0, 0, 1, 1))[..., 2:, :] - F.pad(f, (0, 0, 1, 1))[..., :-2, :]) / 2
    return dx, dy


def smoothness(mask_s, mask_t, grid_s2t, grid_t2s):
    total = 0.0
    for grid, mask in ((grid_s2t, mask_s), (grid_t2s, mask_t)):
        dx, dy = _gradients(_to_flow(grid))
        total = total + (((dx.abs() + dy.abs()) * mask) / _fg(mask)).sum()
    return total


class SFNetLoss(nn.Module):
    """``forward(grid_S2T, grid_T2S, mask_src, mask_tgt) -> dict(total, mask, flow, smooth)``; masks (B, 1, H, W)
    at the grid sizes (resize them with :func:`resize_mask`)."""

    def __init__(self, mask: float = DEFAULT_WEIGHTS["mask"], flow: float = DEFAULT_WEIGHTS["flow"],
                 smooth: float = DEFAULT_WEIGHTS["smooth"]):
        super().__init__()
        self.weights = {"mask": float(mask), "flow": float(flow), "smooth": float(smooth)}

    def forward(self, grid_s2t, grid_t2s, mask_src, mask_tgt) -> Dict[str, torch.Tensor]:
        for name, g, m in (("grid_S2T/mask_src", grid_s2t, mask_src), ("grid_T2S/mask_tgt", grid_t2s, mask_tgt)):
            if m.dim() != 4 or m.shape[1] != 1 or tuple(m.shape[-2:]) != tuple(g.shape[1:3]):
                raise ValueError("SFNetLoss: %s: the mask must be (B, 1, H, W) on the field's grid %s, got %s"
                                 % (name, tuple(g.shape[1:3]), tuple(m.shape)))
        terms = {"mask": mask_consistency(mask_src, mask_tgt, grid_s2t, grid_t2s),
                 "flow": flow_consistency(mask_src, mask_tgt, grid_s2t, grid_t2s),
                 "smooth": smoothness(mask_src, mask_tgt, grid_s2t, grid_t2s)}
        terms["total"] = sum(self.weights[k] * v for k, v in terms.items())
        return terms


def resize_mask(mask: torch.Tensor, size) -> torch.Tensor:
    """(B, 1, H, W) binary mask -> (B, 1, h, w) at a grid size (area average, then >= 0.5)."""
    m = F.adaptive_avg_pool2d(mask.float(), tuple(size))
    return (m >= 0.5).to(mask.dtype if mask.is_floating_point() else torch.float32)
