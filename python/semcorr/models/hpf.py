"""Hyperpixel Flow (HPF; Min, Lee, Ponce, Cho, ICCV 2019).

Pipeline, as in the paper and its public code:

1. **Hyperpixels**: features of a chosen set of ResNet layers ("hyperpixel ids": 0 = after the stem max-pool,
   then one id per bottleneck block in order, taken *before* the block's final ReLU), each bilinearly
   upsampled (align_corners=True) to the resolution of the first selected layer and concatenated.
2. **Receptive-field boxes** of the first selected layer (centre ``(j * jump, i * jump)``, half-size
   ``rf // 2``), pruned at the image margin (a box is kept when it lies within ``jump`` pixels of the image).
3. **Appearance** ``relu(cos)^3`` (``ops.corr4d(relu=True, power=3, eps=0)``), then **regularised Hough
   matching** (``ops.hough_match``: HPF's ``rhm`` with 8192 cells and the 7x7 Gaussian).
4. **Keypoint transfer** HPF's way: for a keypoint, every source box containing it proposes
   ``top-left(best target box) + (keypoint - top-left(source box))``; the prediction is their mean.

The returned :class:`HPFMatches` transfers keypoints that way; its ``field`` (B, Hs, Ws, 2) over the first
layer's grid is the same transfer applied to the grid's cell centres (so flow-based evaluation works too).

Fidelity: with the same ResNet weights, the RHM confidences and the transferred keypoints equal the released
code (juhongm999/hpf ``hpflow.py``, ``rhm.py``, ``geometry.py``) to 1e-5 (``tests/test_hpf_published.py``).
Deviations: keypoints covered by no source box take the field's value (published: NaN); the published
evaluation's resize (images larger than 300 px shrunk) is done by ``semcorr eval``'s HPF protocols, not here;
the published jump / receptive-field table stops at id 9 as a first id, ours continues it. See docs/models/hpf.md.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from semcorr_ext import flow, ops

from ..backbone_factory import make_backbone
from ..backbones import imagenet_cached
from . import register_model
from .base import CorrespondenceModel, Matches

__all__ = ["HyperpixelFlow", "HPFMatches", "HYPERPIXEL_PRESETS", "hyperpixel_geometry", "receptive_boxes",
           "prune_margin", "box_centers", "transfer_keypoints_hpf", "parse_hyperpixel_ids"]

#: Published layer ids (HPF README): (backbone, benchmark) -> hyperpixel ids.
HYPERPIXEL_PRESETS = {
    ("resnet50", "pfpascal"): (2, 7, 11, 12, 13),
    ("resnet101", "pfpascal"): (2, 17, 21, 22, 25, 26, 28),
    ("resnet101", "pfwillow"): (2, 17, 21, 22, 25, 26, 28),
    ("resnet50", "caltech"): (2, 7, 11, 12, 13),
    ("resnet50", "spair"): (0, 9, 10, 11, 12, 13),
    ("resnet101", "spair"): (0, 8, 20, 21, 26, 28, 29, 30),
}

_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def parse_hyperpixel_ids(ids: Union[str, Sequence[int]]) -> Tuple[int, ...]:
    """'(2,17,21)' or [2, 17, 21] -> (2, 17, 21) (sorted, unique)."""
    if isinstance(ids, str):
        import re

        ids = [int(v) for v in re.findall(r"\d+", ids)]
    out = tuple(sorted(set(int(i) for i in ids)))
    if not out:
        raise ValueError("at least one hyperpixel id is needed")
    return out


def hyperpixel_geometry(depth: int):
    """Per hyperpixel id of a ResNet-``depth``: (stage name or 'stem', block index, jump, receptive field).

    Id 0 is the stem (after max-pool); ids 1.. are the bottleneck blocks in order. Jumps are 4, 4, 8, 16, 32 for
    stem/layer1..4; the receptive field grows by 2 * (input jump) per block (one 3x3 convolution each), which
    reproduces HPF's table (11, 19, 27, 35, 43, 59, ...)."""
    geo = [("stem", None, 4, 11)]
    rf, jump = 11, 4
    for s, n in enumerate(_BLOCKS[depth]):
        for i in range(n):
            rf += 2 * jump  # the 3x3 conv sees the input jump
            if i == 0 and s > 0:
                jump *= 2  # the stride-2 3x3 conv of the first block
            geo.append(("layer%d" % (s + 1), i, jump, rf))
    return geo


def receptive_boxes(rfsz: int, jsz: float, h: int, w: int, device=None) -> torch.Tensor:
    """HPF receptive fields: (h*w, 4) float boxes (x0, y0, x1, y1), row-major over the grid."""
    ii, jj = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    x, y = jj.reshape(-1).float() * jsz, ii.reshape(-1).float() * jsz
    half = float(rfsz // 2)
    return torch.stack((x - half, y - half, x + half, y + half), dim=1)


def prune_margin(boxes: torch.Tensor, image_hw, threshold: float) -> torch.Tensor:
    """Indices of the boxes within ``threshold`` pixels of the image (HPF prune_margin)."""
    H, W = image_hw
    keep = (boxes[:, 0] >= -threshold) & (boxes[:, 1] >= -threshold) & \
           (boxes[:, 2] < W + threshold) & (boxes[:, 3] < H + threshold)
    return torch.nonzero(keep).flatten()


def box_centers(boxes: torch.Tensor) -> torch.Tensor:
    """HPF center: top-left + (extent // 2), (N, 2) as (x, y)."""
    return boxes[:, :2] + torch.div(boxes[:, 2:] - boxes[:, :2], 2, rounding_mode="floor")


def transfer_keypoints_hpf(kps: torch.Tensor, src_box: torch.Tensor, tgt_box: torch.Tensor,
                           best_tgt: torch.Tensor, fallback: Optional[torch.Tensor] = None) -> torch.Tensor:
    """HPF keypoint transfer for one pair. kps (N, 2) source pixels; best_tgt (Ns,) index of the best target
    box of each source box. Each source box containing the keypoint (borders inclusive) proposes
    ``tgt_box[best][:2] + (kp - src_box[:2])``; the prediction is the mean. Keypoints covered by no box take
    ``fallback`` (N, 2) if given, else stay NaN as in HPF."""
    kx, ky = kps[:, 0:1], kps[:, 1:2]
    inside = (kx >= src_box[None, :, 0]) & (ky >= src_box[None, :, 1]) & \
             (kx <= src_box[None, :, 2]) & (ky <= src_box[None, :, 3])  # (N, Ns)
    w = inside.to(kps.dtype)
    n = w.sum(1, keepdim=True)
    # sum over neighbours of (tgt top-left - src top-left), then + n * kp
    shift = tgt_box[best_tgt, :2].to(kps.dtype) - src_box[:, :2].to(kps.dtype)  # (Ns, 2)
    pred = (w @ shift) / n + kps
    if fallback is not None:
        pred = torch.where(n > 0, pred, fallback)
    return pred


@dataclass
class HPFMatches(Matches):
    """:class:`Matches` whose :meth:`transfer_keypoints` is HPF's (box neighbourhood voting, see
    :func:`transfer_keypoints_hpf`). ``extras["hpf"]`` holds per pair (src_box, tgt_box, best_tgt, conf)."""

    def transfer_keypoints(self, src_kps: torch.Tensor) -> torch.Tensor:
        squeeze = src_kps.dim() == 2
        kps = src_kps.unsqueeze(0) if squeeze else src_kps
        if kps.shape[0] == 1 and self.field.shape[0] > 1:
            kps = kps.expand(self.field.shape[0], -1, -1)
        kps = kps.to(self.field.device, self.field.dtype)
        fallback = flow.transfer_keypoints(self.field, kps, self.src_size, self.tgt_size)
        src_box, tgt_box, best = self.extras["hpf"][:3]
        outs = []
        for b in range(kps.shape[0]):
            p = transfer_keypoints_hpf(kps[b], src_box, tgt_box, best[b], fallback[b])
            valid = (kps[b] >= 0).all(-1, keepdim=True)
            outs.append(torch.where(valid, p, torch.full_like(p, -1.0)))
        out = torch.stack(outs)
        return out[0] if squeeze else out

    def to(self, device) -> "HPFMatches":
        extras = dict(self.extras)
        extras["hpf"] = tuple(t.to(device) for t in self.extras["hpf"])
        return HPFMatches(self.field.to(device), self.confidence.to(device), self.src_size, self.tgt_size, extras)


@register_model("hpf")
class HyperpixelFlow(CorrespondenceModel):
    """Hyperpixel Flow.

    Args:
        backbone: ``"resnet101"`` (default, the published one), ``"resnet50"``, or our additions ``"daisy"``
            (hand-crafted DAISY descriptors as a single "layer": no weights, offline, seconds on a CPU; boxes are
            the descriptor windows) and ``"auto"`` (``"resnet101"`` when its ImageNet weights are in the torch hub
            cache, otherwise ``"daisy"`` with a warning). Note the published ResNet-101 preset builds
            ~6,400-channel hyperpixels: seconds to tens of seconds per pair on a 2-core CPU.
        hyperpixel_ids: layer ids, or None for the preset of ``benchmark`` (HPF README).
        benchmark: ``"pfpascal"`` (default), ``"pfwillow"``, ``"spair"`` or ``"caltech"`` (chooses the preset).
        weights: ResNet weights: ``"auto"`` (default: ImageNet from the torch hub cache if present, otherwise
            random weights with a warning — the pipeline runs, the matches are poor), ``"imagenet"``, ``None`` or a
            state-dict path.
        ncells: Hough cells (8192). side: if given, resize images so that max(H, W) == side before matching
            (ours; the published evaluation shrinks images larger than 300 px, which ``semcorr eval``'s HPF
            protocols do before calling the model); keypoints are handled in the given image's pixels either way.

    Boxes on the image margin are pruned (``prune_margin`` with the first layer's jump) except for
    ``benchmark="caltech"``, where the published ``extract_hyperpixel`` keeps them all.
    """

    def __init__(self, backbone: str = "resnet101", hyperpixel_ids=None, benchmark: str = "pfpascal",
                 weights="auto", ncells: int = 8192, side: Optional[int] = None, daisy_stride: int = 8):
        super().__init__()
        if backbone == "auto":
            import warnings

            backbone = "resnet101" if imagenet_cached(101) else "daisy"
            if backbone == "daisy":
                warnings.warn("HPF: ResNet-101 ImageNet weights are not in the torch hub cache; using DAISY "
                              "hyperpixels (backbone='daisy'). Pass backbone='resnet101' to use the published "
                              "layers (weights=None for random weights).")
        self.backbone_name = backbone
        self.benchmark = benchmark
        self.ncells = int(ncells)
        self.side = side
        if backbone == "daisy":
            self.ids = (0,)
            self.extractor = make_backbone("daisy", "HPF", stride=daisy_stride).module
            self.geometry = None
        elif backbone in ("resnet50", "resnet101"):
            depth = int(backbone[len("resnet"):])
            if hyperpixel_ids is None:
                key = (backbone, benchmark)
                if key not in HYPERPIXEL_PRESETS:
                    raise ValueError("no published hyperpixel ids for %s on %s; pass hyperpixel_ids=" % key)
                hyperpixel_ids = HYPERPIXEL_PRESETS[key]
            self.ids = parse_hyperpixel_ids(hyperpixel_ids)
            self.geometry = hyperpixel_geometry(depth)
            if max(self.ids) >= len(self.geometry):
                raise ValueError("ResNet-%d has hyperpixel ids 0..%d, got %s" % (depth, len(self.geometry) - 1,
                                                                                 self.ids))
            # only the deepest layer is asked for: layer_features reads every block up to it
            net = make_backbone(backbone, "HPF", weights, default_layers=(self.geometry[max(self.ids)][0],))
            self.extractor = net.module
            if net.random:
                self.mark_untrained("backbone")  # HPF has no weights of its own: only the ImageNet ResNet
        else:
            raise ValueError("HPF backbone must be resnet50, resnet101 or daisy, got %r" % (backbone,))
        self.eval()

    # ---- hyperpixels ------------------------------------------------------------------------------------
    def layer_features(self, img: torch.Tensor, ids: Optional[Sequence[int]] = None):
        """{id: (B, C, h, w)} for the requested hyperpixel ids (block outputs before their final ReLU)."""
        ids = self.ids if ids is None else tuple(ids)
        ex = self.extractor
        x = (img - ex.mean) / ex.std
        x = ex.maxpool(ex.stem_conv(x))
        out = {}
        if 0 in ids:
            out[0] = x
        hid, last = 0, max(ids)
        for name, stage in ex.stages.items():
            for block in stage:
                hid += 1
                if hid > last:
                    return out
                identity = x if block.downsample is None else block.downsample(x)
                y = block.relu(block.bn1(block.conv1(x)))
                y = block.relu(block.bn2(block.conv2(y)))
                y = block.bn3(block.conv3(y)) + identity
                if hid in ids:
                    out[hid] = y
                x = F.relu(y)  # not the block's in-place ReLU: y is kept (pre-ReLU, as HPF)
        return out

    def hyperimage(self, img: torch.Tensor, ids: Optional[Sequence[int]] = None, cache=None):
        """(B, C, h, w) hyperimage, and (rf, jump) of the first id. ``cache`` = a precomputed layer dict."""
        ids = self.ids if ids is None else tuple(sorted(ids))
        if self.backbone_name == "daisy":
            f = self.extractor(img)
            return f, (2 * self.extractor.radius + 1, None)
        feats = cache if cache is not None else self.layer_features(img, ids)
        first = feats[ids[0]]
        maps = [first] + [F.interpolate(feats[i], size=first.shape[-2:], mode="bilinear", align_corners=True)
                          for i in ids[1:]]
        _, _, jump, rf = self.geometry[ids[0]]
        return torch.cat(maps, 1), (rf, jump)

    def boxes(self, h, w, image_hw, rf_jump, device):
        rf, jump = rf_jump
        if jump is None:  # DAISY: windows centred on the grid's cell centres
            H, W = image_hw
            ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * H / h - 0.5
            xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * W / w - 0.5
            yy, xx = torch.meshgrid(ys, xs, indexing="ij")
            half = float(rf // 2)
            x, y = xx.reshape(-1), yy.reshape(-1)
            boxes = torch.stack((x - half, y - half, x + half, y + half), 1)
            return boxes, torch.arange(h * w, device=device)
        boxes = receptive_boxes(rf, float(jump), h, w, device)
        if self.benchmark == "caltech":  # the published extract_hyperpixel skips the pruning on Caltech-101
            return boxes, torch.arange(len(boxes), device=device)
        keep = prune_margin(boxes, image_hw, float(jump))
        if len(keep) == 0:  # image smaller than the receptive field: nothing survives pruning, keep all
            keep = torch.arange(len(boxes), device=device)
        return boxes[keep], keep

    # ---- matching -----------------------------------------------------------------------------------------
    def match_hyperpixels(self, fs, ft, src_hw, tgt_hw, rf_jump):
        """Appearance + RHM on two hyperimages: returns (conf (B, Ns, Nt), src_box, tgt_box, src_keep)."""
        B, C, hs, ws = fs.shape
        ht, wt = ft.shape[-2:]
        src_box, src_keep = self.boxes(hs, ws, src_hw, rf_jump, fs.device)
        tgt_box, tgt_keep = self.boxes(ht, wt, tgt_hw, rf_jump, ft.device)
        s = fs.reshape(B, C, hs * ws)[:, :, src_keep]
        t = ft.reshape(B, C, ht * wt)[:, :, tgt_keep]
        app = ops.corr4d(s.unsqueeze(-1).float(), t.unsqueeze(-1).float(), relu=True, power=3.0, eps=0.0)
        app = app.reshape(B, s.shape[-1], t.shape[-1])
        sc = box_centers(src_box).unsqueeze(0).expand(B, -1, -1).contiguous()
        tc = box_centers(tgt_box).unsqueeze(0).expand(B, -1, -1).contiguous()
        conf = ops.hough_match(app, sc, tc, (src_hw[1], src_hw[0]), (tgt_hw[1], tgt_hw[0]), ncells=self.ncells)
        return conf, src_box, tgt_box, src_keep

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        src_hw, tgt_hw = tuple(src_img.shape[-2:]), tuple(tgt_img.shape[-2:])
        s_in, t_in = src_img, tgt_img
        scale_s = scale_t = 1.0
        if self.side is not None:
            scale_s = self.side / max(src_hw)
            scale_t = self.side / max(tgt_hw)
            s_in = F.interpolate(src_img, size=(int(src_hw[0] * scale_s), int(src_hw[1] * scale_s)), mode="bilinear",
                                 align_corners=False)
            t_in = F.interpolate(tgt_img, size=(int(tgt_hw[0] * scale_t), int(tgt_hw[1] * scale_t)), mode="bilinear",
                                 align_corners=False)
        fs, rf_jump = self.hyperimage(s_in)
        ft, _ = self.hyperimage(t_in)
        conf, src_box, tgt_box, src_keep = self.match_hyperpixels(fs, ft, tuple(s_in.shape[-2:]),
                                                                  tuple(t_in.shape[-2:]), rf_jump)
        # boxes back in the given images' pixels
        src_box = src_box / scale_s
        tgt_box = tgt_box / scale_t
        best_val, best = conf.max(dim=2)  # (B, Ns)
        B, hs, ws = fs.shape[0], fs.shape[-2], fs.shape[-1]
        # field: HPF transfer of the source grid's cell centres (nearest-box fallback for uncovered cells)
        centres = flow.unnormalize_coords(flow.grid_coords(hs, ws, src_hw, device=fs.device), src_hw).reshape(-1, 2)
        tgt_ctr = box_centers(tgt_box)
        src_ctr = box_centers(src_box)
        fields, confs = [], []
        for b in range(B):
            near = torch.cdist(centres, src_ctr).argmin(1)
            fallback = tgt_ctr[best[b, near]] + (centres - src_ctr[near])
            p = transfer_keypoints_hpf(centres, src_box, tgt_box, best[b], fallback)
            fields.append(flow.normalize_coords(p, tgt_hw).reshape(hs, ws, 2))
            confs.append(best_val[b, near].reshape(hs, ws))
        return HPFMatches(field=torch.stack(fields), confidence=torch.stack(confs), src_size=src_hw, tgt_size=tgt_hw,
                          extras={"hpf": (src_box, tgt_box, best, conf), "src_keep": src_keep})
