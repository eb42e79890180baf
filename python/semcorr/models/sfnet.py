"""SFNet (Lee, Kim, Ponce, Ham, CVPR 2019): object-aware semantic flow learned from binary foreground masks.

Architecture (paper Sec. 3.1 / 4.1): frozen ImageNet ResNet-101 features at conv4-23 (``layer3``, stride 16)
and conv5-3 (``layer4``, stride 32); one residual adaptation module per level (two residual conv + BN + ReLU
blocks: 5x5 on conv4, 3x3 on conv5, as in the published code); the conv5 maps are upsampled (bilinear,
align_corners=True) to the conv4 grid; the two ReLU'd cosine correlations (:func:`semcorr_ext.ops.corr4d` with
``relu=True``) are multiplied, L2-normalised over the target positions and turned into a dense match field
by the kernel soft-argmax (:func:`semcorr_ext.ops.kernel_soft_argmax`, beta = 50, sigma = 5), in both
directions. Only the adaptation layers are trained.

    model = build_model("sfnet")                          # resnet101 + ImageNet if cached, else random resnet18
    model = build_model("sfnet", backbone="tiny")         # small random CNN: CPU tests, smoke runs
    model = build_model("sfnet", checkpoint="best_checkpoint.pt")   # published weights (or ours)

The published checkpoint stores ``{"state_dict1": adap_layer_feat3 state, "state_dict2": adap_layer_feat4
state}`` with keys ``conv{1,2}.{0,1}.*`` (conv / BN of each residual block); :func:`convert_published_state_dict`
maps them (and full-model ``adap_layer_feat{3,4}.*`` keys) onto ours.
"""
import re
import warnings
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops
from semcorr.backbones import imagenet_cached, resolve_resnet_weights

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


def build_sfnet_backbone(name: str = "resnet101", weights="auto") -> Tuple[nn.Module, Tuple[int, int], str]:
    """(module returning [conv4 map, conv5 map], (c3, c4), description).

    ``name``: ``auto`` (resnet101 with cached ImageNet weights, else a random resnet18), ``resnet101`` (the
    paper), ``resnet50``, ``resnet18`` or ``tiny``. ``weights`` (ResNets): ``"auto"``
    = ImageNet from the torch hub cache when present, else random (with a warning); ``"imagenet"`` (required,
    error if missing), ``None`` (random) or a state-dict path. Never downloads.
    """
    if name == "auto":
        # the paper's backbone when its ImageNet weights are available offline; otherwise a random ResNet-18,
        # which keeps `semcorr match --method sfnet` to seconds on a CPU (untrained: for smoke runs only)
        if weights in ("auto", "imagenet") and imagenet_cached(101):
            return build_sfnet_backbone("resnet101", "imagenet")
        warnings.warn("SFNet: no ImageNet ResNet-101 weights in the torch hub cache; using a random ResNet-18 "
                      "backbone (matches will be poor). Pass backbone='resnet101', weights=<path> for the paper's.")
        return build_sfnet_backbone("resnet18", None)
    if name == "tiny":
        m = TinyFeatures()
        return m, m.channels, "tiny (random)"
    if name == "resnet18":
        m = _TorchvisionResNet18(None if weights in ("auto", None) else weights)
        return m, m.channels, "resnet18 (%s)" % ("random" if weights in ("auto", None) else weights)
    if name in ("resnet50", "resnet101"):
        from semcorr.backbones import ResNetFeatures

        depth = int(name[len("resnet"):])
        weights = resolve_resnet_weights(depth, weights, "SFNet")
        m = ResNetFeatures(depth=depth, layers=("layer3", "layer4"), weights=weights)
        return m, (1024, 2048), "%s (%s)" % (name, weights or "random")
    raise ValueError("SFNet backbone must be auto, resnet101, resnet50, resnet18 or tiny, got %r" % (name,))


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


def convert_published_state_dict(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Map a published SFNet checkpoint onto :class:`SFNet`'s adaptation-layer keys.

    Accepts the released layout ``{"state_dict1": {...}, "state_dict2": {...}}`` (adap_layer_feat3 / _feat4
    states with keys ``conv{k}.{0 conv | 1 BN}.<param>``), a full SFNet state dict (``adap_layer_feat3.conv1.0.weight``,
    ... ; the frozen ``feature_extraction.*`` keys are ignored) with or without a ``module.`` prefix, or our own
    keys (returned unchanged). Returns ``{"adapt3.blocks.{k-1}.{conv|bn}.<param>": tensor, ...}``.
    """
    if "state_dict1" in sd or "state_dict2" in sd:
        flat = {}
        for level, key in ((3, "state_dict1"), (4, "state_dict2")):
            for k, v in sd.get(key, {}).items():
                flat["adap_layer_feat%d.%s" % (level, k)] = v
        sd = flat
    elif "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    out = {}
    for k, v in sd.items():
        if k.startswith("module."):
            k = k[len("module."):]
        if k.startswith(("adapt3.", "adapt4.")):
            out[k] = v
            continue
        m = re.match(r"^adap_layer_feat([34])\.(.+)$", k)
        if m is None:
            continue  # feature_extraction.* (frozen ImageNet backbone) and anything unrelated
        p = _PUBLISHED_KEY.match(m.group(2))
        if p is None:
            raise KeyError("unrecognised SFNet adaptation-layer key %r" % (k,))
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

    backbone: ``"auto"`` (default: ``"resnet101"``, the paper, when its ImageNet weights are in the torch hub
        cache, else a random ``"resnet18"`` so that it runs offline in seconds), ``"resnet101"``, ``"resnet50"``,
        ``"resnet18"`` or ``"tiny"``, or an
        ``nn.Module`` returning ``[conv4 map, conv5 map]`` (then give ``channels``).
    weights: backbone weights (see :func:`build_sfnet_backbone`; default ``"auto"``: ImageNet if cached, else
        random with a warning; nothing is downloaded).
    checkpoint: path to a published SFNet checkpoint or one written by ``semcorr train sfnet`` (the adaptation
        layers; :func:`convert_published_state_dict`).
    beta, sigma: kernel soft-argmax temperature and Gaussian std in conv4 cells (paper: 50, 5; ``sigma=None`` =
        plain soft-argmax).
    image_size: square working resolution: images are resized to it (paper: 320 -> 20x20 grids); ``None`` keeps
        the given size.
    """

    def __init__(self, backbone: Union[str, nn.Module] = "auto", weights="auto",
                 checkpoint: Optional[str] = None, beta: float = 50.0, sigma: Optional[float] = 5.0,
                 image_size: Optional[int] = 320, channels: Optional[Tuple[int, int]] = None):
        super().__init__()
        if isinstance(backbone, nn.Module):
            if channels is None:
                raise ValueError("SFNet: give channels=(c3, c4) with a custom backbone module")
            self.features, self.backbone_name = backbone, type(backbone).__name__
        else:
            self.features, channels, self.backbone_name = build_sfnet_backbone(backbone, weights)
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.adapt3 = AdaptationLayer(channels[0], 5)
        self.adapt4 = AdaptationLayer(channels[1], 3)
        self.beta, self.sigma, self.image_size = float(beta), sigma, image_size
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
        sd = path_or_sd
        if not isinstance(sd, dict):
            sd = torch.load(path_or_sd, map_location="cpu", weights_only=False)
            if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
                sd = sd["model"]
        mapped = convert_published_state_dict(sd)
        own = {k: v for k, v in self.state_dict().items() if k.startswith(("adapt3.", "adapt4."))}
        missing = sorted(set(own) - set(mapped))
        if missing:
            raise KeyError("SFNet checkpoint lacks %d adaptation-layer tensors, e.g. %s" % (len(missing), missing[:3]))
        for k, v in mapped.items():
            if k in own and tuple(own[k].shape) != tuple(v.shape):
                raise ValueError("SFNet checkpoint: %s has shape %s, the model expects %s (backbone channels?)"
                                 % (k, tuple(v.shape), tuple(own[k].shape)))
        self.load_state_dict(mapped, strict=False)

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
