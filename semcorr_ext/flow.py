"""Match fields, pixel flow, warping and keypoint transfer (pure PyTorch).

Conventions used throughout semcorr_ext and the ``semcorr`` models:

* Points are ``(x, y)`` pairs in the last dimension (x = column, y = row), like ``grid_sample``.
* Sizes are ``(H, W)`` pairs in pixels.
* Pixel coordinates put pixel centres at integers: the top-left pixel is at (0, 0), the bottom-right
  at (W-1, H-1).
* Normalised coordinates use ``align_corners=True`` over the image *in pixels*:
  ``x_pix = (x + 1) / 2 * (W - 1)``, so -1 and +1 are the centres of the first and last pixels.
  (For a 1-pixel side every normalised coordinate maps to pixel 0, as in ``grid_sample``.)
* A *match field* is a tensor (B, Hs, Ws, 2): for each cell of a source feature grid, the matched position
  in the *target image*, in normalised coordinates over the target image (not over the target grid).
* A feature grid of (Hg, Wg) cells over an image of (H, W) pixels has its cell centres at
  ``x_pix = (k + 0.5) * W / Wg - 0.5`` (k = 0..Wg-1), and likewise for y: the grid tiles the image
  uniformly, as a strided convolution or an ``interpolate(..., align_corners=False)`` resize does. When the
  grid *is* the image (Hg, Wg) == (H, W), cell centres are the pixels themselves.
* Padded keypoints (PF-PASCAL / PF-WILLOW fill missing ones with -1) are any point with a negative
  coordinate; functions that transfer keypoints leave them at (-1, -1).

Functions:
  normalize_coords / unnormalize_coords   pixels <-> normalised coordinates
  grid_coords                             normalised image coordinates of a feature grid's cell centres
  image_to_grid_coords                    image-normalised -> grid-normalised coordinates (for grid_sample
                                          over a per-cell tensor)
  field_to_flow / flow_to_field           match field <-> pixel displacement (target pixel - source pixel)
  warp                                    sample a target image/mask at a match field (grid_sample)
  transfer_keypoints                      bilinear interpolation of a match field at source keypoints
  consistency_mask                        forward-backward consistency check
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = [
    "normalize_coords",
    "unnormalize_coords",
    "grid_coords",
    "image_to_grid_coords",
    "field_to_flow",
    "flow_to_field",
    "warp",
    "transfer_keypoints",
    "consistency_mask",
]

Size = Tuple[int, int]


def _check_size(size, name: str) -> Size:
    if len(size) != 2 or int(size[0]) < 1 or int(size[1]) < 1:
        raise ValueError("%s must be (H, W) with positive entries, got %r" % (name, tuple(size)))
    return int(size[0]), int(size[1])


def _check_points(t: torch.Tensor, name: str) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError("%s must be a torch.Tensor, got %s" % (name, type(t).__name__))
    if t.dim() < 1 or t.shape[-1] != 2:
        raise ValueError("%s must have a last dimension of size 2 (x, y), got shape %s" % (name, tuple(t.shape)))


def _check_field(field: torch.Tensor, name: str = "field") -> None:
    if not isinstance(field, torch.Tensor):
        raise TypeError("%s must be a torch.Tensor, got %s" % (name, type(field).__name__))
    if field.dim() != 4 or field.shape[-1] != 2:
        raise ValueError("%s must be (B, Hs, Ws, 2), got shape %s" % (name, tuple(field.shape)))
    if not field.is_floating_point():
        raise TypeError("%s must be floating point, got %s" % (name, field.dtype))


def _span(n: int) -> int:
    # W - 1, except that a 1-pixel side maps everything to pixel 0 (grid_sample's behaviour).
    return max(n - 1, 1)


def normalize_coords(pix: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Pixel coordinates (..., 2) as (x, y) -> normalised coordinates in [-1, 1] (align_corners=True).

    ``size`` is (H, W) of the image the pixels belong to.
    """
    _check_points(pix, "pix")
    H, W = _check_size(size, "size")
    scale = pix.new_tensor([2.0 / _span(W), 2.0 / _span(H)])
    return pix * scale - 1.0


def unnormalize_coords(norm: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Normalised coordinates (..., 2) as (x, y) -> pixel coordinates of an image of ``size`` = (H, W)."""
    _check_points(norm, "norm")
    H, W = _check_size(size, "size")
    scale = norm.new_tensor([(W - 1) / 2.0, (H - 1) / 2.0])
    return (norm + 1.0) * scale


def _cell_centres(n_cells: int, n_pix: int, dtype, device) -> torch.Tensor:
    k = torch.arange(n_cells, dtype=dtype, device=device)
    return (k + 0.5) * (n_pix / n_cells) - 0.5


def grid_coords(H: int, W: int, image_size: Optional[Sequence[int]] = None, *,
                dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """Normalised image coordinates of the cell centres of an (H, W) feature grid: (H, W, 2) as (x, y).

    Cell (i, j) of a grid of (H, W) cells laid over an image of ``image_size`` = (Hi, Wi) pixels has its
    centre at pixel ``((j + 0.5) * Wi / W - 0.5, (i + 0.5) * Hi / H - 0.5)``; the result is that pixel
    position normalised over the image (align_corners=True). ``image_size=None`` means the grid is the image
    (each cell is one pixel), which gives ``linspace(-1, 1, W)`` x ``linspace(-1, 1, H)``: the identity match
    field between two images of that size.
    """
    if H < 0 or W < 0:
        raise ValueError("grid size must be non-negative, got (%d, %d)" % (H, W))
    if image_size is None:
        image_size = (H, W)
    Hi, Wi = _check_size(image_size, "image_size")
    ys = _cell_centres(H, Hi, dtype, device)
    xs = _cell_centres(W, Wi, dtype, device)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return normalize_coords(torch.stack([xx, yy], dim=-1), (Hi, Wi))


def image_to_grid_coords(norm: torch.Tensor, grid_size: Sequence[int], image_size: Sequence[int]) -> torch.Tensor:
    """Coordinates normalised over an image -> coordinates normalised over the cell centres of a grid.

    The result indexes a per-cell tensor of shape ``grid_size`` with ``grid_sample(align_corners=True)``
    (-1 / +1 = centre of the first / last cell), so that sampling a grid-valued quantity at an image position
    interpolates between the cells whose centres surround it.
    """
    Hg, Wg = _check_size(grid_size, "grid_size")
    Hi, Wi = _check_size(image_size, "image_size")
    pix = unnormalize_coords(norm, (Hi, Wi))
    scale = pix.new_tensor([Wg / Wi, Hg / Hi])
    cells = (pix + 0.5) * scale - 0.5
    return normalize_coords(cells, (Hg, Wg))


def field_to_flow(field: torch.Tensor, src_size: Optional[Sequence[int]] = None,
                  tgt_size: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Match field (B, Hs, Ws, 2) -> pixel flow (B, Hs, Ws, 2): target pixel minus source cell-centre pixel.

    ``src_size`` / ``tgt_size`` are the (H, W) pixel sizes of the images; by default the source image is
    the source grid and the target image has the same size as the source image.
    """
    _check_field(field)
    Hs, Ws = field.shape[1], field.shape[2]
    src_size = (Hs, Ws) if src_size is None else _check_size(src_size, "src_size")
    tgt_size = src_size if tgt_size is None else _check_size(tgt_size, "tgt_size")
    src = unnormalize_coords(grid_coords(Hs, Ws, src_size, dtype=field.dtype, device=field.device), src_size)
    return unnormalize_coords(field, tgt_size) - src


def flow_to_field(flow: torch.Tensor, src_size: Optional[Sequence[int]] = None,
                  tgt_size: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Pixel flow (B, Hs, Ws, 2) -> match field; the inverse of :func:`field_to_flow` (same size defaults)."""
    _check_field(flow, "flow")
    Hs, Ws = flow.shape[1], flow.shape[2]
    src_size = (Hs, Ws) if src_size is None else _check_size(src_size, "src_size")
    tgt_size = src_size if tgt_size is None else _check_size(tgt_size, "tgt_size")
    src = unnormalize_coords(grid_coords(Hs, Ws, src_size, dtype=flow.dtype, device=flow.device), src_size)
    return normalize_coords(flow + src, tgt_size)


def warp(image_or_mask: torch.Tensor, field: torch.Tensor, *, mode: str = "bilinear",
         padding_mode: str = "zeros") -> torch.Tensor:
    """Sample a target image or mask at a match field: (B, C, Ht, Wt) or (B, Ht, Wt) -> (B, C, Hs, Ws) / (B, Hs, Ws).

    Output cell (i, j) takes the target's value at ``field[:, i, j]`` (``grid_sample``, align_corners=True,
    so the field's normalised coordinates are over the target image in pixels). This brings the target into
    the source frame (backward warping). Non-float inputs (bool/integer masks) are sampled as floats and
    returned as floats in the field's dtype; use ``mode="nearest"`` to keep mask values exact.
    """
    _check_field(field)
    x = image_or_mask
    if not isinstance(x, torch.Tensor):
        raise TypeError("image_or_mask must be a torch.Tensor, got %s" % type(x).__name__)
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise ValueError("image_or_mask must be (B, C, H, W) or (B, H, W), got shape %s"
                         % (tuple(image_or_mask.shape),))
    if x.shape[0] != field.shape[0]:
        raise ValueError("batch sizes differ: image_or_mask has %d, field has %d" % (x.shape[0], field.shape[0]))
    if not x.is_floating_point():
        x = x.to(field.dtype)
    out = F.grid_sample(x, field.to(x.dtype), mode=mode, padding_mode=padding_mode, align_corners=True)
    return out.squeeze(1) if squeeze else out


def transfer_keypoints(field: torch.Tensor, kps: torch.Tensor, src_size: Sequence[int],
                       tgt_size: Sequence[int]) -> torch.Tensor:
    """Transfer source keypoints through a match field: (B, N, 2) source pixels -> (B, N, 2) target pixels.

    The field (B, Hs, Ws, 2) is bilinearly interpolated at each keypoint between the centres of the four
    surrounding source-grid cells (see the module docstring for where cell centres are). Keypoints beyond the
    outermost cell centres (within half a cell of the image border) take the nearest edge value (border
    clamping, no extrapolation). ``src_size`` / ``tgt_size`` are the (H, W) of the images in pixels.
    Keypoints with a negative coordinate (padding) come out as (-1, -1).
    """
    _check_field(field)
    _check_points(kps, "kps")
    if kps.dim() != 3 or kps.shape[0] != field.shape[0]:
        raise ValueError("kps must be (B, N, 2) with B = %d (the field's batch), got shape %s"
                         % (field.shape[0], tuple(kps.shape)))
    src_size = _check_size(src_size, "src_size")
    tgt_size = _check_size(tgt_size, "tgt_size")
    Hs, Ws = field.shape[1], field.shape[2]
    kps_f = kps.to(field.dtype)
    valid = (kps_f >= 0).all(dim=-1)
    g = image_to_grid_coords(normalize_coords(kps_f, src_size), (Hs, Ws), src_size)
    # (B, 2, Hs, Ws) sampled at (B, 1, N, 2) -> (B, 2, 1, N)
    sampled = F.grid_sample(field.permute(0, 3, 1, 2), g.unsqueeze(1), mode="bilinear",
                            padding_mode="border", align_corners=True)
    out = unnormalize_coords(sampled[:, :, 0, :].permute(0, 2, 1), tgt_size)
    return torch.where(valid.unsqueeze(-1), out, torch.full_like(out, -1.0))


def consistency_mask(fwd: torch.Tensor, bwd: torch.Tensor, thresh: float = 1.0,
                     src_size: Optional[Sequence[int]] = None,
                     tgt_size: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Forward-backward consistency: (B, Hs, Ws) bool, True where a source cell maps back near itself.

    ``fwd`` (B, Hs, Ws, 2) maps source cells into the target image, ``bwd`` (B, Ht, Wt, 2) maps target cells
    into the source image (both match fields). The backward field is bilinearly interpolated at each forward
    match (border clamped) and the round trip compared with the cell centre: a cell is consistent when the
    distance is <= ``thresh`` *source-image pixels*. ``src_size`` / ``tgt_size`` are the (H, W) of the images
    (default: the grids themselves, i.e. one cell = one pixel).
    """
    _check_field(fwd, "fwd")
    _check_field(bwd, "bwd")
    if fwd.shape[0] != bwd.shape[0]:
        raise ValueError("batch sizes differ: fwd has %d, bwd has %d" % (fwd.shape[0], bwd.shape[0]))
    Hs, Ws = fwd.shape[1], fwd.shape[2]
    Ht, Wt = bwd.shape[1], bwd.shape[2]
    src_size = (Hs, Ws) if src_size is None else _check_size(src_size, "src_size")
    tgt_size = (Ht, Wt) if tgt_size is None else _check_size(tgt_size, "tgt_size")
    g = image_to_grid_coords(fwd, (Ht, Wt), tgt_size)
    back = F.grid_sample(bwd.permute(0, 3, 1, 2), g.to(bwd.dtype), mode="bilinear", padding_mode="border",
                         align_corners=True).permute(0, 2, 3, 1)
    centre = unnormalize_coords(grid_coords(Hs, Ws, src_size, dtype=back.dtype, device=back.device), src_size)
    err = (unnormalize_coords(back, src_size) - centre).norm(dim=-1)
    return err <= thresh


# --------------------------------------------------------------------------------------------------------
# Parametric transforms: affine and thin-plate spline (TPS) point maps and sampling grids, differentiable in
# their parameters (CNNGeometric / WeakAlign / MaCoSNet geometric transformation predictors).
#
# Both act on normalised coordinates (x, y) of the convention above. A transform T maps a point p of one
# image to T(p) of another; evaluated at a grid of p it is a match field / a ``grid_sample`` grid.


def _batched_points(pts: torch.Tensor, batch: int, name: str = "pts") -> torch.Tensor:
    _check_points(pts, name)
    if pts.dim() == 2:
        pts = pts.unsqueeze(0).expand(batch, -1, -1)
    if pts.dim() != 3 or pts.shape[0] not in (1, batch):
        raise ValueError("%s must be (N, 2) or (B, N, 2) with B = %d, got shape %s" % (name, batch, tuple(pts.shape)))
    return pts.expand(batch, -1, -1)


def _grid_points(size, image_size, dtype, device) -> torch.Tensor:
    H, W = _check_size(size, "size")
    return grid_coords(H, W, image_size, dtype=dtype, device=device).reshape(H * W, 2)


def affine_points(theta: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """Apply affine transforms to points: ``theta`` (B, 2, 3) (or (B, 6), row-major), ``pts`` (B, N, 2) or
    (N, 2) normalised (x, y) -> (B, N, 2) with ``T(p) = theta[:, :, :2] @ p + theta[:, :, 2]``."""
    if theta.dim() == 2 and theta.shape[1] == 6:
        theta = theta.reshape(-1, 2, 3)
    if theta.dim() != 3 or tuple(theta.shape[1:]) != (2, 3):
        raise ValueError("theta must be (B, 2, 3) or (B, 6), got shape %s" % (tuple(theta.shape),))
    p = _batched_points(pts, theta.shape[0]).to(theta.dtype)
    return p @ theta[:, :, :2].transpose(1, 2) + theta[:, :, 2].unsqueeze(1)


def affine_grid(theta: torch.Tensor, size: Sequence[int], image_size: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Affine sampling grid / match field: (B, H, W, 2) = ``T(p)`` at the cell centres p of an (H, W) grid.

    ``theta`` is (B, 2, 3) (or (B, 6)); the points p are :func:`grid_coords` ``(H, W, image_size)``
    (``image_size=None``: the grid is the image, p = linspace(-1, 1) per axis, align_corners=True). The
    identity ``[[1, 0, 0], [0, 1, 0]]`` gives the identity grid. ``grid_sample(img, affine_grid(theta, size),
    align_corners=True)`` warps ``img`` with the backward map T; with ``image_size=None`` this equals
    ``F.affine_grid(theta, (B, C, H, W), align_corners=True)``.
    """
    if theta.dim() == 2 and theta.shape[1] == 6:
        theta = theta.reshape(-1, 2, 3)
    H, W = _check_size(size, "size")
    p = _grid_points(size, image_size, theta.dtype, theta.device)
    return affine_points(theta, p).reshape(theta.shape[0], H, W, 2)


def fit_affine(src_pts: torch.Tensor, dst_pts: torch.Tensor) -> torch.Tensor:
    """Least-squares affine transform mapping ``src_pts`` to ``dst_pts``: (B, N, 2) each (N >= 3, not
    collinear) -> theta (B, 2, 3) minimising ``sum ||theta @ [p; 1] - q||^2`` (differentiable)."""
    _check_points(src_pts, "src_pts")
    _check_points(dst_pts, "dst_pts")
    if src_pts.dim() == 2:
        src_pts, dst_pts = src_pts.unsqueeze(0), dst_pts.unsqueeze(0)
    if src_pts.shape != dst_pts.shape or src_pts.shape[1] < 3:
        raise ValueError("src_pts and dst_pts must both be (B, N >= 3, 2), got %s and %s"
                         % (tuple(src_pts.shape), tuple(dst_pts.shape)))
    X = torch.cat([src_pts, torch.ones_like(src_pts[..., :1])], -1)  # (B, N, 3)
    sol = torch.linalg.lstsq(X, dst_pts.to(X.dtype)).solution     # (B, 3, 2)
    return sol.transpose(1, 2)


def invert_affine(theta: torch.Tensor) -> torch.Tensor:
    """Inverse of affine transforms (B, 2, 3) (or (B, 6)) -> (B, 2, 3)."""
    if theta.dim() == 2 and theta.shape[1] == 6:
        theta = theta.reshape(-1, 2, 3)
    A_inv = torch.linalg.inv(theta[:, :, :2])
    return torch.cat([A_inv, -(A_inv @ theta[:, :, 2:])], -1)


def tps_control_points(grid_size: int = 3, *, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The TPS control points: a ``grid_size`` x ``grid_size`` regular grid spanning [-1, 1]^2, (K, 2) as (x, y)
    with K = grid_size ** 2, row-major (y outer, x inner): point k = (xs[k % g], ys[k // g])."""
    if int(grid_size) < 2:
        raise ValueError("grid_size must be >= 2, got %r" % (grid_size,))
    lin = torch.linspace(-1.0, 1.0, int(grid_size), dtype=dtype, device=device)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)


def _tps_u(r2: torch.Tensor) -> torch.Tensor:
    # TPS radial basis U = r^2 log r^2 (0 at r = 0)
    return torch.where(r2 > 0, r2 * torch.log(r2.clamp_min(1e-30)), torch.zeros_like(r2))


def _tps_system_inverse(ctrl: torch.Tensor, regularization: float = 0.0) -> torch.Tensor:
    """(K+3, K+3) inverse of the TPS interpolation system [[U(P_i, P_j) + r I, 1, x_i, y_i]; [1, x, y]^T, 0]."""
    c = ctrl.to(torch.float64)
    K = c.shape[0]
    Kmat = _tps_u(((c[:, None, :] - c[None, :, :]) ** 2).sum(-1))
    if regularization:
        Kmat = Kmat + float(regularization) * torch.eye(K, dtype=c.dtype, device=c.device)
    P = torch.cat([torch.ones(K, 1, dtype=c.dtype, device=c.device), c], 1)
    L = torch.zeros(K + 3, K + 3, dtype=c.dtype, device=c.device)
    L[:K, :K] = Kmat
    L[:K, K:] = P
    L[K:, :K] = P.T
    return torch.linalg.inv(L)


def tps_points(displacement: torch.Tensor, pts: torch.Tensor,
               control_points: Optional[torch.Tensor] = None, regularization: float = 0.0) -> torch.Tensor:
    """Thin-plate-spline point map: the TPS that sends each control point P_k to ``P_k + displacement[:, k]``.

    Args:
        displacement: (B, K, 2) (or (B, 2K) as (x_1..x_K, y_1..y_K)) offsets of the K control points in
            normalised coordinates; zeros give the identity.
        pts: (B, N, 2) or (N, 2) normalised (x, y) points to transform.
        control_points: (K, 2); default :func:`tps_control_points` of a sqrt(K) x sqrt(K) grid.
        regularization: r added to the kernel's diagonal (CNNGeometric's ``TpsGridGen(reg_factor=r)``): a smoother
            map that no longer passes exactly through the targets. Default 0 (interpolation).

    Returns (B, N, 2): ``T(p) = a_0 + a_1 x + a_2 y + sum_k w_k U(|p - P_k|)`` with U(r) = r^2 log r^2, the
    minimum-bending interpolant (without regularization exact at the control points; any affine map of the control
    points is reproduced exactly everywhere). Differentiable in ``displacement`` and ``pts``.
    """
    if displacement.dim() == 2:
        if displacement.shape[1] % 2:
            raise ValueError("flat displacement must be (B, 2K), got shape %s" % (tuple(displacement.shape),))
        k = displacement.shape[1] // 2
        displacement = torch.stack([displacement[:, :k], displacement[:, k:]], -1)
    if displacement.dim() != 3 or displacement.shape[-1] != 2:
        raise ValueError("displacement must be (B, K, 2) or (B, 2K), got shape %s" % (tuple(displacement.shape),))
    B, K, _ = displacement.shape
    dtype, device = displacement.dtype, displacement.device
    if control_points is None:
        g = int(round(K ** 0.5))
        if g * g != K:
            raise ValueError("without control_points, K = %d must be a square (g x g grid)" % K)
        control_points = tps_control_points(g, dtype=torch.float64, device=device)
    if tuple(control_points.shape) != (K, 2):
        raise ValueError("control_points must be (K, 2) = (%d, 2), got shape %s" % (K, tuple(control_points.shape)))
    Linv = _tps_system_inverse(control_points, regularization).to(dtype)  # (K+3, K+3)
    ctrl = control_points.to(dtype=dtype, device=device)
    values = ctrl.unsqueeze(0) + displacement                             # (B, K, 2)
    rhs = torch.cat([values, values.new_zeros(B, 3, 2)], 1)              # (B, K+3, 2)
    coef = Linv.unsqueeze(0) @ rhs                                        # (B, K+3, 2): w_1..w_K, a_0, a_x, a_y
    p = _batched_points(pts, B).to(dtype)
    U = _tps_u(((p.unsqueeze(2) - ctrl.view(1, 1, K, 2)) ** 2).sum(-1))  # (B, N, K)
    basis = torch.cat([U, torch.ones_like(p[..., :1]), p], -1)           # (B, N, K+3)
    return basis @ coef


def tps_grid(control_points_displacement: torch.Tensor, size: Sequence[int],
             image_size: Optional[Sequence[int]] = None,
             control_points: Optional[torch.Tensor] = None) -> torch.Tensor:
    """TPS sampling grid / match field: (B, H, W, 2) = :func:`tps_points` at the cell centres of an (H, W)
    grid (:func:`grid_coords` ``(H, W, image_size)``; ``image_size=None``: linspace(-1, 1) per axis). Zero
    displacement gives the identity grid."""
    d = control_points_displacement
    H, W = _check_size(size, "size")
    p = _grid_points(size, image_size, d.dtype, d.device)
    return tps_points(d, p, control_points).reshape(d.shape[0], H, W, 2)


__all__ += ["affine_points", "affine_grid", "fit_affine", "invert_affine", "tps_control_points", "tps_points",
            "tps_grid"]
