"""The one backbone set-up every model calls: a backbone name (or a module) -> the feature extractor, the name it
is shown under and whether its weights are random (the model then marks ``"backbone"`` UNTRAINED).

Models differ only in their published defaults, which they pass in: the ResNet layers (NC-Net and Sparse NC-Net
layer3, PMNC layer4, SFNet layer3 + layer4...), the weights default (``"auto"``: ImageNet from the torch hub cache
when it is there, else random with a warning, :func:`semcorr.backbones.resolve_resnet_weights`), and the grid step
of the hand-crafted descriptors. Multi-layer outputs become one map with :func:`fuse_features`.
"""
import os
from typing import List, NamedTuple, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import build_backbone, resolve_resnet_weights

__all__ = ["ModelBackbone", "make_backbone", "is_resnet", "resnet_depth", "fuse_features"]

#: grid step (pixels) of DAISY / HOG when the model does not say
DESCRIPTOR_STRIDE = 8


def is_resnet(backbone) -> bool:
    """Whether ``backbone`` names a torchvision ResNet (``"resnet50"``, ``"resnet101"``...)."""
    return isinstance(backbone, str) and backbone.startswith("resnet")


def resnet_depth(backbone: str) -> int:
    """``"resnet101"`` -> 101."""
    return int(backbone[len("resnet"):])


class ModelBackbone(NamedTuple):
    """What :func:`make_backbone` built."""

    module: nn.Module
    #: the name given (``"resnet101"``, ``"daisy"``) or the class name of a user's module
    name: str
    #: resolved ResNet / DINOv2 weights (``None``: random); ``None`` for other backbones too
    weights: object
    #: a ResNet or DINOv2 with random weights (a user's module is the user's business: False)
    random: bool
    resnet: bool

    def label(self, checkpoint: bool = False) -> str:
        """``"resnet101 (imagenet)"``, ``"resnet101 (random)"`` or, when a checkpoint will load the backbone,
        ``"resnet101 (checkpoint)"``; other backbones: their name."""
        if not self.resnet:
            return self.name
        return "%s (%s)" % (self.name, self.weights if self.weights is not None else
                            ("checkpoint" if checkpoint else "random"))


def make_backbone(backbone: Union[str, nn.Module], model: str, weights="auto",
                  default_layers: Optional[Sequence[str]] = None, stride: Optional[int] = None,
                  **kwargs) -> ModelBackbone:
    """Build ``backbone`` for ``model`` (named in the warning when ``weights="auto"`` finds no ImageNet weights).

    ``weights`` and ``default_layers`` (the model's; ``layers=`` in ``kwargs`` wins) apply to ResNets, ``weights``
    to DINOv2 too (``"auto"``: ``"hub"`` when cached, else random); ``stride`` (default 8) to DAISY / HOG; the
    other ``kwargs`` go to :func:`semcorr.backbones.build_backbone`.
    An ``nn.Module`` is used as it is."""
    if not isinstance(backbone, str):
        return ModelBackbone(backbone, type(backbone).__name__, None, False, False)
    if is_resnet(backbone):
        weights = resolve_resnet_weights(resnet_depth(backbone), weights, model)
        if default_layers is not None:
            kwargs.setdefault("layers", tuple(default_layers))
        return ModelBackbone(build_backbone(backbone, weights=weights, **kwargs), backbone, weights, weights is None,
                             True)
    if backbone.startswith("dinov2_"):
        from .backbones_vit import dinov2_hub_checkpoint_path

        if weights == "auto":  # no warning of its own: the model's UNTRAINED line names the random backbone
            weights = "hub" if os.path.isfile(dinov2_hub_checkpoint_path(backbone)) else None
        return ModelBackbone(build_backbone(backbone, weights=weights, **kwargs), backbone, weights, weights is None,
                             False)
    if backbone in ("daisy", "hog"):
        kwargs.setdefault("stride", DESCRIPTOR_STRIDE if stride is None else stride)
    return ModelBackbone(build_backbone(backbone, **kwargs), backbone, None, False, False)


def fuse_features(feats: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
    """One (B, C, h, w) map from a backbone output: a tensor is returned as is; a list of maps is
    L2-normalised per map, resized (bilinear) to the largest grid and concatenated along channels."""
    if isinstance(feats, torch.Tensor):
        return feats
    if len(feats) == 1:
        return feats[0]
    size = max((f.shape[-2:] for f in feats), key=lambda s: s[0] * s[1])
    out = []
    for f in feats:
        f = F.normalize(f, dim=1)
        if f.shape[-2:] != size:
            f = F.interpolate(f, size=tuple(size), mode="bilinear", align_corners=False)
        out.append(f)
    return torch.cat(out, 1)
