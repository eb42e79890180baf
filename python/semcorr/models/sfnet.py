"""SFNet (Lee, Kim, Ponce, Ham, CVPR 2019): object-aware semantic flow learned from binary foreground masks.

Architecture (paper Sec. 3.1 / 4.1): frozen ImageNet ResNet-101 features at conv4-23 (``layer3``, stride 16)
and conv5-3 (``layer4``, stride 32); one residual adaptation module per level (two residual conv + BN + ReLU
blocks: 5x5 on conv4, 3x3 on conv5, as in the published code); the conv5 maps are upsampled (bilinear,
align_corners=True) to the conv4 grid; the two ReLU'd cosine correlations (:func:`semcorr_ext.ops.corr4d` with
``relu=True``) are multiplied, L2-normalised over the target positions and turned into a dense match field
by the kernel soft-argmax (:func:`semcorr_ext.ops.kernel_soft_argmax`, beta = 50, sigma = 5), in both
directions. Only the adaptation layers are trained.

    model = build_model("sfnet")                          # resnet101 (ImageNet if cached, else random + UNTRAINED)
    model = build_model("sfnet", backbone="tiny")         # small random CNN: CPU tests, smoke runs
    model = build_model("sfnet", checkpoint="best_checkpoint.pt")   # published weights (or ours)

The published checkpoint stores ``{"state_dict1": adap_layer_feat3 state, "state_dict2": adap_layer_feat4
state}`` with keys ``conv{1,2}.{0,1}.*`` (conv / BN of each residual block); :func:`convert_published_state_dict`
maps them (and full-model ``adap_layer_feat{3,4}.*`` keys) onto ours; :meth:`SFNet.load_checkpoint` reads files
safely (``weights_only``) and strictly (the released ``eval_pascal.py`` uses ``strict=False``; we name every
missing / unexpected / mis-shaped tensor instead).

Fidelity to the released code (cvlab-yonsei/SFNet ``model.py``): ``flows`` equals ``SFNet.forward(train=False)``
(``grid_S2T`` / ``grid_T2S``) to 1e-5 from a checkpoint of the released layout (``tests/test_sfnet_published.py``).
Outside the network: the released evaluation resizes to 288x288 and pads 16 black pixels (320x320, 20x20 grid),
then crops one cell at each border of ``grid_T2S`` and rescales it; that read-out is the ``sfnet`` transfer of
``semcorr eval``'s SFNet protocols, while ``forward`` resizes to ``image_size`` (320) without padding and
returns the source-to-target field in the :class:`Matches` convention. Where the conv5 grid is not exactly half
the conv4 grid (odd image sizes) we upsample to the conv4 size; the released ``scale_factor=2`` would fail there.
See docs/models/sfnet.md.
"""
import os
import re
import warnings
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops
from semcorr.backbone_factory import make_backbone
from semcorr.backbones import imagenet_cached
from semcorr.checkpoints import CheckpointError, check_keys, load_checkpoint, unwrap_state_dict

from . import register_model
from .base import CorrespondenceModel, Matches

__all__ = ["SFNet", "AdaptationLayer", "TinyFeatures", "build_sfnet_backbone", "convert_published_state_dict",
           "grid_to_image_field"]


class TinyFeatures(nn.Module):
    """A small random CNN with SFNet's two outputs: (B, c3, H/16, W/16) and (B, c4, H/32, W/32). For CPU tests and
    smoke runs only (no weights needed)."""

    def __init__(self, c3: int = 32, c4: int = 64):
        super().__init__()

        def down(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

        self.to3 = nn.Sequential(down(3, 16), down(16, 16), down(16, 32), down(32, c3))
        self.to4 = down(c3, c4)
        self.channels = (c3, c4)

    def forward(self, img):
        f3 = self.to3(img * 2 - 1)
        return [f3, self.to4(f3)]


class _TorchvisionResNet18(nn.Module):
    """ResNet-18 layer3 / layer4 (256 / 512 channels), random weights unless a state dict path is given."""

    def __init__(self, weights=None):
        super().__init__()
        import torchvision

        net = torchvision.models.resnet18(weights=None)
        if weights is not None:
            net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
        self.layer4 = net.layer4
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.channels = (256, 512)

    def forward(self, img):
        f3 = self.body((img - self.mean) / self.std)
        return [f3, self.layer4(f3)]


def build_sfnet_backbone(name: str = "resnet101", weights="auto") -> Tuple[nn.Module, Tuple[int, int], str, bool]:
    """(module returning [conv4 map, conv5 map], (c3, c4), description, whether its weights are random).

    ``name``: ``resnet101`` (the paper and the released code), ``resnet50``, or our additions ``auto``
    (resnet101 with cached ImageNet weights, else a random resnet18 -- a fast smoke-run setting, not SFNet),
    ``resnet18`` and ``tiny``. ``weights`` (ResNets): ``"auto"`` = ImageNet from the torch hub cache when
    present, else random (with a warning); ``"imagenet"`` (required, error if missing), ``None`` (random) or a
    state-dict path. Never downloads.
    """
    if name == "auto":
        # the paper's backbone when its ImageNet weights are available offline; otherwise a random ResNet-18,
        # which keeps a smoke run to seconds on a CPU (untrained: for smoke runs only)
        if weights in ("auto", "imagenet") and imagenet_cached(101):
            return build_sfnet_backbone("resnet101", "imagenet")
        warnings.warn("SFNet: no ImageNet ResNet-101 weights in the torch hub cache; using a random ResNet-18 "
                      "backbone (matches will be poor). Pass backbone='resnet101', weights=<path> for the paper's.")
        return build_sfnet_backbone("resnet18", None)
    if name == "tiny":
        m = TinyFeatures()
        return m, m.channels, "tiny (random)", True
    if name == "resnet18":
        random = weights in ("auto", None)
        m = _TorchvisionResNet18(None if random else weights)
        return m, m.channels, "resnet18 (%s)" % ("random" if random else weights), random
    if name in ("resnet50", "resnet101"):
        net = make_backbone(name, "SFNet", weights, default_layers=("layer3", "layer4"))
        return net.module, (1024, 2048), net.label(), net.random
    raise ValueError("SFNet backbone must be resnet101, resnet50, auto, resnet18 or tiny, got %r" % (name,))


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return x + F.relu(self.bn(self.conv(x)))


class AdaptationLayer(nn.Module):
    """SFNet's adaptation layer: two residual blocks ``x + relu(bn(conv(x)))`` (kernel 5 on conv4, 3 on conv5)."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.blocks = nn.Sequential(_ResidualBlock(channels, kernel), _ResidualBlock(channels, kernel))

    def forward(self, x):
        return self.blocks(x)


_PUBLISHED_KEY = re.compile(r"^conv([12])\.([01])\.(.+)$")


def convert_published_state_dict(sd: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """Map a published SFNet checkpoint onto :class:`SFNet`'s adaptation-layer keys.

    Accepts the released layout ``{"state_dict1": {...}, "state_dict2": {...}}`` (what ``train.py`` saves:
    ``net.adap_layer_feat3.state_dict()`` / ``net.adap_layer_feat4.state_dict()``, keys
    ``conv{1,2}.{0 conv | 1 BN}.<param>``, with or without BN ``num_batches_tracked``), a full SFNet state dict
    (``adap_layer_feat3.conv1.0.weight``, ...; the frozen ImageNet ``feature_extraction.*`` keys are dropped) with
    or without a ``module.`` prefix, ``semcorr train sfnet``'s ``{"model": ...}`` or our own keys. Returns
    ``{"adapt3.blocks.{k-1}.{conv|bn}.<param>": tensor, ...}``; keys of no known layout are kept as they are
    (:meth:`SFNet.load_checkpoint` reports them)."""
    if not isinstance(sd, Mapping):
        raise CheckpointError("SFNet checkpoint: expected a dict, got %s" % type(sd).__name__)
    if "state_dict1" in sd or "state_dict2" in sd:
        flat = {}
        for level, key in ((3, "state_dict1"), (4, "state_dict2")):
            part = sd.get(key)
            if not isinstance(part, Mapping):
                raise CheckpointError("SFNet checkpoint lacks %r (the adap_layer_feat%d state dict); it has %s"
                                      % (key, level, ", ".join(map(repr, sd))))
            for k, v in part.items():
                flat["adap_layer_feat%d.%s" % (level, k)] = v
        sd = flat
    else:
        sd = unwrap_state_dict(sd, keys=("state_dict", "model"))
    out = {}
    for k, v in sd.items():
        if k.startswith("module."):
            k = k[len("module."):]
        if k.startswith("feature_extraction."):
            continue  # the frozen ImageNet backbone of a full SFNet state dict: not trained by SFNet
        m = re.match(r"^adap_layer_feat([34])\.(.+)$", k)
        p = _PUBLISHED_KEY.match(m.group(2)) if m else None
        if p is None:
            out[k] = v  # ours, or unknown (reported by the key check)
            continue
        out["adapt%s.blocks.%d.%s.%s" % (m.group(1), int(p.group(1)) - 1, "conv" if p.group(2) == "0" else "bn",
                                         p.group(3))] = v
    return out


def grid_to_image_field(g: torch.Tensor, grid_size, image_size) -> torch.Tensor:
    """Coordinates normalised over a grid's cell centres (the kernel soft-argmax output) -> normalised over the
    image the grid tiles (the :class:`Matches` convention). The inverse of ``flow.image_to_grid_coords``."""
    Hg, Wg = grid_size
    Hi, Wi = image_size
    cells = flow.unnormalize_coords(g, (Hg, Wg))
    pix = (cells + 0.5) * cells.new_tensor([Wi / Wg, Hi / Hg]) - 0.5
    return flow.normalize_coords(pix, (Hi, Wi))


@register_model("sfnet")
class SFNet(CorrespondenceModel):
    """SFNet. Args:

    backbone: ``"resnet101"`` (default: the paper's and the released code's), ``"resnet50"``, or our additions
        ``"auto"`` (resnet101 when its ImageNet weights are in the torch hub cache, else a random ``"resnet18"``
        that runs offline in seconds), ``"resnet18"``, ``"tiny"``, or an ``nn.Module`` returning
        ``[conv4 map, conv5 map]`` (then give ``channels``).
    weights: backbone weights (see :func:`build_sfnet_backbone`; default ``"auto"``: ImageNet if cached, else
        random with a warning; nothing is downloaded).
    checkpoint: path to a published SFNet checkpoint or one written by ``semcorr train sfnet`` (the adaptation
        layers; :func:`convert_published_state_dict`).
    beta, sigma: kernel soft-argmax temperature and Gaussian std in conv4 cells (paper: 50, 5; ``sigma=None`` =
        plain soft-argmax).
    image_size: square working resolution: images are resized to it (paper: 320 -> 20x20 grids); ``None`` keeps
        the given size.
    """

    def __init__(self, backbone: Union[str, nn.Module] = "resnet101", weights="auto",
                 checkpoint: Optional[str] = None, beta: float = 50.0, sigma: Optional[float] = 5.0,
                 image_size: Optional[int] = 320, channels: Optional[Tuple[int, int]] = None):
        super().__init__()
        if isinstance(backbone, nn.Module):
            if channels is None:
                raise ValueError("SFNet: give channels=(c3, c4) with a custom backbone module")
            self.features, self.backbone_name = backbone, type(backbone).__name__
            random_backbone = False  # a user's module: its weights are the user's business
        else:
            self.features, channels, self.backbone_name, random_backbone = build_sfnet_backbone(backbone, weights)
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.adapt3 = AdaptationLayer(channels[0], 5)
        self.adapt4 = AdaptationLayer(channels[1], 3)
        self.beta, self.sigma, self.image_size = float(beta), sigma, image_size
        self.mark_untrained(*(["backbone"] if random_backbone else []), "adaptation layers")
        if checkpoint is not None:
            self.load_checkpoint(checkpoint)
        self.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.features.eval()  # the backbone is frozen, BN statistics included (as published)
        return self

    def trainable_parameters(self) -> List[nn.Parameter]:
        return list(self.adapt3.parameters()) + list(self.adapt4.parameters())

    def load_checkpoint(self, path_or_sd) -> None:
        """Load the adaptation layers strictly from a checkpoint file or a loaded dict of any layout
        :func:`convert_published_state_dict` accepts. Files are read with
        :func:`semcorr.checkpoints.load_checkpoint` (``weights_only``). The published ``eval_pascal.py`` loads with
        ``strict=False``; here every missing, unexpected or mis-shaped tensor raises a :class:`CheckpointError`
        naming it, except BN ``num_batches_tracked``, which checkpoints of PyTorch < 0.4.1 lack and which
        inference does not use."""
        sd = load_checkpoint(path_or_sd) if isinstance(path_or_sd, (str, os.PathLike)) else path_or_sd
        mapped = convert_published_state_dict(sd)
        own = {k: v for k, v in self.state_dict().items() if k.startswith(("adapt3.", "adapt4."))
               and not (k.endswith("num_batches_tracked") and k not in mapped)}
        check_keys(own, mapped, "SFNet adaptation-layer")
        self.load_state_dict(mapped, strict=False)  # keys checked above; the backbone is not in SFNet checkpoints
        self.mark_trained("adaptation layers")

    # ---- the network --------------------------------------------------------------------------------
    def _prepare(self, img):
        if self.image_size is not None and tuple(img.shape[-2:]) != (self.image_size, self.image_size):
            img = F.interpolate(img, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return img

    def adapted_features(self, img: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        f3, f4 = self.features(img)[:2]
        f3, f4 = self.adapt3(f3), self.adapt4(f4)
        f4 = F.interpolate(f4, size=tuple(f3.shape[-2:]), mode="bilinear", align_corners=True)
        return f3, f4

    def correlation(self, src_img, tgt_img) -> torch.Tensor:
        """Source-major (B, Hs, Ws, Ht, Wt) product of the ReLU'd cosine correlations of both levels."""
        s3, s4 = self.adapted_features(src_img)
        t3, t4 = self.adapted_features(tgt_img)
        return ops.corr4d(s3, t3, relu=True) * ops.corr4d(s4, t4, relu=True)

    def flows(self, src_img, tgt_img) -> Dict[str, torch.Tensor]:
        """Both match fields on the grids: ``grid_S2T`` (B, Hs, Ws, 2) normalised over the target grid, ``grid_T2S``
        (B, Ht, Wt, 2) over the source grid, and ``corr`` (B, Hs, Ws, Ht, Wt). Images are used at their size."""
        corr = self.correlation(src_img, tgt_img)
        s2t = ops.kernel_soft_argmax(corr, beta=self.beta, sigma=self.sigma, normalize=True)
        t2s = ops.kernel_soft_argmax(corr.permute(0, 3, 4, 1, 2), beta=self.beta, sigma=self.sigma, normalize=True)
        return {"grid_S2T": s2t, "grid_T2S": t2s, "corr": corr}

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        src_size, tgt_size = tuple(src_img.shape[-2:]), tuple(tgt_img.shape[-2:])
        out = self.flows(self._prepare(src_img), self._prepare(tgt_img))
        corr = out["corr"]
        B, Hs, Ws, Ht, Wt = corr.shape
        field = grid_to_image_field(out["grid_S2T"], (Ht, Wt), tgt_size)
        back = grid_to_image_field(out["grid_T2S"], (Hs, Ws), src_size)
        # confidence: the best L2-normalised score of each source position (SFNet's normalised volume)
        flat = corr.reshape(B, Hs, Ws, Ht * Wt)
        conf = flat.amax(-1) / flat.norm(dim=-1).clamp_min(1e-3)
        # mutual: the round trip source -> target -> source lands within one source cell
        src_px = max(src_size[0] / Hs, src_size[1] / Ws)
        mutual = flow.consistency_mask(field, back, thresh=src_px, src_size=src_size, tgt_size=tgt_size)
        return Matches(field=field, confidence=conf, src_size=src_size, tgt_size=tgt_size,
                       extras={"mutual": mutual, "tgt_grid": (Ht, Wt), "field_T2S": back})
