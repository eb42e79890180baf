"""Nearest-neighbour matching: the simplest dense correspondence, and the baseline every learned method
improves on. Features -> ``semcorr_ext.ops.corr4d`` (cosine similarity) -> for each source cell the target
cell of highest similarity."""
from typing import Optional, Union

import torch
from torch import nn

from semcorr_ext import flow, ops

from ..backbone_factory import fuse_features, is_resnet, make_backbone
from . import register_model
from .base import CorrespondenceModel, Matches

__all__ = ["NearestNeighbour", "fuse_features"]


@register_model("nn")
class NearestNeighbour(CorrespondenceModel):
    """Dense nearest-neighbour matching on backbone features.

    Each source cell is matched to the target cell with the largest cosine similarity
    (``ops.corr4d(normalize=True)`` then argmax; ties go to the lowest flat target index). The match is the
    centre of that target cell in target-image coordinates.

    Args:
        backbone: ``"daisy"`` (default: hand-crafted, no weights, works offline), ``"hog"``, ``"resnet50"``,
            ``"resnet101"``, or an ``nn.Module`` mapping (B, 3, H, W) images in [0, 1] to a (B, C, h, w) map or a
            list of maps (fused with :func:`fuse_features`).
        stride: grid step in pixels for the hand-crafted descriptors (ignored for ResNets).
        **backbone_kwargs: passed to :func:`semcorr.backbones.build_backbone` (e.g. ``layers=("layer3",)``,
            ``weights=`` for ResNets — default ``"imagenet"``, which must be in the torch hub cache —, ``radius=``
            for DAISY).

    Returns :class:`Matches` with ``confidence`` = the maximum similarity and ``extras``:
    ``"mutual"`` (B, Hs, Ws) bool, True where the source cell is also the best match of its target cell;
    ``"index"`` (B, Hs, Ws) int64 flat target-grid index of the match; ``"tgt_grid"`` (Ht, Wt).
    """

    def __init__(self, backbone: Union[str, nn.Module] = "daisy", stride: Optional[int] = None, **backbone_kwargs):
        super().__init__()
        # randomly initialised ResNet features match nothing: ImageNet weights unless told otherwise (read from
        # the torch hub cache; a clear error if they are not there)
        weights = backbone_kwargs.pop("weights", "imagenet" if is_resnet(backbone) else "auto")
        net = make_backbone(backbone, "NearestNeighbour", weights, stride=stride, **backbone_kwargs)
        self.set_backbone(net)
        self.eval()

    def features(self, img: torch.Tensor) -> torch.Tensor:
        return fuse_features(self.backbone(img))

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        fs = self.features(src_img)
        ft = self.features(tgt_img)
        corr = ops.corr4d(fs, ft, normalize=True)  # (B, Hs, Ws, Ht, Wt)
        B, Hs, Ws, Ht, Wt = corr.shape
        flat = corr.reshape(B, Hs, Ws, Ht * Wt)
        conf, idx = flat.max(dim=-1)
        tgt_centres = flow.grid_coords(Ht, Wt, tgt_img.shape[-2:], dtype=fs.dtype, device=fs.device)
        field = tgt_centres.reshape(Ht * Wt, 2)[idx]  # (B, Hs, Ws, 2)
        # mutual: the best source cell of the matched target cell is this cell
        best_src = corr.reshape(B, Hs * Ws, Ht * Wt).argmax(dim=1)  # (B, Ht*Wt)
        back = torch.gather(best_src, 1, idx.reshape(B, -1)).reshape(B, Hs, Ws)
        mutual = back == torch.arange(Hs * Ws, device=idx.device).reshape(1, Hs, Ws)
        return Matches(field=field, confidence=conf, src_size=tuple(src_img.shape[-2:]),
                       tgt_size=tuple(tgt_img.shape[-2:]),
                       extras={"mutual": mutual, "index": idx, "tgt_grid": (Ht, Wt)})
