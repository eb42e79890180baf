"""What every correspondence model returns (:class:`Matches`) and the interface it implements
(:class:`CorrespondenceModel`).

Coordinate conventions are those of :mod:`semcorr_ext.flow`: points are (x, y), sizes (H, W), and a match
field holds, for each source-grid cell, the matched target position normalised over the target image with
align_corners=True (``x_pix = (x + 1) / 2 * (W - 1)``).
"""
import abc
import warnings
from dataclasses import dataclass, field as dc_field
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from semcorr_ext import flow

__all__ = ["Matches", "CorrespondenceModel", "untrained_line"]


@dataclass
class Matches:
    """Dense matches from a source image to a target image.

    Attributes:
        field: (B, Hs, Ws, 2) float, for each cell of the source grid the matched target position (x, y),
            normalised over the target image (align_corners=True). The source grid tiles the source image:
            cell (i, j) is centred at pixel ((j + 0.5) * W / Ws - 0.5, (i + 0.5) * H / Hs - 0.5).
        confidence: (B, Hs, Ws) float, larger = more confident (model specific: e.g. max correlation).
        src_size, tgt_size: (H, W) in pixels of the images the model was given.
        extras: anything else a model wants to return (e.g. ``"mutual"``: (B, Hs, Ws) bool mask of mutual
            nearest neighbours, ``"corr"``: the correlation volume).
    """

    field: torch.Tensor
    confidence: torch.Tensor
    src_size: Tuple[int, int]
    tgt_size: Tuple[int, int]
    extras: Dict[str, Any] = dc_field(default_factory=dict)

    def __post_init__(self):
        if self.field.dim() != 4 or self.field.shape[-1] != 2:
            raise ValueError("Matches.field must be (B, Hs, Ws, 2), got %s" % (tuple(self.field.shape),))
        if tuple(self.confidence.shape) != tuple(self.field.shape[:3]):
            raise ValueError("Matches.confidence must be (B, Hs, Ws) = %s, got %s"
                             % (tuple(self.field.shape[:3]), tuple(self.confidence.shape)))
        self.src_size = (int(self.src_size[0]), int(self.src_size[1]))
        self.tgt_size = (int(self.tgt_size[0]), int(self.tgt_size[1]))

    @property
    def grid_size(self) -> Tuple[int, int]:
        """(Hs, Ws) of the source grid."""
        return int(self.field.shape[1]), int(self.field.shape[2])

    def transfer_keypoints(self, src_kps: torch.Tensor) -> torch.Tensor:
        """Source keypoints (B, N, 2) or (N, 2) in source pixels -> target pixels of the same shape.

        Bilinear interpolation of the match field between source cell centres
        (:func:`semcorr_ext.flow.transfer_keypoints`); padded keypoints (any coordinate < 0) stay (-1, -1).
        """
        squeeze = src_kps.dim() == 2
        kps = src_kps.unsqueeze(0) if squeeze else src_kps
        if kps.shape[0] == 1 and self.field.shape[0] > 1:
            kps = kps.expand(self.field.shape[0], -1, -1)
        out = flow.transfer_keypoints(self.field, kps.to(self.field.device), self.src_size, self.tgt_size)
        return out[0] if squeeze else out

    def target_pixels(self) -> torch.Tensor:
        """The match field in target pixels: (B, Hs, Ws, 2)."""
        return flow.unnormalize_coords(self.field, self.tgt_size)

    def source_pixels(self) -> torch.Tensor:
        """Source-grid cell centres in source pixels: (Hs, Ws, 2)."""
        Hs, Ws = self.grid_size
        g = flow.grid_coords(Hs, Ws, self.src_size, dtype=self.field.dtype, device=self.field.device)
        return flow.unnormalize_coords(g, self.src_size)

    def to(self, device) -> "Matches":
        extras = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.extras.items()}
        return Matches(self.field.to(device), self.confidence.to(device), self.src_size, self.tgt_size, extras)


def _check_images(src_img: torch.Tensor, tgt_img: torch.Tensor) -> None:
    for name, img in (("src_img", src_img), ("tgt_img", tgt_img)):
        if not isinstance(img, torch.Tensor):
            raise TypeError("%s must be a torch.Tensor, got %s" % (name, type(img).__name__))
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError("%s must be (B, 3, H, W), got shape %s" % (name, tuple(img.shape)))
        if not img.is_floating_point():
            raise TypeError("%s must be a float tensor with values in [0, 1], got %s" % (name, img.dtype))
    if src_img.shape[0] != tgt_img.shape[0]:
        raise ValueError("src_img and tgt_img batch sizes differ: %d vs %d" % (src_img.shape[0], tgt_img.shape[0]))


class CorrespondenceModel(nn.Module, abc.ABC):
    """Base class of every model: ``forward(src_img, tgt_img) -> Matches``.

    Images are (B, 3, H, W) float tensors with values in [0, 1] (RGB); each model applies its own input
    normalisation. The source and target may have different sizes.
    Subclasses implement :meth:`forward` (call :meth:`check_images` first) and register themselves with
    ``@register_model("name")`` from :mod:`semcorr.models`.
    """

    #: registry name, set by ``register_model``
    name: str = "?"

    @staticmethod
    def check_images(src_img: torch.Tensor, tgt_img: torch.Tensor) -> None:
        _check_images(src_img, tgt_img)

    @abc.abstractmethod
    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- random weights: every model says which of its parts are untrained ----
    def set_backbone(self, net, name: Optional[str] = None) -> None:
        """Hold the feature extractor :func:`semcorr.backbone_factory.make_backbone` built as ``self.backbone``,
        shown as ``name`` (default: its name); a random one is marked untrained."""
        self.backbone = net.module
        self.backbone_name = net.name if name is None else name
        if net.random:
            self.mark_untrained("backbone")

    def mark_untrained(self, *parts: str) -> None:
        """Record parts (e.g. ``"backbone"``, ``"consensus"``) whose weights are random."""
        current = self.__dict__.setdefault("_untrained_parts", [])
        current.extend(p for p in parts if p not in current)

    def mark_trained(self, *parts: str) -> None:
        """Record that these parts now hold trained weights (a checkpoint loaded them)."""
        current = self.__dict__.setdefault("_untrained_parts", [])
        current[:] = [p for p in current if p not in parts]

    def untrained_parts(self) -> List[str]:
        """Names of the parts whose weights are random; empty for a fully trained (or weight-free) model. A
        ``backbone`` module that says ``pretrained = False`` (e.g. a DINOv2 ViT built without weights) counts
        as untrained whichever model holds it."""
        parts = list(self.__dict__.get("_untrained_parts", []))
        if getattr(self._modules.get("backbone"), "pretrained", None) is False and "backbone" not in parts:
            parts.insert(0, "backbone")
        return parts

    def warn_if_untrained(self) -> None:
        """Warn once per model object when any part has random weights (``build_model`` calls it)."""
        line = untrained_line(self)
        if line and not self.__dict__.get("_untrained_warned", False):
            self.__dict__["_untrained_warned"] = True
            warnings.warn(line, UserWarning, stacklevel=3)

    @property
    def device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    @torch.no_grad()
    def match(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        """``forward`` in eval mode without gradients, images moved to the model's device."""
        was_training = self.training
        self.eval()
        try:
            dev = self.device
            return self.forward(src_img.to(dev), tgt_img.to(dev))
        finally:
            self.train(was_training)


def untrained_line(model: CorrespondenceModel) -> Optional[str]:
    """``"UNTRAINED: <name> has random weights in <parts> ..."`` for a model with random parts, else None. The
    CLI prints it beside every figure computed with such a model."""
    parts = model.untrained_parts() if isinstance(model, CorrespondenceModel) else []
    if not parts:
        return None
    return ("UNTRAINED: %s has random weights in %s; its matches and scores are not those of the published "
            "method (load a checkpoint or weights)" % (getattr(model, "name", type(model).__name__), ", ".join(parts)))
