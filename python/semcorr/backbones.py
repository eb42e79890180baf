"""Dense feature extractors: torchvision ResNet feature pyramids and hand-crafted descriptors (DAISY, HOG).

All take (B, 3, H, W) float RGB images with values in [0, 1] and do their own input normalisation.

* :class:`ResNetFeatures` — ResNet-50/101 activations at chosen layers (list of (B, C, H/s, W/s)).
  Weights are never downloaded: ``weights="imagenet"`` loads torchvision's ImageNet checkpoint from the
  torch hub cache and raises a :class:`FileNotFoundError` saying how to put it there if it is missing.
* :class:`DenseDescriptor` — DAISY or HOG descriptors from scikit-image on a regular grid, no weights, works
  offline. Grid cells tile the image uniformly (the convention of :mod:`semcorr_ext.flow`): with
  ``Hg = round(H / stride)`` cells, cell i is centred at pixel ``(i + 0.5) * H / Hg - 0.5``; the image is
  resampled so that the descriptor centres fall exactly there.
"""
import os
import warnings
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResNetFeatures", "DenseDescriptor", "build_backbone", "imagenet_checkpoint_path", "BACKBONES"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_RESNET_STRIDES = {"conv1": 2, "stem": 4, "layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
_RESNET_ORDER = ["conv1", "stem", "layer1", "layer2", "layer3", "layer4"]


def _resnet_ctor_and_weights(depth: int):
    import torchvision.models as tvm

    if depth == 50:
        return tvm.resnet50, tvm.ResNet50_Weights
    if depth == 101:
        return tvm.resnet101, tvm.ResNet101_Weights
    raise ValueError("depth must be 50 or 101, got %r" % (depth,))


def imagenet_checkpoint_path(depth: int, variant: str = "IMAGENET1K_V1") -> str:
    """Where torchvision caches the ImageNet checkpoint of ResNet-``depth`` (it may not exist)."""
    _, enum = _resnet_ctor_and_weights(depth)
    w = enum[variant]
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(w.url))


def imagenet_cached(depth: int) -> bool:
    """Whether torchvision's ImageNet checkpoint of ResNet-``depth`` is in the torch hub cache."""
    return os.path.isfile(imagenet_checkpoint_path(depth))


def resolve_resnet_weights(depth: int, weights, model: str):
    """``weights="auto"`` -> ``"imagenet"`` when that checkpoint is cached, else ``None`` (a random backbone)
    with a warning naming ``model``; any other value is returned unchanged. Never downloads."""
    if weights != "auto":
        return weights
    if imagenet_cached(depth):
        return "imagenet"
    warnings.warn("%s: ImageNet weights for ResNet-%d are not in the torch hub cache; using a random backbone "
                  "(matches will be meaningless). See semcorr.backbones.ResNetFeatures." % (model, depth))
    return None


def _load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError("%s does not contain a state dict (got %s)" % (path, type(sd).__name__))
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}


def _parse_layer(name: str):
    """'layer3' -> ('layer3', None); 'layer3.5' -> ('layer3', 5); 'stem' -> ('stem', None)."""
    base, _, block = name.partition(".")
    if base not in _RESNET_STRIDES or (block and not base.startswith("layer")):
        raise ValueError("unknown ResNet layer %r; use one of %s or 'layerK.i' (block i of layerK)"
                         % (name, ", ".join(_RESNET_ORDER)))
    return base, (int(block) if block else None)


class ResNetFeatures(nn.Module):
    """Activations of a torchvision ResNet-50/101 at the requested layers.

    Args:
        depth: 50 or 101.
        layers: names among ``conv1`` (after conv1+bn+relu, stride 2), ``stem`` (after the max-pool, stride
            4), ``layer1``..``layer4`` (strides 4, 8, 16, 32) and ``layerK.i`` (the output of bottleneck block i
            of layerK, as used by hyperpixel methods). Output order follows this argument.
        weights: ``None`` (random init), ``"imagenet"`` (torchvision's IMAGENET1K_V1, the weights the
            published correspondence methods used; ``"IMAGENET1K_V2"`` also accepted) or a path to a state dict
            of a torchvision ResNet (``module.`` prefixes and a ``state_dict`` wrapper are handled).
            ImageNet weights are read from the torch hub cache only, never downloaded: if they are missing a
            FileNotFoundError tells you the file and how to fetch it.

    ``forward(img)`` takes (B, 3, H, W) RGB in [0, 1] (ImageNet mean/std normalisation is applied inside) and
    returns a list of (B, C, h, w) tensors. Layers deeper than the deepest requested one are not kept.
    """

    def __init__(self, depth: int = 101, layers: Sequence[str] = ("layer3",),
                 weights: Optional[Union[str, os.PathLike]] = None):
        super().__init__()
        if isinstance(layers, str):
            layers = (layers,)
        if not layers:
            raise ValueError("layers must name at least one layer")
        self.depth = depth
        self.layers = tuple(layers)
        parsed = [_parse_layer(n) for n in self.layers]
        ctor, enum = _resnet_ctor_and_weights(depth)
        net = ctor(weights=None)
        if weights is not None:
            net.load_state_dict(self._resolve_weights(weights, depth, enum))
        for base, block in parsed:
            if block is not None and not 0 <= block < len(getattr(net, base)):
                raise ValueError("%s has %d blocks, got %s.%d" % (base, len(getattr(net, base)), base, block))
        deepest = max(_RESNET_ORDER.index(b) for b, _ in parsed)
        self.stem_conv = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.maxpool = net.maxpool
        self.stages = nn.ModuleDict(
            {n: getattr(net, n) for n in _RESNET_ORDER[2:deepest + 1] if n.startswith("layer")})
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._parsed = parsed

    @staticmethod
    def _resolve_weights(weights, depth, enum):
        if isinstance(weights, (str, os.PathLike)) and os.path.isfile(os.fspath(weights)):
            return _load_state_dict(os.fspath(weights))
        if isinstance(weights, str):
            variant = "IMAGENET1K_V1" if weights.lower() == "imagenet" else weights
            if variant in enum.__members__:
                path = imagenet_checkpoint_path(depth, variant)
                if not os.path.isfile(path):
                    raise FileNotFoundError(
                        "ImageNet weights for ResNet-%d (%s) are not in the torch hub cache: %s is missing. "
                        "semcorr never downloads weights itself. Fetch them once on a machine with internet, "
                        "e.g. `python -c \"import torchvision; torchvision.models.resnet%d(weights='%s')\"` "
                        "(or download %s into %s), or pass weights=<path to a state dict>."
                        % (depth, variant, path, depth, variant, enum[variant].url, os.path.dirname(path)))
                return _load_state_dict(path)
        raise ValueError("weights must be None, 'imagenet', a torchvision variant name (%s) or an existing file; "
                         "got %r" % (", ".join(enum.__members__), weights))

    @property
    def strides(self) -> List[int]:
        """Stride in pixels of each output, in the order of ``layers``."""
        return [_RESNET_STRIDES[b] for b, _ in self._parsed]

    def forward(self, img: torch.Tensor) -> List[torch.Tensor]:
        x = (img - self.mean) / self.std
        got = {}
        x = self.stem_conv(x)
        got["conv1"] = x
        x = self.maxpool(x)
        got["stem"] = x
        wanted_blocks = {(b, i) for b, i in self._parsed if i is not None}
        for name, stage in self.stages.items():
            for i, block in enumerate(stage):
                x = block(x)
                if (name, i) in wanted_blocks:
                    got["%s.%d" % (name, i)] = x
            got[name] = x
        return [got[n] for n in self.layers]


# --------------------------------------------------------------------------------------------------------
# Hand-crafted dense descriptors


def _gray(img: torch.Tensor) -> torch.Tensor:
    w = img.new_tensor([0.2125, 0.7154, 0.0721]).view(1, 3, 1, 1)
    return (img * w).sum(1, keepdim=True)


def _resample_affine(gray: torch.Tensor, out_hw, a: Sequence[float], b: Sequence[float]) -> torch.Tensor:
    """Sample a (B, 1, H, W) image at pixel positions y = a[0] * r + b[0], x = a[1] * c + b[1] for output
    pixels (r, c); bilinear with reflection at the borders."""
    H, W = gray.shape[-2:]
    ys = torch.arange(out_hw[0], dtype=torch.float64) * a[0] + b[0]
    xs = torch.arange(out_hw[1], dtype=torch.float64) * a[1] + b[1]
    yy, xx = torch.meshgrid(ys / max(H - 1, 1) * 2 - 1, xs / max(W - 1, 1) * 2 - 1, indexing="ij")
    grid = torch.stack([xx, yy], -1).to(gray).unsqueeze(0).expand(gray.shape[0], -1, -1, -1)
    return F.grid_sample(gray, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


class DenseDescriptor(nn.Module):
    """DAISY or HOG descriptors (scikit-image) on a regular grid: (B, 3, H, W) -> (B, C, Hg, Wg) float32.

    Needs no weights. ``Hg = max(1, round(H / stride))`` (likewise Wg); cell (i, j) is centred at pixel
    ``((j + 0.5) * W / Wg - 0.5, (i + 0.5) * H / Hg - 0.5)`` exactly (the image is resampled by a factor
    ``H / (Hg * stride)`` ~ 1 and padded by reflection so that skimage's descriptor centres land there).
    Computed on the CPU with NumPy; the result is moved to the input's device. Not differentiable.

    Args:
        kind: ``"daisy"`` (C = (rings * histograms + 1) * orientations, default 200) or ``"hog"``
            (C = 9 * orientations: 3x3 blocks of cells of ``stride`` pixels centred on each cell, L2-Hys).
        stride: grid step in pixels.
        radius, rings, histograms, orientations: DAISY parameters (``orientations`` also used by HOG,
            default 8 for DAISY, 9 for HOG).
    """

    def __init__(self, kind: str = "daisy", stride: int = 8, radius: int = 15, rings: int = 3,
                 histograms: int = 8, orientations: Optional[int] = None):
        super().__init__()
        if kind not in ("daisy", "hog"):
            raise ValueError("kind must be 'daisy' or 'hog', got %r" % (kind,))
        if int(stride) < 1:
            raise ValueError("stride must be >= 1, got %r" % (stride,))
        self.kind = kind
        self.stride = int(stride)
        self.radius = int(radius)
        self.rings = int(rings)
        self.histograms = int(histograms)
        self.orientations = int(orientations if orientations is not None else (8 if kind == "daisy" else 9))

    @property
    def channels(self) -> int:
        if self.kind == "daisy":
            return (self.rings * self.histograms + 1) * self.orientations
        return 9 * self.orientations

    @property
    def strides(self) -> List[int]:
        return [self.stride]

    def grid_size(self, H: int, W: int):
        return max(1, int(round(H / self.stride))), max(1, int(round(W / self.stride)))

    def extra_repr(self) -> str:
        return "kind=%s, stride=%d, channels=%d" % (self.kind, self.stride, self.channels)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError("img must be (B, 3, H, W), got shape %s" % (tuple(img.shape),))
        H, W = img.shape[-2:]
        Hg, Wg = self.grid_size(H, W)
        s = self.stride
        gray = _gray(img.detach().to("cpu", torch.float64))
        # Output pixel q of the resampled image J sits at original pixel a * q + b, one cell = s pixels of J.
        a = (H / (Hg * s), W / (Wg * s))
        if self.kind == "daisy":
            # skimage puts descriptor k at J pixel radius + k * s; we want it at (k + 0.5) * H / Hg - 0.5.
            r = self.radius
            out_hw = (2 * r + (Hg - 1) * s + 1, 2 * r + (Wg - 1) * s + 1)
            b = tuple(0.5 * n / g - 0.5 - ai * r for n, g, ai in zip((H, W), (Hg, Wg), a))
        else:
            # HOG cell c covers J pixels [c s, (c + 1) s); with one cell of padding, the 3x3 block j is centred
            # at J pixel (j + 1.5) * s - 0.5, which must be original (j + 0.5) * H / Hg - 0.5.
            out_hw = ((Hg + 2) * s, (Wg + 2) * s)
            b = tuple(0.5 * n / g - 0.5 - ai * (1.5 * s - 0.5) for n, g, ai in zip((H, W), (Hg, Wg), a))
        J = _resample_affine(gray, out_hw, a, b)[:, 0].numpy()
        descs = [self._describe(j, Hg, Wg) for j in J]
        out = torch.from_numpy(np.stack(descs)).permute(0, 3, 1, 2).contiguous()
        return out.to(device=img.device, dtype=torch.float32)

    def _describe(self, image: np.ndarray, Hg: int, Wg: int) -> np.ndarray:
        from skimage.feature import daisy, hog

        if self.kind == "daisy":
            d = daisy(image, step=self.stride, radius=self.radius, rings=self.rings, histograms=self.histograms,
                      orientations=self.orientations, normalization="l2")
        else:
            d = hog(image, orientations=self.orientations, pixels_per_cell=(self.stride, self.stride),
                    cells_per_block=(3, 3), block_norm="L2-Hys", feature_vector=False)
            d = d.reshape(d.shape[0], d.shape[1], -1)
        if d.shape[:2] != (Hg, Wg):  # pragma: no cover - guards the geometry above
            raise RuntimeError("descriptor grid %s != expected %s" % (d.shape[:2], (Hg, Wg)))
        return d.astype(np.float32)


#: names accepted by :func:`build_backbone` (the DINOv2 ones: :data:`semcorr.backbones_vit.DINOV2_MODELS`)
BACKBONES = ("daisy", "hog", "resnet50", "resnet101", "dinov2_vits14", "dinov2_vitb14", "dinov2_vitl14", "dinov2_vitg14",
             "dinov2_vits14_reg", "dinov2_vitb14_reg", "dinov2_vitl14_reg", "dinov2_vitg14_reg")


def build_backbone(name: str, **kwargs) -> nn.Module:
    """``"daisy"`` / ``"hog"`` -> :class:`DenseDescriptor`; ``"resnet50"`` / ``"resnet101"`` ->
    :class:`ResNetFeatures` (default layer3, random weights unless ``weights=`` is given)."""
    if name in ("daisy", "hog"):
        return DenseDescriptor(kind=name, **kwargs)
    if name in ("resnet50", "resnet101"):
        return ResNetFeatures(depth=int(name[len("resnet"):]), **kwargs)
    if name.startswith("dinov2_"):
        from .backbones_vit import DINOv2Features  # imports timm only when asked for
        return DINOv2Features(name, **kwargs)
    raise ValueError("unknown backbone %r; choose from %s" % (name, ", ".join(BACKBONES)))
