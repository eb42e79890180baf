"""MaCoSNet losses (Chen, Lin, Yang, Huang, "Show, Match and Segment: Joint Weakly Supervised Learning of
Semantic Matching and Object Co-segmentation", TPAMI 2020).

Weakly supervised: every loss needs only images of the same category (no keypoints, no masks).

Conventions (those of :mod:`semcorr_ext.flow`): points are (x, y) normalised coordinates (align_corners=True);
a transform ``T_ab`` maps a point of image A to its correspondent in image B. Transforms are passed either as
callables ``t(pts) -> pts`` on (B, N, 2) points, or already evaluated on a grid of A as a match field
(B, Ha, Wa, 2) of positions in B. Masks are foreground probabilities in [0, 1].

Losses (all return a scalar, the mean over the batch). The released code (YunChunChen/MaCoSNet-pytorch,
``train.py`` + ``model/loss.py``) is the reference where it differs from the paper:

* :func:`matching_loss` — foreground-guided matching as released (``loss_match``: ``AffMatchScore`` +
  ``TpsMatchScore`` with ``seg_mask=True``, ``normalize_inlier_count=True``): for each direction and each stage
  (affine, affine + TPS) the correlation mass near the transformed cells, ``sum_p M(p) sum_q m(p, q) S(p, q)``,
  divided by the total mask mass ``sum_pq m(p, q)``, on the released grid geometry (``offset_factor = 227/210``,
  :data:`RELEASED_OFFSET_FACTOR`); the foreground weight ``M(p)`` is **the largest
  correlation of p** (``gen_mask``: ``max_q S(p, q)``), not the co-segmentation decoder's mask: the released
  code never feeds the decoder into this loss (the paper's Eq. 3 writes the decoder mask; weighting by it would
  push every mask pixel towards foreground, the gradient being ``-s(p) <= 0`` at every pixel).
* :func:`affine_cycle_loss` — forward-backward consistency as released (``CycleLoss``): affine stage only, squared
  pixel distances on a 100 x 100 grid of a 240-pixel image, both directions averaged. :func:`cycle_consistency_loss`
  is the paper's Eq. 4 on the full transform (``MaCoSNetLoss(cycle="paper")``).
* :func:`transitivity_loss` — over a triplet: ``|T_CA(T_BC(T_AB(p))) - p|`` (Eq. 5).
* :func:`perceptual_contrastive_loss` — ``d+ + d-`` on features of object / background images (Eqs. 6-9).
* :func:`task_consistency_loss` — BCE between each mask warped by the transform and the other mask (Eqs. 10-11).
* :class:`MaCoSNetLoss` — the weighted sum (Eq. 12).

Default weights (:data:`DEFAULT_WEIGHTS`) are the released ``train.sh``'s: matching 1 and cycle 1, every other term
off (its ``--trans-loss``, ``--coseg-loss``, ``--task-loss`` are False; the released ``loss_coseg`` / ``loss_task``
calls do not run as written). Turn the others on by weight (``MaCoSNetLoss(weights=...)``, ``--w-trans`` ...).
The contrastive margin m is the released ``config.THRESHOLD`` = 2.
"""
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow

__all__ = ["DEFAULT_WEIGHTS", "DEFAULT_MARGIN", "RELEASED_OFFSET_FACTOR", "RELEASED_TPS_REGULARIZATION",
           "released_cell_points", "released_tps_stage", "released_tps_stage_valid", "consistency_mask",
           "matching_score", "correlation_foreground", "inlier_score", "matching_loss", "affine_cycle_loss",
           "sample_points", "cycle_consistency_loss", "transitivity_loss", "perceptual_contrastive_loss",
           "binary_cross_entropy", "task_consistency_loss", "PerceptualFeatures", "MaCoSNetLoss"]

#: lambda of each term of Eq. 12: the released train.sh (matching + cycle at 1, the others off)
DEFAULT_WEIGHTS = {"matching": 1.0, "cycle": 1.0, "trans": 0.0, "contrast": 0.0, "task": 0.0}
#: margin m of the perceptual contrastive loss
DEFAULT_MARGIN = 2.0

Transform = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------------------------
# Foreground-guided matching loss


#: the released matching loss's grid geometry (``AffMatchScore(offset_factor=227/210)``): the feature grid's
#: normalised coordinate g (cells at linspace(-1, 1)) is the image coordinate g / offset_factor
RELEASED_OFFSET_FACTOR = 227.0 / 210.0


def released_cell_points(grid: Sequence[int], offset_factor: float = RELEASED_OFFSET_FACTOR, *, dtype=torch.float32,
                         device=None) -> torch.Tensor:
    """(h, w, 2) image-normalised (x, y) positions of the cells of an (h, w) feature grid in the released matching
    loss: ``linspace(-1, 1) / offset_factor`` per axis (``AffineGridGenV2`` with ``offset_factor``)."""
    h, w = int(grid[0]), int(grid[1])
    return flow.grid_coords(h, w, dtype=dtype, device=device) / float(offset_factor)


#: the TPS regularisation of the released matching loss (``TpsMatchScore(tps_reg_factor=0.2)``, the train parser's
#: default; the model itself warps and evaluates with 0)
RELEASED_TPS_REGULARIZATION = 0.2


def released_tps_stage(theta: torch.Tensor, tps: torch.Tensor, pts: torch.Tensor,
                       regularization: float = RELEASED_TPS_REGULARIZATION) -> torch.Tensor:
    """``A(TPS_r(p))``: the affine + TPS map of the released ``TpsMatchScore`` at points (N, 2) -> (B, N, 2), its
    TPS regularised by ``r`` (:func:`semcorr_ext.flow.tps_points`); ``tps`` (B, K, 2) displacements."""
    return flow.affine_points(theta, flow.tps_points(tps, pts, regularization=regularization))


def released_tps_stage_valid(theta: torch.Tensor, tps: torch.Tensor, grid: Sequence[int],
                             offset_factor: float = RELEASED_OFFSET_FACTOR,
                             regularization: float = RELEASED_TPS_REGULARIZATION) -> torch.Tensor:
    """(B, h, w) bool: the cells that the released TPS stage scores at all. ``ComposedGeometricTnf`` resamples the
    affine sampling grid (nodes ``of * A(g / of)``) bilinearly at the TPS positions ``of * TPS(g / of)`` and sets
    to 1e10 every TPS position outside (-1, 1)^2 and every affine node outside it; a cell whose TPS position is
    outside, or whose bilinear stencil touches such a node with a nonzero weight, ends far away (mask weight 0).
    Elsewhere the resampling is exact (bilinear interpolation reproduces an affine map), i.e. ``A(TPS(p))``.
    The bounds are strict, as released: near the identity the outer ring of cells sits on +-1 and is kept or dropped
    by rounding (in the released code too)."""
    h, w = int(grid[0]), int(grid[1])
    B = theta.shape[0]
    p = released_cell_points((h, w), offset_factor, dtype=theta.dtype, device=theta.device).reshape(-1, 2)
    s = flow.tps_points(tps, p, regularization=regularization).reshape(B, h, w, 2) * offset_factor
    nodes = flow.affine_points(theta, p).reshape(B, h * w, 2) * offset_factor
    node_in = ((nodes > -1) & (nodes < 1)).all(-1)                                  # (B, h*w)
    valid = ((s > -1) & (s < 1)).all(-1)
    cx, cy = (s[..., 0] + 1) / 2 * (w - 1), (s[..., 1] + 1) / 2 * (h - 1)
    x0, y0 = cx.floor().clamp(0, w - 1), cy.floor().clamp(0, h - 1)
    fx, fy = cx - x0, cy - y0
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        idx = ((y0 + dy).clamp(0, h - 1) * w + (x0 + dx).clamp(0, w - 1)).long().reshape(B, -1)
        ok = node_in.gather(1, idx).reshape(B, h, w)
        valid = valid & (ok | (weight <= 0))
    return valid


def consistency_mask(points_b: torch.Tensor, grid_b: Sequence[int], image_size_b: Optional[Sequence[int]] = None,
                     phi: float = 1.0, soft: bool = True, offset_factor: Optional[float] = None) -> torch.Tensor:
    """The correspondence mask m_A(p, q) of Eq. 1: (B, Ha*Wa, Hb*Wb).

    Args:
        points_b: (B, Ha, Wa, 2) ``T_AB(p)`` for every cell p of A's feature grid, normalised over image B.
        grid_b: (Hb, Wb) cells of B's feature grid (the q).
        image_size_b: (H, W) of image B in pixels (``None``: the grid is the image).
        phi: threshold in B-grid cells.
        soft: ``False``: the paper's hard indicator ``|T_AB(p) - q| <= phi`` (Euclidean, in cells; no gradient
            to the transform). ``True`` (default, for training): the separable tent
            ``max(0, 1 - |dx| / phi) * max(0, 1 - |dy| / phi)``, which is 1 where T_AB(p) = q, 0 beyond phi
            cells and differentiable in T (with phi = 1 these are bilinear interpolation weights).
        offset_factor: ``None``: image coordinates are placed on B's grid by its exact cell centres
            (``image_size_b``); a number (released: :data:`RELEASED_OFFSET_FACTOR`): the released geometry, grid
            coordinate = image coordinate * offset_factor (``image_size_b`` unused).
    """
    B, Ha, Wa, _ = points_b.shape
    Hb, Wb = int(grid_b[0]), int(grid_b[1])
    if image_size_b is None:
        image_size_b = (Hb, Wb)
    if offset_factor is None:
        g = flow.image_to_grid_coords(points_b, (Hb, Wb), image_size_b)     # normalised over B's cell centres
    else:
        g = points_b * float(offset_factor)
    cells = flow.unnormalize_coords(g, (Hb, Wb)).reshape(B, Ha * Wa, 1, 2)  # in cell units (x = column)
    ys, xs = torch.meshgrid(torch.arange(Hb, dtype=cells.dtype, device=cells.device),
                            torch.arange(Wb, dtype=cells.dtype, device=cells.device), indexing="ij")
    q = torch.stack([xs, ys], -1).reshape(1, 1, Hb * Wb, 2)
    d = cells - q
    if soft:
        w = (1.0 - d.abs() / phi).clamp_min(0.0)
        return w[..., 0] * w[..., 1]
    return (d.norm(dim=-1) <= phi).to(cells.dtype)


def matching_score(corr: torch.Tensor, points_b: torch.Tensor, image_size_b: Optional[Sequence[int]] = None,
                   phi: float = 1.0, soft: bool = True) -> torch.Tensor:
    """s_A(p) of Eq. 2: (B, Ha, Wa) = sum over q of m_A(p, q) * S_AB(p, q).

    ``corr`` is S_AB as (B, Ha, Wa, Hb, Wb); ``points_b`` is T_AB at A's cells (see :func:`consistency_mask`).
    """
    if corr.dim() != 5:
        raise ValueError("corr must be (B, Ha, Wa, Hb, Wb), got shape %s" % (tuple(corr.shape),))
    B, Ha, Wa, Hb, Wb = corr.shape
    if tuple(points_b.shape) != (B, Ha, Wa, 2):
        raise ValueError("points_b must be (B, Ha, Wa, 2) = %s, got %s" % ((B, Ha, Wa, 2), tuple(points_b.shape)))
    m = consistency_mask(points_b, (Hb, Wb), image_size_b, phi, soft)
    return (m * corr.reshape(B, Ha * Wa, Hb * Wb)).sum(-1).reshape(B, Ha, Wa)


def correlation_foreground(corr: torch.Tensor) -> torch.Tensor:
    """The released matching loss's foreground weight (``gen_mask``): the largest correlation of each cell of A,
    ``max_q S_AB(p, q)``: (B, Ha, Wa) from ``corr`` (B, Ha, Wa, Hb, Wb)."""
    return corr.flatten(3).amax(-1)


def inlier_score(corr: torch.Tensor, points_b: torch.Tensor, image_size_b: Optional[Sequence[int]] = None,
                 foreground: Optional[torch.Tensor] = None, normalize: bool = True, eps: float = 1e-5,
                 phi: float = 1.0, soft: bool = True, offset_factor: Optional[float] = None) -> torch.Tensor:
    """The released ``AffMatchScore`` / ``TpsMatchScore`` of one direction and stage: (B,)
    ``sum_p M(p) sum_q m(p, q) S(p, q)``, divided by ``sum_pq (m(p, q) + eps)`` when ``normalize``
    (``normalize_inlier_count=True``).

    ``corr`` S (B, Ha, Wa, Hb, Wb); ``points_b`` T(p) at A's cells (B, Ha, Wa, 2), normalised over image B;
    ``foreground`` M (B, Ha, Wa) or None (M = 1); m = :func:`consistency_mask` (soft, phi = 1: the bilinear
    weights that the released ``grid_sample`` of the identity mask gives; ``offset_factor`` as there: with
    :data:`RELEASED_OFFSET_FACTOR` and ``points_b`` = T at :func:`released_cell_points` this is the released
    score exactly).
    """
    if corr.dim() != 5:
        raise ValueError("corr must be (B, Ha, Wa, Hb, Wb), got shape %s" % (tuple(corr.shape),))
    B, Ha, Wa, Hb, Wb = corr.shape
    if tuple(points_b.shape) != (B, Ha, Wa, 2):
        raise ValueError("points_b must be (B, Ha, Wa, 2) = %s, got %s" % ((B, Ha, Wa, 2), tuple(points_b.shape)))
    m = consistency_mask(points_b, (Hb, Wb), image_size_b, phi, soft, offset_factor)  # (B, Ha*Wa, Hb*Wb)
    per_cell = (m * corr.reshape(B, Ha * Wa, Hb * Wb)).sum(-1)
    if foreground is not None:
        if tuple(foreground.shape) != (B, Ha, Wa):
            raise ValueError("foreground must be (B, Ha, Wa) = %s, got %s" % ((B, Ha, Wa), tuple(foreground.shape)))
        per_cell = per_cell * foreground.reshape(B, Ha * Wa)
    score = per_cell.sum(-1)
    if normalize:
        score = score / (m.sum((1, 2)) + eps * m.shape[1] * m.shape[2])
    return score


def matching_loss(corr_ab: torch.Tensor, points_ab, corr_ba: torch.Tensor, points_ba, *,
                  image_size_a: Optional[Sequence[int]] = None, image_size_b: Optional[Sequence[int]] = None,
                  foreground: str = "correlation", normalize: bool = True, phi: float = 1.0,
                  soft: bool = True, offset_factor: Optional[float] = None) -> torch.Tensor:
    """The released foreground-guided matching loss: ``-mean_batch sum_stages (score_AB + score_BA) / 2`` with
    the scores of :func:`inlier_score`.

    Args:
        corr_ab: S_AB (B, Ha, Wa, Hb, Wb); corr_ba: S_BA (B, Hb, Wb, Ha, Wa).
        points_ab: T_AB at A's grid cells (B, Ha, Wa, 2), normalised over image B, or a sequence of them, one
            per stage (released: the affine stage and the affine + TPS cascade); points_ba likewise.
        image_size_a, image_size_b: image sizes the grids lie on (``None``: the grids are the images).
        foreground: ``"correlation"`` (released: :func:`correlation_foreground`) or ``"none"`` (M = 1). There is
            deliberately no decoder-mask option (see the module docstring).
        normalize, phi, soft, offset_factor: see :func:`inlier_score`.
    """
    if foreground not in ("correlation", "none"):
        raise ValueError("foreground must be 'correlation' or 'none', got %r" % (foreground,))
    stages_ab = [points_ab] if isinstance(points_ab, torch.Tensor) else list(points_ab)
    stages_ba = [points_ba] if isinstance(points_ba, torch.Tensor) else list(points_ba)
    if len(stages_ab) != len(stages_ba) or not stages_ab:
        raise ValueError("points_ab and points_ba must hold the same number (>= 1) of stages, got %d and %d"
                         % (len(stages_ab), len(stages_ba)))
    fg_a = correlation_foreground(corr_ab) if foreground == "correlation" else None
    fg_b = correlation_foreground(corr_ba) if foreground == "correlation" else None
    score = 0.0
    for pab, pba in zip(stages_ab, stages_ba):
        kw = dict(phi=phi, soft=soft, offset_factor=offset_factor)
        s_ab = inlier_score(corr_ab, pab, image_size_b, fg_a, normalize, **kw)
        s_ba = inlier_score(corr_ba, pba, image_size_a, fg_b, normalize, **kw)
        score = score + (s_ab + s_ba) / 2.0
    return -score.mean()


# --------------------------------------------------------------------------------------------------------
# Consistency losses


def sample_points(n: int = 10, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """An n x n regular grid of points spanning [-1, 1]^2: (n*n, 2) (the paper samples 10 x 10 = 100)."""
    return flow.grid_coords(n, n, dtype=dtype, device=device).reshape(-1, 2)


def _dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Euclidean distance with a finite gradient at 0
    return ((a - b).pow(2).sum(-1) + 1e-12).sqrt()


def _points_for(points: Optional[torch.Tensor], ref: torch.Tensor, batch: int) -> torch.Tensor:
    if points is None:
        points = sample_points(10, dtype=ref.dtype, device=ref.device)
    if points.dim() == 2:
        points = points.unsqueeze(0).expand(batch, -1, -1)
    return points


def cycle_consistency_loss(t_ab: Transform, t_ba: Transform, batch: int,
                           points: Optional[torch.Tensor] = None, ref: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Forward-backward consistency (Eq. 4): ``mean_p |T_BA(T_AB(p)) - p| + mean_q |T_AB(T_BA(q)) - q|``,
    averaged over the batch; distances in normalised coordinates.

    ``t_ab`` / ``t_ba`` map (B, N, 2) points; ``points`` are (N, 2) or (B, N, 2) (default: a 10 x 10 grid over
    [-1, 1]^2, used for both p and q); ``ref`` gives dtype/device of the default points.
    """
    ref = ref if ref is not None else torch.zeros(())
    p = _points_for(points, ref, batch)
    fwd = _dist(t_ba(t_ab(p)), p).mean(-1)
    bwd = _dist(t_ab(t_ba(p)), p).mean(-1)
    return (fwd + bwd).mean()


def affine_cycle_loss(theta_ab: torch.Tensor, theta_ba: torch.Tensor, image_size: int = 240,
                      n_coords: int = 100) -> torch.Tensor:
    """The released cycle-consistency loss (``CycleLoss``, averaged over both directions as ``loss_cycle``):
    affine stage only, on the pixels ``(i * S / n, j * S / n)``, i, j < n, of an S-pixel image (released:
    S = 240, n = 100), each taken to unit coordinates the released way (``PointsToUnitCoords``: 1-based pixels,
    ``(x - 1) / ((S - 1) / 2) - 1``), mapped forward then back, and compared in pixels:
    ``sum |p - T_BA(T_AB(p))|^2 / n^2`` per pair, batch mean. theta (B, 2, 3) or (B, 6)."""
    theta_ab, theta_ba = theta_ab.reshape(-1, 2, 3), theta_ba.reshape(-1, 2, 3)
    half = (float(image_size) - 1.0) / 2.0
    pix = torch.arange(n_coords, dtype=theta_ab.dtype, device=theta_ab.device) * (float(image_size) / n_coords)
    xx, yy = torch.meshgrid(pix, pix, indexing="ij")  # released: x = i * S / n outer, y = j * S / n inner
    unit = (torch.stack([xx.reshape(-1), yy.reshape(-1)], -1) - 1.0) / half - 1.0

    def one_way(fwd, bwd):
        back = flow.affine_points(bwd, flow.affine_points(fwd, unit))
        return (half ** 2) * (back - unit).pow(2).sum((1, 2)) / n_coords ** 2

    return ((one_way(theta_ab, theta_ba) + one_way(theta_ba, theta_ab)) / 2.0).mean()


def transitivity_loss(t_ab: Transform, t_bc: Transform, t_ca: Transform, batch: int,
                      points: Optional[torch.Tensor] = None, ref: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Transitivity consistency over image triplets (Eq. 5): ``mean_p |T_CA(T_BC(T_AB(p))) - p|``, averaged
    over the batch of triplets (default points: a 10 x 10 grid)."""
    ref = ref if ref is not None else torch.zeros(())
    p = _points_for(points, ref, batch)
    return _dist(t_ca(t_bc(t_ab(p))), p).mean(-1).mean()


# --------------------------------------------------------------------------------------------------------
# Co-segmentation losses


def _vec(f: torch.Tensor) -> torch.Tensor:
    if isinstance(f, (list, tuple)):
        f = f[-1]
    if f.dim() == 4:
        f = f.mean((2, 3))       # global average pooling
    return f.flatten(1)


def perceptual_contrastive_loss(img_a: torch.Tensor, mask_a: torch.Tensor, img_b: torch.Tensor,
                                mask_b: torch.Tensor, feature_fn: Callable[[torch.Tensor], torch.Tensor],
                                margin: float = DEFAULT_MARGIN) -> torch.Tensor:
    """Perceptual contrastive loss (Eqs. 6-9): ``d+ + d-`` averaged over the batch, with

    ``I^o = M * I``, ``I^b = (1 - M) * I`` (Eq. 6), ``d+ = |F(I_A^o) - F(I_B^o)|^2 / c`` and
    ``d- = max(0, m - (|F(I_A^o) - F(I_A^b)|^2 + |F(I_B^o) - F(I_B^b)|^2) / (2c))``.

    ``feature_fn`` is F (the paper: a frozen ImageNet ResNet-50, see :class:`PerceptualFeatures`), mapping
    (B, 3, H, W) images to (B, c) vectors, or to (B, c, h, w) maps which are average-pooled; c is the feature
    dimension. Masks (B, 1, H', W') are resized (bilinear) to the image size if needed.
    """
    def masked(img, m):
        if m.dim() == 3:
            m = m.unsqueeze(1)
        if tuple(m.shape[-2:]) != tuple(img.shape[-2:]):
            m = F.interpolate(m, size=tuple(img.shape[-2:]), mode="bilinear", align_corners=False)
        return img * m, img * (1.0 - m)

    a_o, a_b = masked(img_a, mask_a)
    b_o, b_b = masked(img_b, mask_b)
    feats = _vec(feature_fn(torch.cat([a_o, a_b, b_o, b_b], 0)))
    fa_o, fa_b, fb_o, fb_b = feats.chunk(4, 0)
    c = feats.shape[1]
    d_pos = (fa_o - fb_o).pow(2).sum(1) / c
    d_neg = (margin - ((fa_o - fa_b).pow(2).sum(1) + (fb_o - fb_b).pow(2).sum(1)) / (2 * c)).clamp_min(0.0)
    return (d_pos + d_neg).mean()


def binary_cross_entropy(target: torch.Tensor, pred: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 11 per batch item: ``-mean_ij(target log pred + (1 - target) log(1 - pred))`` -> (B,);
    ``pred`` is clamped to [eps, 1 - eps]. Both (B, 1, H, W) or (B, H, W) probabilities."""
    p = pred.clamp(eps, 1.0 - eps)
    ll = target * torch.log(p) + (1.0 - target) * torch.log(1.0 - p)
    return -ll.flatten(1).mean(1)


def task_consistency_loss(mask_a: torch.Tensor, mask_b: torch.Tensor, field_ab: torch.Tensor,
                          field_ba: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Cross-network (task) consistency loss (Eq. 10): ``BCE(M~_A, M_B) + BCE(M~_B, M_A)``, batch mean.

    ``M~_A``, mask A brought into B's frame, is ``flow.warp(mask_a, field_ba)``: ``field_ba`` (B, Hb, Wb, 2) is
    T_BA evaluated at the pixels of ``mask_b`` (positions in A); likewise ``M~_B = flow.warp(mask_b, field_ab)``
    with ``field_ab`` (B, Ha, Wa, 2) at the pixels of ``mask_a``. Samples falling outside the other image are 0
    (background). Masks are (B, 1, H, W) probabilities. Gradients reach both masks and both transforms.
    """
    warped_a = F.grid_sample(mask_a, field_ba.to(mask_a.dtype), mode="bilinear", padding_mode="zeros",
                             align_corners=True)
    warped_b = F.grid_sample(mask_b, field_ab.to(mask_b.dtype), mode="bilinear", padding_mode="zeros",
                             align_corners=True)
    return (binary_cross_entropy(warped_a, mask_b, eps) + binary_cross_entropy(warped_b, mask_a, eps)).mean()


# --------------------------------------------------------------------------------------------------------
# Perceptual feature network and the full objective


class _TinyPerceptual(nn.Module):
    """A small frozen random conv net + global pooling: a stand-in for ResNet-50 in CPU smoke tests."""

    def __init__(self, channels: int = 64, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        layers, c_in = [], 3
        for c_out in (16, 32, channels):
            conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / (9 * c_in)) ** 0.5)
                conv.bias.zero_()
            layers += [conv, nn.ReLU()]
            c_in = c_out
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).mean((2, 3))


class PerceptualFeatures(nn.Module):
    """F of the perceptual contrastive loss, frozen: (B, 3, H, W) in [0, 1] -> (B, c).

    ``kind="resnet50"``: an ImageNet ResNet-50 up to global average pooling (c = 2048), as in the paper; the
    weights come from the torch hub cache (``weights=`` as in :class:`semcorr.backbones.ResNetFeatures`; a
    FileNotFoundError says how to get them). ``kind="tiny"``: a fixed random 3-layer conv net (c = 64) needing
    no weights, for CPU smoke tests only.
    """

    def __init__(self, kind: str = "resnet50", weights="imagenet"):
        super().__init__()
        self.kind = kind
        if kind == "resnet50":
            from semcorr.backbones import ResNetFeatures

            self.net = ResNetFeatures(depth=50, layers=("layer4",), weights=weights)
        elif kind == "tiny":
            self.net = _TinyPerceptual()
        else:
            raise ValueError("perceptual network must be 'resnet50' or 'tiny', got %r" % (kind,))
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.net.eval()  # frozen: keep BatchNorm statistics fixed
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _vec(self.net(x))


class MaCoSNetLoss(nn.Module):
    """The full objective (Eq. 12): ``L_matching + l_cycle L_cycle + l_trans L_trans + l_contrast L_contrast
    + l_task L_task``, weights :data:`DEFAULT_WEIGHTS` (the released script's) unless ``weights`` says otherwise.

    ``forward(out)`` takes the dict returned by :meth:`semcorr.models.macosnet.MaCoSNet.training_outputs`
    and returns ``(total, parts)`` with ``parts`` the unweighted value of each term (floats, for logging).
    Terms whose weight is 0 are not computed; the transitivity term is skipped when the batch has no triplet.
    ``cycle``: ``"released"`` (default, :func:`affine_cycle_loss`) or ``"paper"`` (:func:`cycle_consistency_loss`
    on the full transform, distances in normalised coordinates). ``offset_factor``: the matching loss's grid
    geometry, :data:`RELEASED_OFFSET_FACTOR` (default) or ``None`` (the exact cell centres of the working image,
    the model's own TPS). ``tps_regularization``: the TPS of the matching loss's second stage
    (:data:`RELEASED_TPS_REGULARIZATION`, used with the released geometry).
    """

    def __init__(self, perceptual: Optional[nn.Module] = None, weights: Optional[Dict[str, float]] = None,
                 margin: float = DEFAULT_MARGIN, phi: float = 1.0, n_points: int = 10, cycle: str = "released",
                 offset_factor: Optional[float] = RELEASED_OFFSET_FACTOR,
                 tps_regularization: float = RELEASED_TPS_REGULARIZATION):
        super().__init__()
        self.weights = dict(DEFAULT_WEIGHTS)
        if weights:
            unknown = set(weights) - set(DEFAULT_WEIGHTS)
            if unknown:
                raise ValueError("unknown loss weights %s; known: %s" % (sorted(unknown), sorted(DEFAULT_WEIGHTS)))
            self.weights.update({k: float(v) for k, v in weights.items()})
        if self.weights["contrast"] and perceptual is None:
            raise ValueError("the perceptual contrastive loss needs a perceptual network (or weight 0)")
        if cycle not in ("released", "paper"):
            raise ValueError("cycle must be 'released' or 'paper', got %r" % (cycle,))
        self.perceptual = perceptual
        self.margin, self.phi, self.n_points, self.cycle = float(margin), float(phi), int(n_points), cycle
        self.offset_factor = None if offset_factor is None else float(offset_factor)
        self.tps_regularization = float(tps_regularization)

    def forward(self, out: dict):
        w = self.weights
        ref = out["img_a"]
        B = ref.shape[0]
        pts = sample_points(self.n_points, dtype=ref.dtype, device=ref.device)
        terms = {}
        if w["matching"]:
            terms["matching"] = self._matching(out)
        if w["cycle"]:
            if self.cycle == "released":
                terms["cycle"] = affine_cycle_loss(out["t_ab"].theta, out["t_ba"].theta)
            else:
                terms["cycle"] = cycle_consistency_loss(out["t_ab"], out["t_ba"], B, pts)
        if w["trans"] and out.get("triplet") is not None:
            t_ab, t_bc, t_ca = out["triplet"]
            terms["trans"] = transitivity_loss(t_ab, t_bc, t_ca, t_ab.batch, pts)
        if w["contrast"]:
            terms["contrast"] = perceptual_contrastive_loss(out["img_a"], out["mask_a"], out["img_b"],
                                                            out["mask_b"], self.perceptual, self.margin)
        if w["task"]:
            terms["task"] = task_consistency_loss(out["mask_a"], out["mask_b"], out["field_ab"], out["field_ba"])
        total = sum(w[k] * v for k, v in terms.items())
        return total, {k: float(v.detach()) for k, v in terms.items()}

    def _matching(self, out: dict) -> torch.Tensor:
        """The matching loss over the affine stage and, with a cascade, the affine + TPS transform."""
        t_ab, t_ba = out["t_ab"], out["t_ba"]
        if self.offset_factor is None:  # T at the exact cell centres of the working image
            keys = [("points_ab_affine", "points_ba_affine")] + ([("points_ab", "points_ba")] if t_ab.tps is not None
                                                                 else [])
            return matching_loss(out["corr_ab"], [out[a] for a, _ in keys], out["corr_ba"], [out[b] for _, b in keys],
                                 image_size_a=out["work_size"], image_size_b=out["work_size"], phi=self.phi)
        stages_ab, stages_ba = [], []
        for corr, t, stages in ((out["corr_ab"], t_ab, stages_ab), (out["corr_ba"], t_ba, stages_ba)):
            B, h, w = corr.shape[:3]
            p = released_cell_points((h, w), self.offset_factor, dtype=corr.dtype, device=corr.device).reshape(-1, 2)
            stages.append(flow.affine_points(t.theta, p).reshape(B, h, w, 2))
            if t.tps is not None:  # cells the released composition sends out of bounds score nothing
                r = self.tps_regularization
                valid = released_tps_stage_valid(t.theta, t.tps, (h, w), self.offset_factor, r)
                pts = released_tps_stage(t.theta, t.tps, p, r).reshape(B, h, w, 2)
                stages.append(torch.where(valid[..., None], pts, 1e10))
        return matching_loss(out["corr_ab"], stages_ab, out["corr_ba"], stages_ba, phi=self.phi,
                             offset_factor=self.offset_factor)
