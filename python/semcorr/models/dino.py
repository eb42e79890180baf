"""Zero-shot matching on DINOv2 features: the DINOv2 path of GeoAware-SC (Zhang et al., "Telling Left from
Right", CVPR 2024; released code Junyi42/GeoAware-SC) on our ops, at any grid size.

Pipeline and where each default comes from (all GeoAware-SC's zero-shot SPair config,
``configs/eval_zero_shot_spair.yaml``, and its ``preprocess_map.py`` / ``utils/utils_correspondence.py``):

1. **Input** (``img_size=840``): each image is resized so that its longer side is 840 px (PIL LANCZOS on the
   uint8 image, aspect kept, shorter side ``round(840 * h / w)``) and zero-padded to an 840 x 840 square,
   centred (GeoAware-SC's ``resize(img, 840, resize=True, edge=False)``; SD-DINO does the same).
2. **Features**: ``dinov2_vitb14`` (:class:`semcorr.backbones_vit.DINOv2Features`), last block (``layer=11``),
   facet ``token`` (before the final norm), ImageNet mean/std: a 60 x 60 x 768 map per image.
3. **Correlation**: cosine similarity of every source and target cell (GeoAware-SC normalises each
   descriptor, then one matmul) — ``ops.corr4d``, on bands of source rows when the volume would exceed
   ``dense_max_cells`` cells (each band is read out before the next is formed).
4. **Readout** (``readout="window"``, ``window=5``, ``beta=50``): GeoAware-SC's ``get_flow`` with
   ``SOFT_EVAL_WINDOW=5``: around each source cell's argmax, the correlations inside an 11 x 11 window are kept
   and all others set to 0 (not removed: they still enter the softmax), then SFNet's soft-argmax with
   temperature 0.02 (``softmax(50 * c)``) over all target cells gives a sub-cell position. Computed exactly
   from the window alone (the zeros contribute in closed form), so no volume-sized pass is needed.
   ``readout="kernel"`` is the config's negative-window mode (``SOFT_EVAL_WINDOW=-sigma``: a Gaussian around
   the argmax times the correlations, then the same soft-argmax) = ``ops.kernel_soft_argmax(normalize=False,
   beta=50, sigma)``; ``readout="argmax"`` is plain nearest neighbour (``SOFT_EVAL: false``; DINOv2 NN / DIFT).

Our own, named options (off by default): ``mutual=True`` applies NC-Net's soft mutual-NN filter
(``ops.mutual_matching``) to the ReLU'd volume before the readout; ``consensus="sparse"`` re-picks each
source cell's argmax by a hand-set (all-ones 3^4) neighbourhood-consensus filter over the sparse volume of the
top-``topk`` matches in both directions (``ops.corr4d_topk`` + ``ops.sparse_conv4d``): candidates supported
by matching neighbours win; the window readout then runs around the new centre.

Not reproduced: GeoAware-SC's Stable-Diffusion features (its 65.4 PCK@0.1 zero-shot number fuses SD and DINOv2
features) and its adaptive pose-flip test (``ADAPT_FLIP``); see docs/models/dino.md.

Geometry: the published code maps keypoints by ``x * s + pad`` and back by ``14 * cell + 7``; we use the
pixel-centre mapping of the resize (``(x + 0.5) * s - 0.5 + pad``) and the project's cell centres
(``14 * cell + 6.5``), a difference below one canvas pixel, and give the match field on a source grid that tiles
the source image (:class:`Matches`): the canvas field is sampled bilinearly at that grid's cell centres.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops

from ..backbone_factory import fuse_features, make_backbone
from ..backbones_vit import DINOV2_MODELS
from . import register_model
from .base import CorrespondenceModel, Matches

__all__ = ["DinoMatcher", "letterbox", "window_soft_argmax", "window_offsets", "sparse_consensus_argmax"]

_PATCH = 14
READOUTS = ("window", "kernel", "argmax")
#: GeoAware-SC normalises by ``norm + 1e-10``; corr4d's ``f / sqrt(sum f^2 + eps)`` with eps = 1e-20 is the same
_EPS = 1e-20
CONSENSUS = (None, "sparse")


def letterbox(img: torch.Tensor, size: int) -> Tuple[torch.Tensor, float, Tuple[float, float]]:
    """GeoAware-SC's ``resize(img, size, resize=True, edge=False)`` on a (B, 3, H, W) [0, 1] batch.

    The image is quantised to uint8 (the published code starts from image files), resized with PIL's LANCZOS
    so that the longer side is ``size`` (the other ``round(size * short / long)``) and pasted centred on a
    black ``size`` x ``size`` canvas. Returns ``(canvas (B, 3, size, size) float in [0, 1], (scale_x, scale_y),
    (pad_x, pad_y))``: the image pixel centred at x lands at canvas ``(x + 0.5) * scale_x - 0.5 + pad_x`` (the
    released code maps keypoints by ``x * size / long + pad``, under one canvas pixel apart)."""
    from PIL import Image

    B, _, H, W = img.shape
    if H <= W:
        new_w, new_h = size, int(np.around(size * H / W))
    else:
        new_w, new_h = int(np.around(size * W / H)), size
    pad_y, pad_x = (size - new_h) // 2, (size - new_w) // 2
    arr = (img.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    canvas = np.zeros((B, size, size, 3), dtype=np.uint8)
    for b in range(B):
        resized = Image.fromarray(arr[b]).resize((new_w, new_h), Image.Resampling.LANCZOS)
        canvas[b, pad_y:pad_y + new_h, pad_x:pad_x + new_w] = np.asarray(resized)
    out = torch.from_numpy(canvas).permute(0, 3, 1, 2).to(device=img.device, dtype=img.dtype) / 255
    # the scale of the actual resize per axis (they differ from size / long by the rounding of the short side)
    return out, (new_w / W, new_h / H), (float(pad_x), float(pad_y))


def window_offsets(window: int, device=None) -> torch.Tensor:
    """(K, 2) int64 (dy, dx) of a (2 window + 1)^2 square, row-major."""
    r = torch.arange(-window, window + 1, device=device)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([dy.reshape(-1), dx.reshape(-1)], 1)


def window_soft_argmax(values: torch.Tensor, pos: torch.Tensor, valid: torch.Tensor, tgt_grid: Sequence[int],
                       beta: float = 50.0) -> torch.Tensor:
    """GeoAware-SC's windowed soft-argmax from the window alone.

    The published ``get_flow(corr, flow_window)`` multiplies each source row of the (Ns, Nt) correlation by a
    0/1 mask of the window around its argmax and takes ``softmax(beta * masked)`` over all Nt targets, then
    the expected ``linspace(-1, 1)`` coordinates. Entries outside the window are 0, so they add
    ``exp(-beta * m)`` each (m = the masked row's maximum, which is 0 when all window values are negative).

    Args:
        values: (B, Ns, K) correlations at the window positions.
        pos: (B, Ns, K, 2) int64 (y, x) target cells of the window (any value where not ``valid``).
        valid: (B, Ns, K) bool, True for the window cells inside the target grid (each counted once).
        tgt_grid: (Ht, Wt).
        beta: inverse temperature (the published 1 / 0.02 = 50).

    Returns:
        (B, Ns, 2) expected (x, y) in target grid cells (0 .. Wt - 1), computed in float64 or the input dtype if
        wider.
    """
    Ht, Wt = int(tgt_grid[0]), int(tgt_grid[1])
    dt = torch.promote_types(values.dtype, torch.float64)
    v = values.to(dt).masked_fill(~valid, float("-inf"))
    n_out = (Ht * Wt - valid.sum(-1)).to(dt)  # masked-out targets (value 0)
    m = v.amax(-1)
    m = torch.where(n_out > 0, m.clamp_min(0), m)
    e = torch.exp(beta * (v - m.unsqueeze(-1)))  # 0 where not valid
    e0 = torch.exp(-beta * m) * (n_out > 0)  # weight of each zero entry
    # linspace(-1, 1) coordinates of every target cell, as the published soft_argmax uses
    xs = torch.linspace(-1, 1, Wt, dtype=dt, device=values.device)
    ys = torch.linspace(-1, 1, Ht, dtype=dt, device=values.device)
    px = xs[pos[..., 1].clamp(0, Wt - 1)] * valid
    py = ys[pos[..., 0].clamp(0, Ht - 1)] * valid
    z = e.sum(-1) + e0 * n_out
    sum_x_all, sum_y_all = xs.sum() * Ht, ys.sum() * Wt
    gx = ((e * px).sum(-1) + e0 * (sum_x_all - px.sum(-1))) / z
    gy = ((e * py).sum(-1) + e0 * (sum_y_all - py.sum(-1))) / z
    # published: unnormalise_and_convert_mapping_to_flow ((x + 1) * (W - 1) / 2), then clamp(0, W - 1)
    gx = ((gx + 1) * (Wt - 1) / 2).clamp(0, Wt - 1)
    gy = ((gy + 1) * (Ht - 1) / 2).clamp(0, Ht - 1)
    return torch.stack([gx, gy], -1)


def _window_positions(center: torch.Tensor, tgt_grid, window: int):
    """center (B, Ns) flat target index -> pos (B, Ns, K, 2), valid (B, Ns, K), flat (B, Ns, K) (clamped)."""
    Ht, Wt = tgt_grid
    off = window_offsets(window, center.device)
    cy, cx = center // Wt, center % Wt
    y = cy.unsqueeze(-1) + off[:, 0]
    x = cx.unsqueeze(-1) + off[:, 1]
    valid = (y >= 0) & (y < Ht) & (x >= 0) & (x < Wt)
    flat = y.clamp(0, Ht - 1) * Wt + x.clamp(0, Wt - 1)
    return torch.stack([y, x], -1), valid, flat


def sparse_consensus_argmax(fs_map: torch.Tensor, ft_map: torch.Tensor, topk: int) -> torch.Tensor:
    """Re-pick each source cell's match by neighbourhood consensus on the sparse top-k volume.

    The candidate set is the ``topk`` best targets of every source cell and the ``topk`` best sources of every
    target cell (``ops.corr4d_topk`` both ways, Sparse NC-Net's construction); each candidate's score is the
    sum of the ReLU'd correlations of the candidates in its 3x3x3x3 4D neighbourhood (an all-ones
    ``ops.sparse_conv4d``: a hand-set consensus filter, no training). Returns (B, Ns) the flat target index of
    each source cell's best-scoring candidate (lowest index on ties)."""
    B, _, Hs, Ws = fs_map.shape
    Ht, Wt = ft_map.shape[-2:]
    Ns, Nt = Hs * Ws, Ht * Wt
    k1 = min(topk, Nt)
    k2 = min(topk, Ns)
    v_st, i_st = ops.corr4d_topk(fs_map, ft_map, k1, eps=_EPS)
    v_ts, i_ts = ops.corr4d_topk(ft_map, fs_map, k2, eps=_EPS)
    dev = fs_map.device
    b_st = torch.arange(B, device=dev).view(B, 1, 1).expand(B, Ns, k1)
    s_st = torch.arange(Ns, device=dev).view(1, Ns, 1).expand(B, Ns, k1)
    b_ts = torch.arange(B, device=dev).view(B, 1, 1).expand(B, Nt, k2)
    t_ts = torch.arange(Nt, device=dev).view(1, Nt, 1).expand(B, Nt, k2)
    key = torch.cat([((b_st * Ns + s_st) * Nt + i_st.reshape(B, Ns, k1)).reshape(-1),
                     ((b_ts * Ns + i_ts.reshape(B, Nt, k2)) * Nt + t_ts).reshape(-1)])
    val = torch.cat([v_st.reshape(-1), v_ts.reshape(-1)])
    uniq, inv = torch.unique(key, return_inverse=True)
    vals = val.new_zeros(uniq.shape[0]).scatter_(0, inv, val)  # duplicates hold the same value
    b = uniq // (Ns * Nt)
    s = (uniq // Nt) % Ns
    t = uniq % Nt
    coords = torch.stack([b, s // Ws, s % Ws, t // Wt, t % Wt], 1)
    weight = vals.new_ones(1, 1, 3, 3, 3, 3)
    score = ops.sparse_conv4d(vals.relu().unsqueeze(1), coords, weight).squeeze(1)
    row = b * Ns + s
    best = score.new_full((B * Ns,), float("-inf")).scatter_reduce(0, row, score, "amax")
    is_best = score >= best[row]
    pick = torch.full((B * Ns,), Nt, dtype=torch.long, device=dev).scatter_reduce(
        0, row, torch.where(is_best, t, torch.full_like(t, Nt)), "amin")
    return pick.view(B, Ns)


@register_model("dino")
class DinoMatcher(CorrespondenceModel):
    """Zero-shot DINOv2 matching (module docstring: GeoAware-SC's zero-shot DINOv2 path).

    Args:
        backbone: a DINOv2 name (:data:`semcorr.backbones_vit.DINOV2_MODELS`; default ``"dinov2_vitb14"``, the
            published choice) or an ``nn.Module`` returning (B, C, h, w) maps at stride 14.
        weights: ``"auto"`` (default: the official file from the torch hub cache if it is there, else random
            weights, marked UNTRAINED), ``"hub"`` (that file, an error if missing), a path to a file in the
            official (or timm) layout, or ``None`` (random). ``checkpoint`` is an alias (``semcorr match
            --checkpoint``).
        img_size: canvas side in pixels, a multiple of 14 (published: 840 -> 60 x 60 cells).
        layers, facet: which DINOv2 block(s) and facet (default: the last block's tokens, as published).
        readout: ``"window"`` (published), ``"kernel"`` or ``"argmax"`` (module docstring).
        window: half-width of the readout window in cells (published 5 -> 11 x 11).
        beta: soft-argmax inverse temperature (published 1 / 0.02 = 50).
        sigma: Gaussian width in cells for ``readout="kernel"`` (the config's ``-SOFT_EVAL_WINDOW``).
        mutual: our option: NC-Net's soft mutual filter on the volume before the readout (needs the volume).
        consensus: our option: ``"sparse"`` (hand-set sparse neighbourhood consensus picks the window centre).
        topk: candidates per cell and direction for ``consensus="sparse"``.
        dense_max_cells: largest ``Ns * Nt`` for which the full volume is formed at once (default: GeoAware-SC's
            60 x 60 grids); above it ``ops.corr4d`` runs on bands of source rows of at most ``band_bytes`` each,
            read out band by band (same numbers, the volume never exists).
        **backbone_kwargs: passed to :class:`DINOv2Features` (e.g. ``depth=`` for small tests).

    ``forward(src, tgt)`` -> :class:`Matches` on a source grid of ``(round(h' / 14), round(w' / 14))`` cells
    tiling the source image (h', w' its resized size); ``confidence`` = the best cosine similarity;
    ``extras``: ``"canvas_field"`` (B, 60, 60, 2) the matches of every canvas cell in target canvas cells,
    ``"index"`` (B, 60, 60) the flat target canvas cell at the centre of each window, ``"tgt_grid"``.
    """

    def __init__(self, backbone: Union[str, nn.Module] = "dinov2_vitb14", weights="auto", img_size: int = 840,
                 layers: Sequence[int] = (-1,), facet: str = "token", readout: str = "window", window: int = 5,
                 beta: float = 50.0, sigma: float = 5.0, mutual: bool = False, consensus: Optional[str] = None,
                 topk: int = 10, dense_max_cells: int = 3600 * 3600, band_bytes: int = 32 << 20, checkpoint=None,
                 **backbone_kwargs):
        super().__init__()
        if int(img_size) < _PATCH or int(img_size) % _PATCH:
            raise ValueError("img_size must be a positive multiple of %d, got %r" % (_PATCH, img_size))
        if readout not in READOUTS:
            raise ValueError("readout must be one of %s, got %r" % (", ".join(READOUTS), readout))
        if consensus not in CONSENSUS:
            raise ValueError("consensus must be None or 'sparse', got %r" % (consensus,))
        if int(window) < 0:
            raise ValueError("window must be >= 0, got %r" % (window,))
        if consensus is not None and mutual:
            raise ValueError("mutual and consensus are alternatives; pick one")
        if int(topk) < 1:
            raise ValueError("topk must be >= 1, got %r" % (topk,))
        if checkpoint is not None:
            if weights not in ("auto", None):
                raise ValueError("give weights or checkpoint, not both")
            weights = checkpoint
        self.img_size, self.readout, self.window = int(img_size), readout, int(window)
        self.beta, self.sigma, self.mutual, self.consensus = float(beta), float(sigma), bool(mutual), consensus
        self.topk, self.dense_max_cells, self.band_bytes = int(topk), int(dense_max_cells), int(band_bytes)
        if isinstance(backbone, str) and backbone not in DINOV2_MODELS:
            raise ValueError("backbone must be a DINOv2 name (%s) or a module, got %r"
                             % (", ".join(DINOV2_MODELS), backbone))
        net = make_backbone(backbone, "DinoMatcher", weights, layers=layers, facet=facet, **backbone_kwargs)
        self.set_backbone(net)
        self.eval()

    def features(self, img: torch.Tensor) -> torch.Tensor:
        return fuse_features(self.backbone(img))  # the layers of one ViT share its patch grid: no resize

    def _band_rows(self, Hs: int, Ws: int, Nt: int, itemsize: int) -> int:
        """Source rows per correlation band: all of them up to ``dense_max_cells`` volume cells, else as many
        as fit in ``band_bytes``."""
        if Hs * Ws * Nt <= self.dense_max_cells:
            return Hs
        return max(1, min(Hs, self.band_bytes // max(1, Ws * Nt * itemsize)))

    def canvas_matches(self, fs: torch.Tensor, ft: torch.Tensor):
        """Canvas-grid readout: fs (B, C, Hs, Ws), ft (B, C, Ht, Wt) -> (field (B, Hs, Ws, 2) in target cells
        (x, y), confidence (B, Hs, Ws), centre (B, Hs, Ws) flat target index of the window centre).

        The correlation is formed one band of source rows at a time (``ops.corr4d`` of the band against the
        whole target: the same numbers as the full volume), and each band is read out at once (argmax, window
        values), so the peak is one band, never the volume, on large grids."""
        B, C, Hs, Ws = fs.shape
        Ht, Wt = ft.shape[-2:]
        Ns, Nt = Hs * Ws, Ht * Wt
        rows = self._band_rows(Hs, Ws, Nt, fs.element_size())
        if (self.mutual or self.readout == "kernel") and rows < Hs:
            raise ValueError("readout='kernel' and mutual=True need the full volume: %d x %d cells exceed "
                             "dense_max_cells=%d" % (Ns, Nt, self.dense_max_cells))
        fixed = sparse_consensus_argmax(fs, ft, self.topk) if self.consensus == "sparse" else None
        conf = fs.new_empty(B, Ns)
        centre = torch.empty(B, Ns, dtype=torch.long, device=fs.device)
        values = flat = pos = valid = None
        if self.readout == "window":
            off = window_offsets(self.window, fs.device)
            values = fs.new_empty(B, Ns, off.shape[0])
        for r0 in range(0, Hs, rows):
            sl = slice(r0 * Ws, min(Hs, r0 + rows) * Ws)
            corr = ops.corr4d(fs[:, :, r0:r0 + rows], ft, normalize=True, eps=_EPS)
            if self.mutual:
                corr = ops.mutual_matching(corr.relu())
            band = corr.reshape(B, -1, Nt)
            conf[:, sl], centre[:, sl] = band.max(-1)
            if fixed is not None:
                centre[:, sl] = fixed[:, sl]
            if self.readout == "window":
                _, _, flat = _window_positions(centre[:, sl], (Ht, Wt), self.window)
                values[:, sl] = torch.gather(band, 2, flat)
            elif self.readout == "kernel":  # a single band: the whole volume
                g = ops.kernel_soft_argmax(corr, beta=self.beta, sigma=self.sigma, normalize=False)  # [-1, 1]
                field = torch.stack([(g[..., 0] + 1) * (Wt - 1) / 2, (g[..., 1] + 1) * (Ht - 1) / 2], -1)
            del corr, band
        if self.readout == "argmax":
            field = torch.stack([centre % Wt, centre // Wt], -1).to(fs.dtype)
        elif self.readout == "window":
            pos, valid, _ = _window_positions(centre, (Ht, Wt), self.window)
            field = window_soft_argmax(values, pos, valid, (Ht, Wt), self.beta).to(fs.dtype)
        return field.reshape(B, Hs, Ws, 2), conf.reshape(B, Hs, Ws), centre.reshape(B, Hs, Ws)

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        S = self.img_size
        src_c, s_scale, s_pad = letterbox(src_img, S)
        tgt_c, t_scale, t_pad = letterbox(tgt_img, S)
        fs, ft = self.features(src_c), self.features(tgt_c)
        cfield, conf, centre = self.canvas_matches(fs, ft)
        B, Hc, Wc = conf.shape
        Ht, Wt = ft.shape[-2:]
        stride_y, stride_x = S / Hc, S / Wc
        # target canvas cells -> target canvas pixels (cell centres) -> target image pixels -> normalised
        tx = ((cfield[..., 0] + 0.5) * stride_x - 0.5 - t_pad[0] + 0.5) / t_scale[0] - 0.5
        ty = ((cfield[..., 1] + 0.5) * stride_y - 0.5 - t_pad[1] + 0.5) / t_scale[1] - 0.5
        tgt_norm = flow.normalize_coords(torch.stack([tx, ty], -1), tgt_img.shape[-2:])
        # the source grid tiles the source image with the canvas' cell density
        H, W = src_img.shape[-2:]
        Hs = max(1, int(round(H * s_scale[1] / stride_y)))
        Ws = max(1, int(round(W * s_scale[0] / stride_x)))
        centres = flow.unnormalize_coords(flow.grid_coords(Hs, Ws, (H, W), dtype=torch.float64,
                                                           device=src_img.device), (H, W))  # (Hs, Ws, 2) pixels
        cx = ((centres[..., 0] + 0.5) * s_scale[0] - 0.5 + s_pad[0] + 0.5) / stride_x - 0.5  # canvas cells
        cy = ((centres[..., 1] + 0.5) * s_scale[1] - 0.5 + s_pad[1] + 0.5) / stride_y - 0.5
        grid = torch.stack([cx / max(Wc - 1, 1) * 2 - 1, cy / max(Hc - 1, 1) * 2 - 1], -1).to(cfield.dtype)
        grid = grid.unsqueeze(0).expand(B, -1, -1, -1)

        def sample(t):  # (B, Hc, Wc, D) -> (B, Hs, Ws, D), bilinear between canvas cell centres
            return F.grid_sample(t.permute(0, 3, 1, 2), grid, mode="bilinear", padding_mode="border",
                                 align_corners=True).permute(0, 2, 3, 1)

        field = sample(tgt_norm)
        confidence = sample(conf.unsqueeze(-1))[..., 0]
        return Matches(field=field, confidence=confidence, src_size=(H, W), tgt_size=tuple(tgt_img.shape[-2:]),
                       extras={"canvas_field": cfield, "index": centre, "tgt_grid": (Ht, Wt)})
