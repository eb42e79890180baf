"""SCNet (Han, Rezende, Ham, Wong, Cho, Schmid, Ponce, ICCV 2017): learning to match region proposals with
appearance and geometry.

* **Regions**: selective search (the paper's proposals) needs OpenCV's contrib module, which is not installed;
  we use a documented, download-free alternative: a multi-scale, multi-aspect sliding-window box grid
  (:func:`sliding_window_boxes`), or the bounding boxes of scikit-image Felzenszwalb superpixels at several
  scales (:func:`felzenszwalb_boxes`, ``proposals="felzenszwalb"``).
* **Region features**: ``torchvision.ops.roi_align`` on a backbone map, then two fully connected layers and L2
  normalisation: ``phi(r)``.
* **Similarity heads** (the paper's three models), for a match m = (r, r'):
    - SCNet-A:   ``z = f(m) = relu(<phi(r), phi(r')>)``
    - SCNet-AG:  ``z = f(m) * sum_m' K(m, m') f(m')`` with K = 1 when m and m' fall in the same offset/scale bin
      (probabilistic Hough matching; ``ops.hough_vote``)
    - SCNet-AG+: as AG but the votes use a second, separately learned feature: ``z = f(m) * sum K f_g(m')``
  For the loss, the vote term is divided by its maximum over bins (detached), which keeps z in [0, 1].
* **Geometry**: offset bins of the centre displacement (``cell`` pixels, nearest grid point) and scale bins of
  log2 of the box-size ratio; matches outside the grid do not vote (-1).
* **Loss**: binary cross-entropy on labelled positive (1) / negative (0) matches (-1 = ignored);
  :func:`region_labels` labels pairs by the IoU of the warped source box with the target box.
* **Dense flow**: every source region votes for its best target region; a pixel is carried by each region
  containing it through that region pair's box-to-box map (scale + translation), averaged with weights z.
"""
import math
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops

from ..backbones import build_backbone, imagenet_checkpoint_path
from . import register_model
from .base import CorrespondenceModel, Matches

__all__ = ["SCNet", "sliding_window_boxes", "felzenszwalb_boxes", "phm_bins", "region_labels", "scnet_loss"]


def sliding_window_boxes(H: int, W: int, scales=(0.2, 0.3, 0.45, 0.65), aspects=(0.5, 1.0, 2.0),
                         overlap: float = 0.5, device=None) -> torch.Tensor:
    """Multi-scale sliding-window proposals: for each scale s (box area = (s * min(H, W))^2) and aspect ratio a
    (w / h), boxes on a regular grid with the given overlap, clipped to the image. (R, 4) float (x0, y0, x1, y1)."""
    out = []
    base = min(H, W)
    for s in scales:
        for a in aspects:
            bw, bh = s * base * math.sqrt(a), s * base / math.sqrt(a)
            if bw > W or bh > H:
                continue
            sx, sy = max(1.0, bw * (1 - overlap)), max(1.0, bh * (1 - overlap))
            nx, ny = int(math.floor((W - bw) / sx)) + 1, int(math.floor((H - bh) / sy)) + 1
            ox, oy = (W - bw - (nx - 1) * sx) / 2, (H - bh - (ny - 1) * sy) / 2
            for j in range(ny):
                for i in range(nx):
                    x0, y0 = ox + i * sx, oy + j * sy
                    out.append((x0, y0, x0 + bw, y0 + bh))
    return torch.tensor(out, dtype=torch.float32, device=device)


def felzenszwalb_boxes(img: np.ndarray, scales=(100, 300, 800), min_size: int = 50, max_boxes: int = 400):
    """Bounding boxes of Felzenszwalb superpixels (scikit-image) at several scales, (R, 4) float, deduplicated."""
    from skimage.segmentation import felzenszwalb

    boxes = set()
    for sc in scales:
        seg = felzenszwalb(img, scale=sc, sigma=0.8, min_size=min_size)
        for lab in np.unique(seg):
            ys, xs = np.nonzero(seg == lab)
            boxes.add((float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
    boxes = sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))[:max_boxes]
    return torch.tensor(boxes, dtype=torch.float32)


def _centres_scales(boxes):
    c = (boxes[..., :2] + boxes[..., 2:]) / 2
    s = ((boxes[..., 2] - boxes[..., 0]).clamp(min=1e-3) * (boxes[..., 3] - boxes[..., 1]).clamp(min=1e-3)).sqrt()
    return c, s


def phm_bins(src_boxes, tgt_boxes, cell: float, n_offset: int, n_scale: int = 5, scale_step: float = 0.5):
    """PHM bins of every region pair: (Ns, Nt) int64 flat ids over (n_scale, n_offset, n_offset), -1 outside.

    Offset t - s of the box centres is assigned to the nearest point of a grid of spacing ``cell`` centred on
    0; log2 of the size ratio to the nearest multiple of ``scale_step`` (``n_scale`` values centred on 0)."""
    cs, ss = _centres_scales(src_boxes)
    ct, st = _centres_scales(tgt_boxes)
    d = ct[None, :, :] - cs[:, None, :]
    half = n_offset // 2
    bx = torch.round(d[..., 0] / cell).long() + half
    by = torch.round(d[..., 1] / cell).long() + half
    bs = torch.round(torch.log2(st[None, :] / ss[:, None]) / scale_step).long() + n_scale // 2
    ok = (bx >= 0) & (bx < n_offset) & (by >= 0) & (by < n_offset) & (bs >= 0) & (bs < n_scale)
    flat = (bs * n_offset + by) * n_offset + bx
    return torch.where(ok, flat, torch.full_like(flat, -1))


def _iou(a, b):
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter).clamp(min=1e-6)


def region_labels(src_boxes, tgt_boxes, warp_points: Callable, pos: float = 0.5, neg: float = 0.3):
    """Match labels from a known source->target point map: the source box is warped (its corners and edge
    midpoints, then their bounding box) and compared with each target box by IoU: >= pos -> 1, < neg -> 0,
    else -1 (ignored)."""
    x0, y0, x1, y1 = src_boxes.unbind(1)
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    pts = torch.stack([torch.stack(p, 1) for p in [(x0, y0), (x1, y0), (x0, y1), (x1, y1), (xm, y0), (xm, y1),
                                                   (x0, ym), (x1, ym)]], 1)  # (R, 8, 2)
    w = warp_points(pts.reshape(-1, 2)).reshape(pts.shape)
    warped = torch.cat([w.min(1).values, w.max(1).values], 1)
    iou = _iou(warped, tgt_boxes)
    lab = torch.full(iou.shape, -1, dtype=torch.long)
    lab[iou >= pos] = 1
    lab[iou < neg] = 0
    return lab


def scnet_loss(z, labels, eps: float = 1e-6):
    """Binary cross-entropy of the match scores z in [0, 1] against labels (1 / 0; -1 ignored), averaged over
    the labelled matches, positives and negatives weighted equally."""
    z = z.clamp(eps, 1 - eps)
    pos, neg = labels == 1, labels == 0
    lp = -torch.log(z[pos]).mean() if pos.any() else z.sum() * 0
    ln = -torch.log(1 - z[neg]).mean() if neg.any() else z.sum() * 0
    return lp + ln


class _RegionHead(nn.Module):
    """roi_align -> flatten -> FC -> ReLU -> FC -> L2 normalise."""

    def __init__(self, channels: int, pool: int = 4, hidden: int = 512, out: int = 256):
        super().__init__()
        self.pool = pool
        self.fc1 = nn.Linear(channels * pool * pool, hidden)
        self.fc2 = nn.Linear(hidden, out)

    def forward(self, pooled):
        x = F.relu(self.fc1(pooled.flatten(1)))
        return F.normalize(self.fc2(x), dim=1)


@register_model("scnet")
class SCNet(CorrespondenceModel):
    """SCNet-A / SCNet-AG / SCNet-AG+ on region proposals.

    Args:
        variant: ``"AG+"`` (default), ``"AG"`` or ``"A"``.
        backbone: ``"auto"`` (ResNet-101 layer3 when ImageNet weights are cached, else DAISY), ``"daisy"``,
            ``"resnet50"``, ``"resnet101"`` (layer3 features; the paper used VGG-16 conv4).
        proposals: ``"sliding"`` (default) or ``"felzenszwalb"``.
        cell: offset bin size as a fraction of max(H, W) (default 0.1); n_scale: scale bins (5, steps of 2^0.5).
        smooth_kernel: optional kernel over the (scale, y, x) bin grid passed to ``ops.hough_vote``.
        field_stride: pixels between source-grid cells of the dense field (default 8).
    Weights of the FC heads are random until trained (:meth:`loss` + any optimiser); the pipeline runs anyway.
    """

    def __init__(self, variant: str = "AG+", backbone: str = "auto", proposals: str = "sliding", cell: float = 0.1,
                 n_scale: int = 5, smooth_kernel: Optional[torch.Tensor] = None, field_stride: int = 8,
                 pool: int = 4, weights="auto"):
        super().__init__()
        if variant not in ("A", "AG", "AG+"):
            raise ValueError("variant must be 'A', 'AG' or 'AG+', got %r" % (variant,))
        import os

        if backbone == "auto":
            backbone = "resnet101" if os.path.isfile(imagenet_checkpoint_path(101)) else "daisy"
        kw = {}
        if backbone.startswith("resnet"):
            kw = dict(layers=("layer3",), weights=("imagenet" if weights == "auto" else weights))
            self.stride = 16
        elif backbone in ("daisy", "hog"):
            kw = dict(stride=8)
            self.stride = 8
        self.backbone_name = backbone
        self.backbone = build_backbone(backbone, **kw)
        self.variant, self.proposals, self.cell, self.n_scale = variant, proposals, cell, n_scale
        self.field_stride = field_stride
        self.smooth_kernel = smooth_kernel
        with torch.no_grad():
            C = self._features(torch.zeros(1, 3, 64, 64)).shape[1]
        self.head = _RegionHead(C, pool)
        self.head_g = _RegionHead(C, pool) if variant == "AG+" else None
        self.eval()

    def _features(self, img):
        f = self.backbone(img)
        return f[0] if isinstance(f, (list, tuple)) else f

    def region_boxes(self, img: torch.Tensor) -> torch.Tensor:
        H, W = img.shape[-2:]
        if self.proposals == "felzenszwalb":
            return felzenszwalb_boxes(img[0].permute(1, 2, 0).detach().cpu().numpy()).to(img.device)
        return sliding_window_boxes(H, W, device=img.device)

    def region_features(self, img, boxes):
        from torchvision.ops import roi_align

        fmap = self._features(img)
        scale = fmap.shape[-1] / img.shape[-1]
        rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], 1)
        pooled = roi_align(fmap, rois, output_size=self.head.pool, spatial_scale=scale, sampling_ratio=2,
                           aligned=True)
        return self.head(pooled), (self.head_g(pooled) if self.head_g is not None else None)

    def scores(self, src_img, tgt_img, src_boxes, tgt_boxes):
        """z (1, Ns, Nt) in [0, 1] for one pair (batch of 1) and the PHM bins."""
        ps, gs = self.region_features(src_img, src_boxes)
        pt, gt = self.region_features(tgt_img, tgt_boxes)
        f = F.relu(ps @ pt.t())[None]  # (1, Ns, Nt)
        if self.variant == "A":
            return f, None
        H, W = src_img.shape[-2:]
        cell = self.cell * max(H, W)
        n_off = 2 * int(math.ceil(max(H, W) / cell)) + 1
        bins = phm_bins(src_boxes, tgt_boxes, cell, n_off, self.n_scale)[None]
        nbins = (self.n_scale, n_off, n_off)
        if self.variant == "AG":
            z = ops.hough_vote(f, bins, nbins, smooth_kernel=self.smooth_kernel)
            votes = z.detach() / f.detach().clamp(min=1e-12)
        else:  # AG+: votes of the geometry feature, multiplied by the appearance term: z = f * V_g[bins]
            # (hough_vote returns app * V(app)[bins], i.e. the same tensor on both sides; here the two factors
            # differ, so V_g is gathered with plain index_add / indexing, differentiable in f_g)
            fg = F.relu(gs @ gt.t())
            flat, valid = bins[0], bins[0] >= 0
            V = fg.new_zeros(math.prod(nbins)).index_add(0, flat[valid], fg[valid])
            if self.smooth_kernel is not None:
                k = self.smooth_kernel.to(V)
                V = F.conv3d(V.view(1, 1, *nbins), k.view(1, 1, *k.shape),
                             padding=tuple(d // 2 for d in k.shape)).view(-1)
            votes_g = torch.where(valid, V[flat.clamp(min=0)], torch.zeros_like(fg))[None]
            z = f * votes_g
            votes = votes_g.detach()
        vmax = votes.max().clamp(min=1e-12)
        return z / vmax, bins

    def loss(self, src_img, tgt_img, labels, src_boxes=None, tgt_boxes=None):
        """Training loss of one pair (B = 1) given match labels (Ns, Nt) for the given (or default) boxes."""
        src_boxes = self.region_boxes(src_img) if src_boxes is None else src_boxes
        tgt_boxes = self.region_boxes(tgt_img) if tgt_boxes is None else tgt_boxes
        z, _ = self.scores(src_img, tgt_img, src_boxes, tgt_boxes)
        return scnet_loss(z[0], labels.to(z.device))

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        src_hw, tgt_hw = tuple(src_img.shape[-2:]), tuple(tgt_img.shape[-2:])
        fields, confs = [], []
        hs, ws = max(1, round(src_hw[0] / self.field_stride)), max(1, round(src_hw[1] / self.field_stride))
        pts = flow.unnormalize_coords(flow.grid_coords(hs, ws, src_hw, device=src_img.device), src_hw).reshape(-1, 2)
        for b in range(src_img.shape[0]):
            s, t = src_img[b:b + 1], tgt_img[b:b + 1]
            sb, tb = self.region_boxes(s), self.region_boxes(t)
            z, _ = self.scores(s, t, sb, tb)
            zb, best = z[0].max(dim=1)  # best target region of each source region
            cs, ss_ = sb[:, :2], (sb[:, 2:] - sb[:, :2]).clamp(min=1e-3)
            ct, st = tb[best, :2], (tb[best, 2:] - tb[best, :2]).clamp(min=1e-3)
            # each source region containing the pixel maps it by its box-to-box map; weights z
            inside = ((pts[:, None, :] >= sb[None, :, :2]) & (pts[:, None, :] <= sb[None, :, 2:])).all(-1)
            w = inside.float() * zb[None, :].clamp(min=1e-6)
            mapped = ct[None] + (pts[:, None, :] - cs[None]) * (st / ss_)[None]  # (P, Ns, 2)
            wsum = w.sum(1, keepdim=True)
            p = (w[..., None] * mapped).sum(1) / wsum.clamp(min=1e-12)
            near = torch.cdist(pts, (sb[:, :2] + sb[:, 2:]) / 2).argmin(1)
            fb = mapped[torch.arange(len(pts)), near]
            p = torch.where(wsum > 0, p, fb)
            fields.append(flow.normalize_coords(p, tgt_hw).reshape(hs, ws, 2))
            confs.append((w.sum(1) / inside.float().sum(1).clamp(min=1)).reshape(hs, ws))
        return Matches(field=torch.stack(fields), confidence=torch.stack(confs), src_size=src_hw, tgt_size=tgt_hw,
                       extras={"variant": self.variant})
