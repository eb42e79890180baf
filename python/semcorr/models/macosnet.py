"""MaCoSNet: joint weakly supervised semantic matching and object co-segmentation (Chen, Lin, Yang, Huang,
"Show, Match and Segment", TPAMI 2020).

A two-stream network on a shared feature encoder. Where the paper and the released code (YunChunChen/MaCoSNet-pytorch,
``model/network.py`` ``WeakMatchNet``, ``train.py``, ``train.sh``) differ we follow the released code, which
produced the published numbers:

* **Encoder + correlation** (released ``FeatureExtraction`` + ``FeatureCorrelation('3D')``). Both images are resized
  to ``image_size`` (240) and encoded by ResNet-101 up to layer3 (15 x 15 cells; ``backbone="tiny"`` is our small
  random CNN with the same stride, for offline tests and demos only). Features are L2-normalised
  (:func:`feature_l2norm`, eps inside the root as released), correlated (:func:`semcorr_ext.ops.corr4d`), ReLU'd
  and L2-normalised over the other image's cells, giving a (Hb*Wb)-channel map on A's grid in the released
  channel order (:meth:`MaCoSNet.as_channels`).
* **Transformation predictor G** (CNNGeometric / WeakAlign two-stage cascade). ``affine_regressor`` and
  ``tps_regressor`` are CNNGeometric's ``FeatureRegression`` (conv 7x7 225->128 + BN + ReLU, conv 5x5 128->64 +
  BN + ReLU, linear 1600 -> 6 / 18), key for key (:class:`TransformRegressor`), so the released checkpoints load
  as they are. The affine regressor predicts ``A_ab`` from ``S_AB``; image B is warped into A's frame with it (the
  normalised image, zero padding = the mean colour, as released); the TPS regressor predicts the 3 x 3 control
  targets ``[Q_X, Q_Y]`` (released order, :func:`tps_parameters_to_displacement`) from the correlation of A with
  the warped B. ``T_ab(p) = A_ab(T'_ab(p))`` maps a point of A to B (normalised coordinates,
  :mod:`semcorr_ext.flow`); the match field is ``T_ab`` at the source grid's cell centres. The released model is
  initialised from a WeakAlign checkpoint (``train.sh --model weakalign.pth.tar``): ``checkpoint=`` loads that
  layout, MaCoSNet's own released ``state_dict`` and the CNNGeometric affine / TPS pair. Without a checkpoint the
  regressors start at the identity (zero weight, identity bias) and the model reports them untrained.
* **Co-segmentation decoder D** (ours): ``[f_A, S_AB]`` is decoded by a small fully convolutional upsampling
  decoder to a foreground logit map; ``sigmoid`` gives the mask. The released ``WeakCosegNet`` / ``Decoder``
  cannot run as published (``forward`` calls an undefined ``get_features``, uses ``festures_B``, and adds skip
  features whose shapes do not match: 512 channels at 30 x 30 plus layer1's 256 at 60 x 60), its joint model is
  commented out of ``util/util.py`` and ``train.py`` trains the matching network only, so there is no released
  decoder to follow; ours is always marked untrained unless a ``semcorr train macosnet`` checkpoint loads it.

``forward(src, tgt)`` returns :class:`Matches` with ``confidence`` = the matching score ``s_A(p)`` of each
source cell (correlation mass within one target cell of ``T_ab(p)``) and ``extras``:
``"masks"``: ``{"src": (B, 1, Hs, Ws), "tgt": (B, 1, Ht, Wt)}`` foreground probabilities at the input sizes;
``"theta_affine"`` (B, 2, 3); ``"tps_displacement"`` (B, 9, 2) (our control-point order; ``None`` without the
cascade); ``"tgt_grid"``.

Training (weak supervision: same-category image pairs only): :meth:`MaCoSNet.training_outputs` with the
losses of :mod:`semcorr.losses.macosnet` (released defaults: matching + cycle); the loop is
``semcorr train macosnet`` (:mod:`semcorr.train.macosnet`).
"""
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops

from ..backbone_factory import fuse_features, is_resnet, make_backbone
from ..backbones import IMAGENET_MEAN, IMAGENET_STD
from . import register_model
from .base import CorrespondenceModel, Matches

__all__ = ["MaCoSNet", "GeometricTransform", "TinyBackbone", "TransformRegressor", "CosegDecoder", "feature_l2norm",
           "tps_identity_parameters", "tps_parameters_to_displacement", "convert_released_state_dict"]


class TinyBackbone(nn.Module):
    """A small CNN encoder (stride 16, like ResNet layer3): four stride-2 3x3 conv + BN + ReLU blocks.

    Randomly initialised (seeded), needs no download: the CPU / offline option of :class:`MaCoSNet` (ours, for
    tests and demos; the released model uses ResNet-101).
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


def feature_l2norm(x: torch.Tensor, dim: int = 1, eps: float = 1e-6) -> torch.Tensor:
    """CNNGeometric's ``featureL2Norm``: ``x / sqrt(sum x^2 + eps)`` along ``dim`` (eps inside the root, as
    published; used for the features and for the correlation maps)."""
    return x / (x.pow(2).sum(dim, keepdim=True) + eps).sqrt()


def tps_identity_parameters(grid_size: int = 3) -> torch.Tensor:
    """The released TPS parameter vector of the identity: (2K,) = ``[Q_X (K), Q_Y (K)]``, the control points in the
    released order (CNNGeometric's ``TpsGridGen``: ``P_Y, P_X = meshgrid(lin, lin)``, so point k is
    ``(lin[k // g], lin[k % g])``, x outer, y inner)."""
    g = int(grid_size)
    lin = torch.linspace(-1.0, 1.0, g)
    k = torch.arange(g * g)
    return torch.cat([lin[k // g], lin[k % g]])


def tps_parameters_to_displacement(theta: torch.Tensor, grid_size: int = 3) -> torch.Tensor:
    """Released TPS parameters (B, 2K) (absolute control-point targets ``[Q_X, Q_Y]`` in the released order, see
    :func:`tps_identity_parameters`) -> (B, K, 2) displacements of :func:`semcorr_ext.flow.tps_control_points`
    (our order: y outer, x inner), the form :func:`semcorr_ext.flow.tps_points` takes. The TPS itself is the same
    map: only the order of the (P_k, Q_k) pairs differs."""
    g = int(grid_size)
    K = g * g
    q = torch.stack([theta[:, :K], theta[:, K:]], -1)                     # (B, K, 2) released order
    m = torch.arange(K, device=theta.device)
    q = q[:, (m % g) * g + m // g]                                         # our point m = (row m // g, col m % g)
    return q - flow.tps_control_points(g, dtype=theta.dtype, device=theta.device)


class TransformRegressor(nn.Module):
    """CNNGeometric's ``FeatureRegression``, in its layout: ``conv`` = (Conv2d without padding, BatchNorm2d, ReLU)
    blocks (keys ``conv.0``, ``conv.1``, ``conv.3``, ``conv.4``, ...), then ``linear``; ``forward`` is
    ``linear(flatten(conv(x)))``, the transform parameters themselves (affine: the 2x3 matrix row-major; TPS: the
    released ``[Q_X, Q_Y]``), so a CNNGeometric / WeakAlign / MaCoSNet state dict loads as it is.

    ``in_channels`` = correlation channels (cells of the other image), ``grid`` = (h, w) of the input map.
    Untrained, ``linear`` starts at weight 0 and bias ``identity`` (the released code initialises it at random
    and always loads a CNNGeometric / WeakAlign checkpoint first), so an untrained model predicts the identity.
    Kernels shrink to leave at least 2 x 2 outputs on small test grids (the published 15 x 15 grid -> 9 x 9 ->
    5 x 5 is unchanged).
    """

    def __init__(self, in_channels: int, grid: Tuple[int, int], identity: torch.Tensor,
                 kernel_sizes: Sequence[int] = (7, 5), channels: Sequence[int] = (128, 64)):
        super().__init__()
        h, w = int(grid[0]), int(grid[1])
        layers, c_in = [], in_channels
        for k, c_out in zip(kernel_sizes, channels):
            # keep at least 2 x 2 outputs so that BatchNorm works on a batch of one
            k = max(1, min(int(k), h - 1, w - 1))
            layers += [nn.Conv2d(c_in, c_out, k), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            h, w, c_in = h - k + 1, w - k + 1, c_out
        self.conv = nn.Sequential(*layers)
        self.linear = nn.Linear(c_in * h * w, identity.numel())
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.copy_(identity.reshape(-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.conv(x).flatten(1))


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


#: prefixes of the released layouts (CNNGeometric / WeakAlign / MaCoSNet WeakMatchNet) -> ours
_RELEASED_REGRESSORS = {"FeatureRegression.": "affine_regressor.", "FeatureRegression2.": "tps_regressor."}


def _is_released_layout(sd) -> bool:
    return any(k.startswith(("FeatureExtraction.", "FeatureRegression.", "FeatureRegression2.")) for k in sd)


def _released_state_dict(obj) -> Dict[str, torch.Tensor]:
    """A loaded CNNGeometric / WeakAlign / MaCoSNet checkpoint -> its state dict (``{"state_dict": ...}`` unwrapped,
    ``module.`` stripped, ``vgg`` -> ``model`` as their loaders do)."""
    from semcorr.checkpoints import unwrap_state_dict

    sd = unwrap_state_dict(obj, keys=("state_dict",))
    return OrderedDict((k.replace("vgg", "model"), v) for k, v in sd.items())


def convert_released_state_dict(sd, tps_from: str = "FeatureRegression2.") -> Dict[str, torch.Tensor]:
    """A released state dict (``FeatureExtraction.model.<i>.*`` = ResNet-101 conv1 .. layer3 as an
    ``nn.Sequential``, ``FeatureRegression.*`` = affine regressor, ``FeatureRegression2.*`` = TPS regressor) ->
    ours (``backbone.*`` of :class:`semcorr.backbones.ResNetFeatures`, ``affine_regressor.*``,
    ``tps_regressor.*``). ``tps_from="FeatureRegression."`` reads the TPS regressor of a single-stage CNNGeometric
    TPS checkpoint (as WeakAlign's ``--model-tps``). Other keys pass through (and are reported as unexpected)."""
    from .ncnet import _NCNET_BACKBONE_PREFIXES  # the same FeatureExtraction module as NC-Net's

    prefixes = dict(_NCNET_BACKBONE_PREFIXES)
    if tps_from == "FeatureRegression.":
        prefixes["FeatureRegression."] = "tps_regressor."
    else:
        prefixes.update(_RELEASED_REGRESSORS)
    out = OrderedDict()
    for k, v in sd.items():
        old = next((p for p in prefixes if k.startswith(p)), None)
        out[k if old is None else prefixes[old] + k[len(old):]] = v
    return out


def _fill_num_batches_tracked(expected, sd) -> None:
    """Checkpoints written before PyTorch 0.4.1 have no BatchNorm ``num_batches_tracked``; PyTorch itself loads them
    (the counter only matters with momentum=None), so the missing counters are set to 0 here."""
    for k, v in expected.items():
        stem = k[: -len("num_batches_tracked")]
        if k.endswith(".num_batches_tracked") and k not in sd and stem + "running_mean" in sd:
            sd[k] = torch.zeros_like(v)


@register_model("macosnet")
class MaCoSNet(CorrespondenceModel):
    """MaCoSNet (see the module docstring).

    Args:
        backbone: ``"resnet101"`` (default, the released model: conv1 .. layer3, 15 x 15 cells at 240 px),
            ``"resnet50"``, ``"tiny"`` (ours: a random small CNN with the same stride, offline and fast on CPU,
            for tests and demos), or an ``nn.Module`` mapping images in [0, 1] to a (B, C, h, w) map.
        weights: ResNet weights: ``"auto"`` (default: ImageNet if in the torch hub cache, else random with a
            warning), ``"imagenet"`` (an error if not cached), ``None`` or a state-dict path.
        image_size: side of the square working resolution (released: 240).
        tps_grid_size: TPS control grid (released: 3 -> 3 x 3); ``cascade=False`` predicts the affine stage only.
        kernel_sizes, channels: the regressors' conv blocks (released: (7, 5), (128, 64)).
        decoder_channels: the co-segmentation decoder's widths (ours, see the module docstring).
        freeze_backbone: ``False`` (default, released: ``--train-fe True`` with ``--fe-finetune-params ''``, which
            matches every parameter name, so the whole encoder is fine-tuned); ``True`` keeps it fixed (and its
            BatchNorm statistics); ``None``: frozen when it holds ImageNet weights.
        checkpoint: one of (the layout is recognised from the keys, see :meth:`load_released`):
            a file of ``semcorr train macosnet`` (its configuration replaces these arguments); MaCoSNet's
            released checkpoint (``train.py``'s ``torch.save(model.state_dict())`` of ``WeakMatchNet``); a
            WeakAlign / two-stage CNNGeometric ``.pth.tar`` (``{epoch, args, state_dict, best_test_loss,
            optimizer, train_loss, test_loss}``), the released model's initialisation; or a pair
            ``(affine.pth.tar, tps.pth.tar)`` of single-stage CNNGeometric checkpoints.
        **backbone_kwargs: for :func:`semcorr.backbones.build_backbone`.
    """

    def __init__(self, backbone: Union[str, nn.Module] = "resnet101", image_size: int = 240, tps_grid_size: int = 3,
                 cascade: bool = True, kernel_sizes: Sequence[int] = (7, 5), channels: Sequence[int] = (128, 64),
                 decoder_channels: Sequence[int] = (128, 64, 32), freeze_backbone: Optional[bool] = False,
                 checkpoint=None, weights="auto", **backbone_kwargs):
        super().__init__()
        from semcorr.checkpoints import load_checkpoint

        state, released = None, None
        if isinstance(checkpoint, (tuple, list)):
            if len(checkpoint) != 2:
                raise ValueError("macosnet checkpoint: a pair (affine, tps) of CNNGeometric checkpoints, got %d items"
                                 % len(checkpoint))
            released = [_released_state_dict(load_checkpoint(c)) for c in checkpoint]
        elif checkpoint is not None:
            ckpt = load_checkpoint(checkpoint)
            if isinstance(ckpt, Mapping) and "config" in ckpt and "model" in ckpt:  # semcorr train macosnet
                cfg = dict(ckpt["config"])
                backbone = cfg.pop("backbone")
                image_size, tps_grid_size, cascade = cfg["image_size"], cfg["tps_grid_size"], cfg["cascade"]
                kernel_sizes, channels = cfg["kernel_sizes"], cfg["channels"]
                decoder_channels, freeze_backbone = cfg["decoder_channels"], cfg["freeze_backbone"]
                backbone_kwargs = dict(cfg.get("backbone_kwargs", {}))
                weights = None  # every weight comes from the checkpoint
                state = ckpt["model"]
            else:
                released = [_released_state_dict(ckpt)]
        if released is not None:
            weights = None
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
                self.mark_untrained("backbone")
            elif is_resnet(backbone):
                net = make_backbone(backbone, "MaCoSNet", weights, default_layers=("layer3",), **backbone_kwargs)
                pretrained = not net.random
                backbone = net.module
                if net.random:
                    self.mark_untrained("backbone")
            else:
                raise ValueError("macosnet backbone must be 'resnet101', 'resnet50', 'tiny' or an nn.Module, "
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
        self.tps_grid_size = int(tps_grid_size)
        with torch.no_grad():
            was = self.backbone.training
            self.backbone.eval()
            probe = self._raw_features(torch.zeros(1, 3, self.image_size, self.image_size))
            self.backbone.train(was)
        feat_channels, h, w = probe.shape[1:]
        self.grid = (int(h), int(w))
        n_cells = self.grid[0] * self.grid[1]
        self.affine_regressor = TransformRegressor(n_cells, self.grid, _identity_affine(), kernel_sizes, channels)
        self.n_ctrl = self.tps_grid_size ** 2
        self.tps_regressor = (TransformRegressor(n_cells, self.grid, tps_identity_parameters(self.tps_grid_size),
                                                 kernel_sizes, channels) if self.cascade else None)
        self.decoder = CosegDecoder(feat_channels + n_cells, decoder_channels)
        self.mark_untrained("regressors", "decoder")
        if state is not None:
            self._load_own(state, os.fspath(checkpoint))
        elif released is not None:
            self.load_released(*released)
        self.eval()

    # ---------------------------------------------------------------------------------------------------
    # checkpoints

    def _load_own(self, state, what: str) -> None:
        from semcorr.checkpoints import check_keys, unwrap_state_dict

        sd = unwrap_state_dict(state, keys=())
        check_keys(self.state_dict(), sd, "MaCoSNet %s" % what)
        self.load_state_dict(sd)
        self.mark_trained("backbone", "regressors", "decoder")

    def load_released(self, sd, tps_sd=None) -> None:
        """Load a released state dict (read with :func:`semcorr.checkpoints.load_checkpoint` and unwrapped):
        MaCoSNet's own (``WeakMatchNet.state_dict()``) or WeakAlign's / a two-stage CNNGeometric's, whose keys
        are ``FeatureExtraction.model.*``, ``FeatureRegression.*``, ``FeatureRegression2.*`` (released
        ``init_match_model`` copies exactly these three modules). With ``tps_sd``, ``sd`` is a single-stage affine
        CNNGeometric checkpoint and ``tps_sd`` a single-stage TPS one (its ``FeatureRegression`` is the TPS
        regressor). Strict (:func:`semcorr.checkpoints.check_keys`): every backbone and regressor key, with
        the model's shapes; only the co-segmentation decoder, which these checkpoints do not hold, stays as is.
        """
        from semcorr.checkpoints import CheckpointError, check_keys

        if not _is_released_layout(sd):
            raise CheckpointError("MaCoSNet: not a CNNGeometric / WeakAlign / MaCoSNet state dict (no "
                                  "FeatureExtraction / FeatureRegression keys); keys start with %s"
                                  % ", ".join(sorted({k.split(".")[0] for k in sd})[:8]))
        conv = convert_released_state_dict(sd)
        if tps_sd is not None:
            conv = OrderedDict((k, v) for k, v in conv.items() if not k.startswith("tps_regressor."))
            conv.update((k, v) for k, v in convert_released_state_dict(
                _released_state_dict(tps_sd), tps_from="FeatureRegression.").items() if k.startswith("tps_regressor."))
        expected = self.state_dict()
        _fill_num_batches_tracked(expected, conv)
        check_keys(expected, conv, "MaCoSNet (released layout)", allow_missing=("decoder.",))
        self.load_state_dict(conv, strict=False)  # check_keys accepted it; the decoder keeps its weights
        self.mark_trained("backbone", "regressors")

    # ---------------------------------------------------------------------------------------------------
    # building blocks

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()  # frozen pretrained encoder: keep its BatchNorm statistics
        return self

    def _raw_features(self, img: torch.Tensor) -> torch.Tensor:
        out = self.backbone(img)
        if isinstance(out, (list, tuple)):
            out = out[0] if len(out) == 1 else fuse_features(out)
        return out

    def resize(self, img: torch.Tensor) -> torch.Tensor:
        """Images at the working resolution (image_size x image_size): bilinear with align_corners=True, the
        released datasets' resize (``GeometricTnf`` with the identity affine, ``grid_sample`` of PyTorch 1.1)."""
        s = self.image_size
        if tuple(img.shape[-2:]) == (s, s):
            return img
        return F.interpolate(img, size=(s, s), mode="bilinear", align_corners=True)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """Features (B, C, h, w) of images already at the working resolution, L2-normalised per cell
        (:func:`feature_l2norm`, CNNGeometric's ``FeatureExtraction(normalization=True)``)."""
        return feature_l2norm(self._raw_features(img), 1)

    @staticmethod
    def correlation(fa: torch.Tensor, fb: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(S_AB (B, ha, wa, hb, wb), S_BA (B, hb, wb, ha, wa)) of normalised features: the dot products
        (:func:`semcorr_ext.ops.corr4d`), ReLU, then :func:`feature_l2norm` over the other image's cells (per
        direction): CNNGeometric's ``FeatureCorrelation(shape='3D', normalization=True)``, whose
        ``FeatureCorrelation(f_B, f_A)`` is ``as_channels(S_AB)``."""
        c = ops.corr4d(fa, fb, normalize=False, relu=True)
        B, ha, wa, hb, wb = c.shape
        s_ab = feature_l2norm(c.reshape(B, ha, wa, hb * wb), -1).reshape(B, ha, wa, hb, wb)
        c_ba = c.permute(0, 3, 4, 1, 2).reshape(B, hb, wb, ha * wa)
        s_ba = feature_l2norm(c_ba, -1).reshape(B, hb, wb, ha, wa)
        return s_ab, s_ba

    @staticmethod
    def as_channels(s_ab: torch.Tensor) -> torch.Tensor:
        """S_AB (B, ha, wa, hb, wb) -> (B, hb*wb, ha, wa): a map on A's grid with one channel per cell of B, in
        the released channel order (cell (row, col) of B is channel ``row + hb * col``: the regressors' first
        convolution of a published checkpoint sees its channels where it was trained)."""
        B, ha, wa, hb, wb = s_ab.shape
        return s_ab.permute(0, 4, 3, 1, 2).reshape(B, wb * hb, ha, wa)

    def _warp(self, img: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """``img`` (in [0, 1]) sampled at ``theta`` applied to the working grid (align_corners=True, as PyTorch 1.1).
        The released code warps the ImageNet-normalised image with zero padding, i.e. the mean colour outside:
        sampling ``img - mean`` and adding ``mean`` back gives exactly that after the backbone's normalisation."""
        S = self.image_size
        grid = flow.affine_grid(theta, (S, S)).to(img.dtype)
        mean = getattr(self.backbone, "mean", None)
        if mean is None:
            return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        mean = mean.to(img.dtype)
        return F.grid_sample(img - mean, grid, mode="bilinear", padding_mode="zeros", align_corners=True) + mean

    def transform(self, fa: torch.Tensor, fb: torch.Tensor, img_b: torch.Tensor,
                  s_ab: Optional[torch.Tensor] = None) -> GeometricTransform:
        """T_ab (A -> B) from features of A and B (working resolution) and image B (for the cascade's warp).

        The released ``WeakMatchNet`` regresses ``aff_BA = FeatureRegression(corr(f_B, f_A))`` (our S_AB), warps
        B with it into A's frame, regresses ``tps = FeatureRegression2(corr(f_Bwrp, f_A))`` and maps a point p of
        A to ``aff(tps(p))`` in B."""
        if s_ab is None:
            s_ab = self.correlation(fa, fb)[0]
        theta = self.affine_regressor(self.as_channels(s_ab)).reshape(-1, 2, 3)
        tps = None
        if self.cascade:
            s_abw = self.correlation(fa, self.features(self._warp(img_b, theta)))[0]
            tps = tps_parameters_to_displacement(self.tps_regressor(self.as_channels(s_abw)), self.tps_grid_size)
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
        # the matching loss scores the affine stage and the full cascade (released AffMatchScore / TpsMatchScore)
        out = {"img_a": a, "img_b": b, "work_size": S, "corr_ab": s_ab, "corr_ba": s_ba,
               "t_ab": t_ab, "t_ba": t_ba, "points_ab": t_ab.grid(self.grid, S), "points_ba": t_ba.grid(self.grid, S),
               "points_ab_affine": GeometricTransform(t_ab.theta).grid(self.grid, S),
               "points_ba_affine": GeometricTransform(t_ba.theta).grid(self.grid, S),
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
