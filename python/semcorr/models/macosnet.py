"""MaCoSNet: joint weakly supervised semantic matching and object co-segmentation (Chen, Lin, Yang, Huang,
"Show, Match and Segment", TPAMI 2020).

A two-stream network on a shared feature encoder:

* **Encoder + correlation.** Both images are resized to ``image_size`` (square, default 240) and encoded
  (ResNet-101 layer3 in the paper: 15 x 15 cells at 240 px; ``backbone="tiny"``, the default, is a small
  random CNN with the same stride that needs no weights). Features are L2-normalised and correlated with
  :func:`semcorr_ext.ops.corr4d`; ``S_AB(p, q)`` is ReLU'd and L2-normalised over the positions q of B for each
  p of A (CNNGeometric's normalisation), giving a (Hb*Wb)-channel map on A's grid.
* **Transformation predictor G** (CNNGeometric / WeakAlign cascade): a regressor (conv + BN + ReLU blocks, then
  a linear layer) predicts an affine transform ``A_ab`` from ``S_AB``; image B is warped into A's frame with it
  and a second regressor predicts a thin-plate spline (3 x 3 control grid) ``T'_ab`` from the correlation of A
  with the warped B. The transform from A to B is ``T_ab(p) = A_ab(T'_ab(p))`` (normalised coordinates,
  :mod:`semcorr_ext.flow`). The match field is ``T_ab`` at the source grid's cell centres. Both regressors are
  initialised to output the identity.
* **Co-segmentation decoder D**: ``[f_A, S_AB]`` (features concatenated with the correlation maps) is decoded
  by a small fully convolutional upsampling decoder to a foreground logit map; ``sigmoid`` gives the mask.

``forward(src, tgt)`` returns :class:`Matches` with ``confidence`` = the matching score ``s_A(p)`` of each
source cell (correlation mass within one target cell of ``T_ab(p)``) and ``extras``:
``"masks"``: ``{"src": (B, 1, Hs, Ws), "tgt": (B, 1, Ht, Wt)}`` foreground probabilities at the input sizes;
``"theta_affine"`` (B, 2, 3); ``"tps_displacement"`` (B, 9, 2) (``None`` without the cascade); ``"tgt_grid"``.

Training (weak supervision: same-category image pairs only): :meth:`MaCoSNet.training_outputs` with the
losses of :mod:`semcorr.losses.macosnet`; the loop is ``semcorr train macosnet``
(:mod:`semcorr.train.macosnet`).
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops

from ..backbones import IMAGENET_MEAN, IMAGENET_STD, build_backbone
from . import register_model
from .base import CorrespondenceModel, Matches
from .nearest_neighbour import fuse_features

__all__ = ["MaCoSNet", "GeometricTransform", "TinyBackbone", "TransformRegressor", "CosegDecoder"]


class TinyBackbone(nn.Module):
    """A small CNN encoder (stride 16, like ResNet layer3): four stride-2 3x3 conv + BN + ReLU blocks.

    Randomly initialised (seeded), needs no download: the CPU / offline default of :class:`MaCoSNet`.
    (B, 3, H, W) RGB in [0, 1] -> (B, channels[-1], H/16, W/16).
    """

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 64), seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        layers, c_in = [], 3
        for c_out in channels:
            conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2.0 / (9 * c_in)) ** 0.5)
            layers += [conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.net = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def strides(self):
        return [2 ** (len(self.net) // 3)]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.net((img - self.mean) / self.std)


class TransformRegressor(nn.Module):
    """CNNGeometric's feature regression: conv (no padding) + BN + ReLU blocks, then a linear layer.

    ``in_channels`` = number of correlation channels (cells of the other image), ``grid`` = (h, w) of the
    input map. The output is ``init + output_scale * linear(...)`` with the linear layer starting at zero, so
    an untrained regressor outputs ``init`` (the identity) and the transform leaves it gradually (with Adam,
    whose first steps move every weight by ~lr, an unscaled zero-initialised head jumps far from the identity).
    Kernels are reduced to leave at least a 2 x 2 map (CNNGeometric's 15 x 15 grid -> 9 x 9 -> 5 x 5 is kept).
    """

    def __init__(self, in_channels: int, grid: Tuple[int, int], init: torch.Tensor,
                 kernel_sizes: Sequence[int] = (7, 5), channels: Sequence[int] = (128, 64),
                 output_scale: float = 0.1):
        super().__init__()
        h, w = int(grid[0]), int(grid[1])
        layers, c_in = [], in_channels
        for k, c_out in zip(kernel_sizes, channels):
            # keep at least 2 x 2 outputs so that BatchNorm works on a batch of one
            k = max(1, min(int(k), h - 1, w - 1))
            layers += [nn.Conv2d(c_in, c_out, k), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            h, w, c_in = h - k + 1, w - k + 1, c_out
        self.conv = nn.Sequential(*layers)
        self.linear = nn.Linear(c_in * h * w, init.numel())
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.zero_()
        self.register_buffer("init", init.reshape(-1).clone().float())
        self.output_scale = float(output_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.init.to(x.dtype) + self.output_scale * self.linear(self.conv(x).flatten(1))


class CosegDecoder(nn.Module):
    """Fully convolutional decoder: [features, correlation maps] on the feature grid -> foreground logits at
    8x the grid resolution (1x1 conv, then (x2 upsample, 3x3 conv + BN + ReLU) blocks, then x2 + 3x3 conv)."""

    def __init__(self, in_channels: int, channels: Sequence[int] = (128, 64, 32)):
        super().__init__()
        layers = [nn.Conv2d(in_channels, channels[0], 1), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True)]
        c = channels[0]
        for c_out in channels[1:]:
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(c, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c = c_out
        head = nn.Conv2d(c, 1, 3, padding=1)
        with torch.no_grad():
            head.bias.zero_()
        layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), head]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class GeometricTransform:
    """``T(p) = affine(tps(p))`` on normalised (x, y) points: ``theta`` (B, 2, 3) and optional TPS control-point
    displacements ``tps`` (B, K, 2) (applied first). Callable on (B, N, 2) or (N, 2) points."""

    theta: torch.Tensor
    tps: Optional[torch.Tensor] = None

    @property
    def batch(self) -> int:
        return int(self.theta.shape[0])

    def __call__(self, pts: torch.Tensor) -> torch.Tensor:
        if self.tps is not None:
            pts = flow.tps_points(self.tps, pts)
        return flow.affine_points(self.theta, pts)

    def grid(self, size: Sequence[int], image_size: Optional[Sequence[int]] = None) -> torch.Tensor:
        """(B, H, W, 2): T at the cell centres of an (H, W) grid over ``image_size`` (see flow.grid_coords)."""
        H, W = int(size[0]), int(size[1])
        p = flow.grid_coords(H, W, image_size, dtype=self.theta.dtype, device=self.theta.device)
        return self(p.reshape(-1, 2)).reshape(self.batch, H, W, 2)

    def index(self, sel) -> "GeometricTransform":
        return GeometricTransform(self.theta[sel], None if self.tps is None else self.tps[sel])


def _identity_affine() -> torch.Tensor:
    return torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


@register_model("macosnet")
class MaCoSNet(CorrespondenceModel):
    """MaCoSNet (see the module docstring).

    Args:
        backbone: ``"tiny"`` (default: random small CNN, offline, fast on CPU; untrained it gives near-identity
            matches), ``"resnet101"`` (the paper: layer3, ImageNet weights from the torch hub cache by default),
            ``"resnet50"``, or an ``nn.Module`` mapping images in [0, 1] to a (B, C, h, w) map.
        image_size: side of the square working resolution (240 in the paper).
        tps_grid_size: TPS control grid (3 -> 3 x 3); ``cascade=False`` predicts the affine stage only.
        kernel_sizes, channels: the regressors' conv blocks (CNNGeometric: (7, 5), (128, 64)).
        decoder_channels: the co-segmentation decoder's widths.
        freeze_backbone: ``None`` (default) freezes pretrained ResNets and trains the tiny encoder.
        checkpoint: a file written by ``semcorr train macosnet``: its configuration replaces these arguments
            and its weights are loaded.
        **backbone_kwargs: for :func:`semcorr.backbones.build_backbone` (e.g. ``weights=None``).
    """

    def __init__(self, backbone: Union[str, nn.Module] = "tiny", image_size: int = 240, tps_grid_size: int = 3,
                 cascade: bool = True, kernel_sizes: Sequence[int] = (7, 5), channels: Sequence[int] = (128, 64),
                 decoder_channels: Sequence[int] = (128, 64, 32), freeze_backbone: Optional[bool] = None,
                 checkpoint: Optional[str] = None, **backbone_kwargs):
        super().__init__()
        state = None
        if checkpoint is not None:
            ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
            cfg = dict(ckpt["config"])
            backbone = cfg.pop("backbone")
            image_size, tps_grid_size, cascade = cfg["image_size"], cfg["tps_grid_size"], cfg["cascade"]
            kernel_sizes, channels = cfg["kernel_sizes"], cfg["channels"]
            decoder_channels, freeze_backbone = cfg["decoder_channels"], cfg["freeze_backbone"]
            backbone_kwargs = dict(cfg.get("backbone_kwargs", {}))
            if isinstance(backbone, str) and backbone.startswith("resnet"):
                backbone_kwargs["weights"] = None  # every weight comes from the checkpoint
            state = ckpt["model"]
        self.config = dict(backbone=backbone if isinstance(backbone, str) else type(backbone).__name__,
                           image_size=int(image_size), tps_grid_size=int(tps_grid_size), cascade=bool(cascade),
                           kernel_sizes=tuple(kernel_sizes), channels=tuple(channels),
                           decoder_channels=tuple(decoder_channels), freeze_backbone=freeze_backbone,
                           backbone_kwargs={k: v for k, v in backbone_kwargs.items() if k != "weights"})
        pretrained = False
        if isinstance(backbone, str):
            self.backbone_name = backbone
            if backbone == "tiny":
                backbone = TinyBackbone(**backbone_kwargs)
            elif backbone.startswith("resnet"):
                backbone_kwargs.setdefault("weights", "imagenet")
                backbone_kwargs.setdefault("layers", ("layer3",))
                pretrained = backbone_kwargs["weights"] is not None
                backbone = build_backbone(backbone, **backbone_kwargs)
            else:
                raise ValueError("macosnet backbone must be 'tiny', 'resnet101', 'resnet50' or an nn.Module, "
                                 "got %r" % (backbone,))
        else:
            self.backbone_name = type(backbone).__name__
        self.backbone = backbone
        if freeze_backbone is None:
            freeze_backbone = pretrained
        self.freeze_backbone = bool(freeze_backbone)
        for p in self.backbone.parameters():
            p.requires_grad_(not self.freeze_backbone)

        self.image_size = int(image_size)
        self.cascade = bool(cascade)
        with torch.no_grad():
            was = self.backbone.training
            self.backbone.eval()
            probe = self._raw_features(torch.zeros(1, 3, self.image_size, self.image_size))
            self.backbone.train(was)
        feat_channels, h, w = probe.shape[1:]
        self.grid = (int(h), int(w))
        n_cells = self.grid[0] * self.grid[1]
        self.affine_regressor = TransformRegressor(n_cells, self.grid, _identity_affine(), kernel_sizes, channels)
        self.n_ctrl = int(tps_grid_size) ** 2
        self.tps_regressor = (TransformRegressor(n_cells, self.grid, torch.zeros(2 * self.n_ctrl), kernel_sizes,
                                                 channels) if self.cascade else None)
        self.decoder = CosegDecoder(feat_channels + n_cells, decoder_channels)
        if state is not None:
            self.load_state_dict(state)
        self.eval()

    # ---------------------------------------------------------------------------------------------------
    # building blocks

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # frozen pretrained encoder: keep its BatchNorm statistics
        return self

    def _raw_features(self, img: torch.Tensor) -> torch.Tensor:
        return fuse_features(self.backbone(img))

    def resize(self, img: torch.Tensor) -> torch.Tensor:
        """Images at the working resolution (image_size x image_size, bilinear)."""
        s = self.image_size
        if tuple(img.shape[-2:]) == (s, s):
            return img
        return F.interpolate(img, size=(s, s), mode="bilinear", align_corners=False, antialias=True)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """L2-normalised features (B, C, h, w) of images already at the working resolution."""
        return F.normalize(self._raw_features(img), dim=1)

    @staticmethod
    def correlation(fa: torch.Tensor, fb: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(S_AB (B, ha, wa, hb, wb), S_BA (B, hb, wb, ha, wa)): cosine correlation (ops.corr4d), ReLU, then
        L2-normalised over the other image's cells (per direction)."""
        c = ops.corr4d(fa, fb, normalize=True, relu=True)
        B, ha, wa, hb, wb = c.shape
        s_ab = F.normalize(c.reshape(B, ha, wa, hb * wb), dim=-1).reshape(B, ha, wa, hb, wb)
        c_ba = c.permute(0, 3, 4, 1, 2).reshape(B, hb, wb, ha * wa)
        s_ba = F.normalize(c_ba, dim=-1).reshape(B, hb, wb, ha, wa)
        return s_ab, s_ba

    @staticmethod
    def as_channels(s_ab: torch.Tensor) -> torch.Tensor:
        """S_AB (B, ha, wa, hb, wb) -> (B, hb*wb, ha, wa): a map on A's grid with one channel per cell of B."""
        B, ha, wa, hb, wb = s_ab.shape
        return s_ab.reshape(B, ha, wa, hb * wb).permute(0, 3, 1, 2)

    def transform(self, fa: torch.Tensor, fb: torch.Tensor, img_b: torch.Tensor,
                  s_ab: Optional[torch.Tensor] = None) -> GeometricTransform:
        """T_ab from features of A and B (working resolution) and image B (for the cascade's warp)."""
        if s_ab is None:
            s_ab = self.correlation(fa, fb)[0]
        theta = self.affine_regressor(self.as_channels(s_ab)).reshape(-1, 2, 3)
        tps = None
        if self.cascade:
            S = self.image_size
            # bring B into A's frame with the affine stage, then regress the residual TPS
            b_w = F.grid_sample(img_b, flow.affine_grid(theta, (S, S)).to(img_b.dtype), mode="bilinear",
                                padding_mode="zeros", align_corners=True)
            s_abw = self.correlation(fa, self.features(b_w))[0]
            tps = self.tps_regressor(self.as_channels(s_abw)).reshape(-1, 2, self.n_ctrl).transpose(1, 2)
        return GeometricTransform(theta, tps)

    def mask_logits(self, f: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Decoder D on [f_A, S_AB]: foreground logits (B, 1, image_size, image_size)."""
        logits = self.decoder(torch.cat([f, self.as_channels(s).to(f.dtype)], 1))
        S = self.image_size
        return F.interpolate(logits, size=(S, S), mode="bilinear", align_corners=False)

    # ---------------------------------------------------------------------------------------------------
    # inference

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        src_size, tgt_size = tuple(src_img.shape[-2:]), tuple(tgt_img.shape[-2:])
        a, b = self.resize(src_img), self.resize(tgt_img)
        fa, fb = self.features(a), self.features(b)
        s_ab, s_ba = self.correlation(fa, fb)
        t_ab = self.transform(fa, fb, b, s_ab)
        S = (self.image_size, self.image_size)
        ha, wa = self.grid
        field = t_ab.grid((ha, wa), src_size)
        from semcorr.losses.macosnet import matching_score

        conf = matching_score(s_ab, t_ab.grid((ha, wa), S), S, phi=1.0, soft=True)
        masks = {"src": torch.sigmoid(F.interpolate(self.mask_logits(fa, s_ab), size=src_size, mode="bilinear",
                                                    align_corners=False)),
                 "tgt": torch.sigmoid(F.interpolate(self.mask_logits(fb, s_ba), size=tgt_size, mode="bilinear",
                                                    align_corners=False))}
        return Matches(field=field, confidence=conf, src_size=src_size, tgt_size=tgt_size,
                       extras={"masks": masks, "theta_affine": t_ab.theta, "tps_displacement": t_ab.tps,
                               "tgt_grid": self.grid})

    # ---------------------------------------------------------------------------------------------------
    # training

    def training_outputs(self, img_a: torch.Tensor, img_b: torch.Tensor, img_c: Optional[torch.Tensor] = None,
                         has_c: Optional[torch.Tensor] = None) -> dict:
        """Everything :class:`semcorr.losses.macosnet.MaCoSNetLoss` needs for a batch of same-category pairs
        (A_i, B_i), and optionally a third same-category image C_i per pair (``has_c`` (B,) bool marks the
        items that have one) for the transitivity loss. Images (B, 3, H, W) in [0, 1], any size."""
        a, b = self.resize(img_a), self.resize(img_b)
        fa, fb = self.features(a), self.features(b)
        s_ab, s_ba = self.correlation(fa, fb)
        t_ab = self.transform(fa, fb, b, s_ab)
        t_ba = self.transform(fb, fa, a, s_ba)
        S = (self.image_size, self.image_size)
        mask_a = torch.sigmoid(self.mask_logits(fa, s_ab))
        mask_b = torch.sigmoid(self.mask_logits(fb, s_ba))
        out = {"img_a": a, "img_b": b, "work_size": S, "corr_ab": s_ab, "corr_ba": s_ba,
               "t_ab": t_ab, "t_ba": t_ba, "points_ab": t_ab.grid(self.grid, S), "points_ba": t_ba.grid(self.grid, S),
               "mask_a": mask_a, "mask_b": mask_b, "field_ab": t_ab.grid(S), "field_ba": t_ba.grid(S),
               "triplet": None}
        if img_c is not None:
            sel = torch.ones(img_c.shape[0], dtype=torch.bool, device=img_c.device) if has_c is None \
                else has_c.to(img_c.device).bool()
            if bool(sel.any()):
                c = self.resize(img_c[sel])
                fc = self.features(c)
                t_bc = self.transform(fb[sel], fc, c)
                t_ca = self.transform(fc, fa[sel], a[sel])
                out["triplet"] = (t_ab.index(sel), t_bc, t_ca)
        return out
