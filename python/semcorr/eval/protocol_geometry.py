"""Applying an evaluation :class:`~semcorr.eval.protocols.Protocol` to one pair.

A pair comes from a benchmark loader at its original size (``size=None``): images (3, H, W) in [0, 1] and
keypoints in original pixels. :func:`evaluate_pair` prepares the model inputs (resize + padding), runs the
model in the protocol's direction (``model(src, tgt)`` for S2T, ``model(tgt, src)`` for T2S), transfers the
*query* keypoints (source for S2T, target for T2S) into the *reference* image with the protocol's transfer,
and returns predictions, ground truth and the reference lengths in the protocol's evaluation frame.

The transfers reproduce the published formulas (each function names the code it follows); the tests in
``tests/test_protocols.py`` pin them on hand-computed cases.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

from semcorr_ext import flow

from .protocols import Frame, Protocol, Resize

__all__ = ["input_scale", "frame_scale", "prepare_image", "normalize_points", "unnormalize_points",
           "ncnet_interp", "sfnet_lookup", "transfer", "evaluate_pair", "pair_inputs", "PairInputs",
           "polygon_masks", "polygon_metrics", "PairGeometry"]

Size = Tuple[int, int]


# ----------------------------------------------------------------------------------------------------------
# frames
# ----------------------------------------------------------------------------------------------------------

def input_scale(resize: Resize, hw: Size) -> Tuple[Tuple[float, float], Size]:
    """((sx, sy), (h, w)): the per-axis scale from original pixels to the resized model input, and its size.

    ``long_side`` follows HPF's ``util.resize``: ratio ``S / max(H, W)`` (1 when ``downscale_only`` and the
    image is already small enough), size ``int(H * ratio)`` x ``int(W * ratio)`` (truncated), keypoints scaled
    by the ratio itself (not by the truncated size)."""
    H, W = int(hw[0]), int(hw[1])
    if resize.rule == "keep":
        return (1.0, 1.0), (H, W)
    S = int(resize.size)
    if resize.rule == "square":
        return (S / W, S / H), (S, S)
    side = max(H, W)
    r = 1.0 if (resize.downscale_only and side <= S) else S / side
    return (r, r), (int(H * r), int(W * r))


def frame_scale(frame: Frame, resize: Resize, hw: Size) -> Tuple[Tuple[float, float], Tuple[float, float]]:
    """((ex, ey), (He, We)): scale from original pixels to the evaluation frame, and the frame's size (floats:
    HPF's frame is ``ratio * (H, W)``, whose reference length ``ratio * max(H, W)`` is not truncated)."""
    H, W = int(hw[0]), int(hw[1])
    if frame.rule == "original":
        return (1.0, 1.0), (float(H), float(W))
    if frame.rule == "square":
        S = float(frame.size)
        return (S / W, S / H), (S, S)
    (sx, sy), _ = input_scale(resize, hw)
    return (sx, sy), (H * sy, W * sx)


def prepare_image(img: torch.Tensor, resize: Resize, pad: int = 0) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> (3, h + 2 pad, w + 2 pad) model input, resampled as the published loader does:
    ``align_corners`` (an identity affine ``grid_sample``, WeakAlign/NC-Net), ``bilinear``
    (``F.interpolate(align_corners=False)``, HPF) or ``antialias`` (PIL-like bilinear, SFNet / ours);
    padding is zeros (black), added before the model's own normalisation (SFNet's ``transforms.Pad(16)``)."""
    _, size = input_scale(resize, tuple(img.shape[-2:]))
    x = img.float()[None]
    if tuple(size) != tuple(img.shape[-2:]):
        if resize.interp == "align_corners":
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        else:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                              antialias=resize.interp == "antialias")
        x = x.clamp(0.0, 1.0)
    if pad:
        x = F.pad(x, (pad, pad, pad, pad), value=0.0)
    return x[0].contiguous()


def normalize_points(p: torch.Tensor, size_hw, one_based: bool) -> torch.Tensor:
    """Pixels (N, 2) of an image of ``size_hw`` -> [-1, 1] with align_corners; ``one_based``: WeakAlign's
    ``normalize_axis`` ``(x - 1 - (L - 1) / 2) * 2 / (L - 1)``."""
    H, W = float(size_hw[0]), float(size_hw[1])
    o = 1.0 if one_based else 0.0
    scale = p.new_tensor([2.0 / (W - 1.0), 2.0 / (H - 1.0)])
    return (p - o) * scale - 1.0


def unnormalize_points(n: torch.Tensor, size_hw, one_based: bool) -> torch.Tensor:
    """Inverse of :func:`normalize_points` (WeakAlign's ``unnormalize_axis``)."""
    H, W = float(size_hw[0]), float(size_hw[1])
    o = 1.0 if one_based else 0.0
    return (n + 1.0) * n.new_tensor([(W - 1.0) / 2.0, (H - 1.0) / 2.0]) + o


# ----------------------------------------------------------------------------------------------------------
# the published transfers
# ----------------------------------------------------------------------------------------------------------

def _grid_values(matches) -> torch.Tensor:
    """The match field (1, Gh, Gw, 2) re-expressed over the *cells* of the reference grid, corner-aligned:
    -1 / +1 = first / last cell (``linspace(-1, 1, n)``, the convention of NC-Net's ``corr_to_matches`` and of
    SFNet's kernel soft-argmax). Needs ``extras["tgt_grid"]`` (the reference grid's (Ht, Wt))."""
    grid = matches.extras.get("tgt_grid") if hasattr(matches, "extras") else None
    if grid is None:
        raise ValueError("this protocol reads matches on the model's grids; the model's Matches lack "
                         "extras['tgt_grid'] (the target grid size)")
    return flow.image_to_grid_coords(matches.field.double(), tuple(grid), matches.tgt_size)


def ncnet_interp(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """NC-Net's ``bilinearInterpPointTnf``: ``values`` (Gh, Gw, 2) are the matches of the query grid's nodes,
    which sit at ``linspace(-1, 1, Gw)`` x ``linspace(-1, 1, Gh)``; ``t`` (N, 2) normalised query points.

    As published: the lower node is ``#{nodes < t} - 1`` clamped at 0, the upper one the next node; the four
    weights are products of absolute distances to the opposite corner (so a point outside the grid is a
    weighted mean, not an extrapolation). Published for square grids only (``sqrt`` of the node count); the
    upper node is clamped to the last one here, where the published code would index past the row."""
    Gh, Gw = values.shape[0], values.shape[1]
    v = values.double()
    t = t.double()
    xs = torch.linspace(-1, 1, Gw, dtype=torch.float64)
    ys = torch.linspace(-1, 1, Gh, dtype=torch.float64)
    xm = ((t[:, 0:1] - xs[None, :]) > 0).sum(1) - 1
    ym = ((t[:, 1:2] - ys[None, :]) > 0).sum(1) - 1
    xm, ym = xm.clamp(min=0), ym.clamp(min=0)
    xp, yp = (xm + 1).clamp(max=Gw - 1), (ym + 1).clamp(max=Gh - 1)

    def node(ix, iy):
        return torch.stack([xs[ix], ys[iy]], 1)

    def w(p):
        d = (t - p).abs()
        return d[:, 0] * d[:, 1]

    f_pp, f_mm = w(node(xm, ym)), w(node(xp, yp))           # weight of a corner = area opposite to it
    f_mp, f_pm = w(node(xp, ym)), w(node(xm, yp))
    out = (v[ym, xm] * f_mm[:, None] + v[yp, xp] * f_pp[:, None] + v[yp, xm] * f_mp[:, None]
           + v[ym, xp] * f_pm[:, None]) / (f_pp + f_mm + f_mp + f_pm)[:, None]
    return out


def sfnet_lookup(values: torch.Tensor, crop: int, ref_grid: Size, q_kps: torch.Tensor, q_size: Size) -> torch.Tensor:
    """SFNet's ``eval_pascal.py`` / ``eval_willow.py`` read-out: ``values`` (Gh, Gw, 2) = ``grid_T2S`` (matches
    of the query cells, corner-aligned over the reference grid); crop ``crop`` cells at each border, multiply x
    by ``(Wr//2) / (Wr//2 - 1)`` and y by ``(Hr//2) / (Hr//2 - 1)`` (the padded grid's span -> the unpadded
    image's), upsample to the query image (``q_size`` (H, W) in the evaluation frame) with align_corners, and
    read it at each query keypoint rounded to a pixel (``W`` itself -> ``W - 1``). Returns (N, 2) normalised."""
    Hr, Wr = int(ref_grid[0]), int(ref_grid[1])
    g = values.double()[crop:values.shape[0] - crop, crop:values.shape[1] - crop]
    if g.shape[0] < 2 or g.shape[1] < 2:
        raise ValueError(f"sfnet transfer: a {tuple(values.shape[:2])} grid leaves nothing after cropping {crop}")
    g = g * g.new_tensor([(Wr // 2) / (Wr // 2 - 1), (Hr // 2) / (Hr // 2 - 1)])
    Hq, Wq = int(round(q_size[0])), int(round(q_size[1]))
    px = torch.round(q_kps[:, 0].double())          # np.round: half to even, as torch.round
    py = torch.round(q_kps[:, 1].double())
    px = torch.where(px == Wq, px - 1, px)
    py = torch.where(py == Hq, py - 1, py)
    loc = torch.stack([px * 2 / (Wq - 1) - 1, py * 2 / (Hq - 1) - 1], -1)     # align_corners upsampling
    out = F.grid_sample(g.permute(2, 0, 1)[None], loc[None, None], mode="bilinear", align_corners=True)
    return out[0, :, 0].t()


# ----------------------------------------------------------------------------------------------------------
# one pair
# ----------------------------------------------------------------------------------------------------------

class PairGeometry:
    """Frames of one pair under a protocol (query = the image whose keypoints are transferred)."""

    def __init__(self, protocol: Protocol, q_hw: Size, r_hw: Size):
        self.p = protocol
        self.q_in_scale, self.q_in_size = input_scale(protocol.resize, q_hw)
        self.r_in_scale, self.r_in_size = input_scale(protocol.resize, r_hw)
        self.q_e_scale, self.q_e_size = frame_scale(protocol.frame, protocol.resize, q_hw)
        self.r_e_scale, self.r_e_size = frame_scale(protocol.frame, protocol.resize, r_hw)
        pad = protocol.pad
        self.q_padded = (self.q_in_size[0] + 2 * pad, self.q_in_size[1] + 2 * pad)
        self.r_padded = (self.r_in_size[0] + 2 * pad, self.r_in_size[1] + 2 * pad)

    def q_eval_to_input(self, p: torch.Tensor) -> torch.Tensor:
        ratio = p.new_tensor([self.q_in_scale[0] / self.q_e_scale[0], self.q_in_scale[1] / self.q_e_scale[1]])
        return p * ratio + self.p.pad

    def r_input_to_eval(self, p: torch.Tensor) -> torch.Tensor:
        ratio = p.new_tensor([self.r_e_scale[0] / self.r_in_scale[0], self.r_e_scale[1] / self.r_in_scale[1]])
        return (p - self.p.pad) * ratio


def transfer(protocol: Protocol, geo: PairGeometry, matches, q_e: torch.Tensor) -> torch.Tensor:
    """Query keypoints (N, 2) in the evaluation frame -> predicted reference keypoints (N, 2), same frame."""
    one = protocol.frame.one_based
    if protocol.round_query:     # SCNet's MATLAB round(): half away from zero (coordinates are >= 0)
        q_e = torch.floor(q_e + 0.5)
    if protocol.transfer == "field":
        p_in = geo.q_eval_to_input(q_e.double()).float()
        out = matches.transfer_keypoints(p_in[None])[0].detach().double().cpu()
        return geo.r_input_to_eval(out)
    if protocol.transfer == "ncnet":
        values = _grid_values(matches)[0].cpu()
        t = normalize_points(q_e.double(), geo.q_e_size, one)
        return unnormalize_points(ncnet_interp(values, t), geo.r_e_size, one)
    if protocol.transfer == "sfnet":
        values = _grid_values(matches)[0].cpu()
        n = sfnet_lookup(values, protocol.crop_cells, matches.extras["tgt_grid"], q_e.double(), geo.q_e_size)
        return unnormalize_points(n, geo.r_e_size, False)
    # "transform": the model's parametric map of normalised coordinates (MaCoSNet: affine(tps(p)))
    ex = getattr(matches, "extras", {})
    if "theta_affine" not in ex:
        raise ValueError("the 'transform' transfer needs a model returning extras['theta_affine'] (MaCoSNet)")
    t = normalize_points(q_e.double(), geo.q_e_size, one)[None]
    tps = ex.get("tps_displacement")
    if tps is not None:
        t = flow.tps_points(tps.double().cpu(), t)
    n = flow.affine_points(ex["theta_affine"].double().cpu(), t)[0]
    return unnormalize_points(n, geo.r_e_size, one)


def _valid(kps: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(kps).all(-1) & (kps >= 0).all(-1)


@dataclasses.dataclass
class PairInputs:
    """One pair prepared under a protocol: model inputs (3, h, w) of the query and the reference, the query
    keypoints ``q_e`` and reference ground truth ``gt`` ((N, 2) float64, evaluation frame, valid only) and the
    reference lengths ``thresh`` {img, bbox, kpbox} of the reference image in that frame (nan: undefined)."""
    geo: PairGeometry
    q_in: torch.Tensor
    r_in: torch.Tensor
    q_e: torch.Tensor
    gt: torch.Tensor
    thresh: Dict[str, float]


def pair_inputs(sample: dict, protocol: Protocol, points: str = "kps") -> PairInputs:
    """Prepare one sample of a loader built with ``size=None`` (original images and keypoints; ``points="poly"``:
    the Caltech polygons' vertices instead of keypoints)."""
    q, r = ("src", "tgt") if protocol.direction == "s2t" else ("tgt", "src")
    q_img, r_img = sample[f"{q}_img"], sample[f"{r}_img"]
    q_kps, r_kps = sample[f"{q}_{points}"].double(), sample[f"{r}_{points}"].double()
    keep = _valid(q_kps) & _valid(r_kps)
    q_kps, r_kps = q_kps[keep], r_kps[keep]
    geo = PairGeometry(protocol, tuple(q_img.shape[-2:]), tuple(r_img.shape[-2:]))
    q_e = q_kps * q_kps.new_tensor(geo.q_e_scale)
    gt = r_kps * r_kps.new_tensor(geo.r_e_scale)
    ex, ey = geo.r_e_scale
    box = sample.get(f"{r}_bbox")
    bbox = math.nan
    if box is not None and bool((torch.as_tensor(box) >= 0).all()):
        b = torch.as_tensor(box, dtype=torch.float64)
        bbox = float(max((b[2] - b[0]) * ex, (b[3] - b[1]) * ey))
    kpbox = float((gt.max(0).values - gt.min(0).values).max()) if len(gt) else math.nan
    return PairInputs(geo, prepare_image(q_img, protocol.resize, protocol.pad),
                      prepare_image(r_img, protocol.resize, protocol.pad), q_e, gt,
                      {"img": float(max(geo.r_e_size)), "bbox": bbox, "kpbox": kpbox})


def evaluate_pair(model_fn, sample: dict, protocol: Protocol) -> Dict[str, object]:
    """Run ``model_fn(query_input, reference_input) -> Matches`` (batched (1, 3, h, w) images) on one sample
    of a loader built with ``size=None`` and return ``{"pred", "gt"}`` ((N, 2) float64 in the evaluation frame,
    valid keypoints only) and ``"thresh"`` (see :class:`PairInputs`)."""
    x = pair_inputs(sample, protocol)
    matches = model_fn(x.q_in[None], x.r_in[None])
    pred = transfer(protocol, x.geo, matches, x.q_e) if len(x.q_e) else x.q_e.clone()
    return {"pred": pred.double(), "gt": x.gt, "thresh": x.thresh}


def polygon_masks(model_fn, sample: dict, protocol: Protocol) -> Tuple[torch.Tensor, torch.Tensor]:
    """HPF's Caltech evaluation (``eval_caltech``): transfer the query polygon's vertices, rasterise the
    predicted and the ground-truth polygons at the reference image's size in the frame (HPF: the resized
    target, ``int()``-truncated); returns the two (h, w) bool masks (predicted, ground truth)."""
    from semcorr.data.datasets.caltech import polygon_mask

    x = pair_inputs(sample, protocol, points="poly")
    matches = model_fn(x.q_in[None], x.r_in[None])
    pred = transfer(protocol, x.geo, matches, x.q_e)
    shape = (x.geo.r_in_size if protocol.frame.rule == "input"
             else (int(round(x.geo.r_e_size[0])), int(round(x.geo.r_e_size[1]))))
    pm = torch.from_numpy(polygon_mask(pred[:, 0].numpy(), pred[:, 1].numpy(), shape))
    gm = torch.from_numpy(polygon_mask(x.gt[:, 0].numpy(), x.gt[:, 1].numpy(), shape))
    return pm, gm


def polygon_metrics(model_fn, sample: dict, protocol: Protocol) -> Dict[str, float]:
    """LT-ACC (pixels with equal labels) and IoU of the masks of :func:`polygon_masks`."""
    from .mask_transfer import label_transfer_accuracy, mask_iou

    pm, gm = polygon_masks(model_fn, sample, protocol)
    return {"ltacc": label_transfer_accuracy(pm, gm), "iou": mask_iou(pm, gm)}
