"""NC-Net: Neighbourhood Consensus Networks (Rocco et al., NeurIPS 2018).

    from semcorr.models import build_model
    model = build_model("ncnet")                               # ResNet-101 layer3 (ImageNet if cached)
    model = build_model("ncnet", checkpoint="ncnet_pfpascal.pth.tar")   # the published weights
    model = build_model("ncnet", backbone="resnet50", image_size=160)   # faster

Pipeline: ResNet layer3 features -> L2 norm + dense 4D correlation (``ops.corr4d``) -> [optional 4D max-pool
relocalisation (``ops.max_pool4d``)] -> mutual matching -> symmetric neighbourhood consensus (``Conv4d``
stack, default kernels [5, 5, 5], channels [16, 16, 1]) -> mutual matching. Readout: for each source cell,
softmax over the target cells; the match is the argmax and the confidence its probability.
Training: weak supervision (:func:`semcorr.losses.ncnet.weak_loss`).
"""
import argparse
import os
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops
from semcorr.backbones import resolve_resnet_weights
from semcorr_ext.nn import Conv4d, NeighConsensus

from . import register_model
from .base import CorrespondenceModel, Matches
from .nearest_neighbour import fuse_features

__all__ = ["NCNet", "convert_ncnet_state_dict", "load_ncnet_checkpoint"]

# NC-Net's FeatureExtraction.model is nn.Sequential(conv1, bn1, relu, maxpool, layer1, layer2, layer3): the
# published checkpoints name the backbone by those indices. Our ResNetFeatures names them as below.
_NCNET_BACKBONE_PREFIXES = {
    "FeatureExtraction.model.0.": "backbone.stem_conv.0.",
    "FeatureExtraction.model.1.": "backbone.stem_conv.1.",
    "FeatureExtraction.model.4.": "backbone.stages.layer1.",
    "FeatureExtraction.model.5.": "backbone.stages.layer2.",
    "FeatureExtraction.model.6.": "backbone.stages.layer3.",
}


def _read_checkpoint(path_or_state) -> Dict[str, torch.Tensor]:
    """A state dict from a path or a dict; unwraps ``{"state_dict": ...}`` (NC-Net's ``.pth.tar`` also holds an
    argparse ``args`` entry, allowed explicitly when unpickling with ``weights_only``)."""
    if isinstance(path_or_state, (str, os.PathLike)):
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(os.fspath(path_or_state), map_location="cpu", weights_only=True)
    else:
        state = path_or_state
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError("NC-Net checkpoint: expected a state dict (or {'state_dict': ...}), got %s" % type(state).__name__)
    return OrderedDict(((k[len("module."):] if k.startswith("module.") else k).replace("vgg", "model"), v)
                       for k, v in state.items())


def convert_ncnet_state_dict(state) -> Dict[str, torch.Tensor]:
    """NC-Net's published state dict (``FeatureExtraction.model.<i>.*``, ``NeighConsensus.conv.<2i>.weight``
    stored as ``[k1, Cout, Cin, k2, k3, k4]``) -> the state dict of :class:`NCNet` (``backbone.*``,
    ``consensus.conv.<2i>.weight`` as ``(Cout, Cin, k1, k2, k3, k4)``). Keys already in our layout pass
    through; other keys (e.g. ``num_batches_tracked``) are kept as they are."""
    sd = _read_checkpoint(state)
    out = OrderedDict()
    for k, v in sd.items():
        if k.startswith("NeighConsensus."):
            nk = "consensus." + k[len("NeighConsensus."):]
            if nk.endswith(".weight") and v.dim() == 6:
                v = Conv4d.ncnet_to_standard(v)
            out[nk] = v
            continue
        for old, new in _NCNET_BACKBONE_PREFIXES.items():
            if k.startswith(old):
                out[new + k[len(old):]] = v
                break
        else:
            out[k] = v
    return out


def _consensus_layout(sd: Dict[str, torch.Tensor]):
    """(kernel_sizes, channels) of the consensus weights of a converted state dict."""
    idx = sorted(int(k.split(".")[2]) for k in sd if k.startswith("consensus.conv.") and k.endswith(".weight"))
    ks, ch = [], []
    for i in idx:
        w = sd["consensus.conv.%d.weight" % i]
        ks.append(tuple(int(s) for s in w.shape[2:]) if len(set(w.shape[2:])) > 1 else int(w.shape[2]))
        ch.append(int(w.shape[0]))
    return ks, ch


@register_model("ncnet")
class NCNet(CorrespondenceModel):
    """Dense NC-Net.

    Args:
        backbone: ``"resnet101"`` (default, layer3 as in NC-Net), ``"resnet50"``, ``"daisy"``/``"hog"``
            (hand-crafted, offline) or an ``nn.Module`` mapping images to a (B, C, h, w) map (or a list).
        weights: ResNet weights: ``"auto"`` (ImageNet if in the torch hub cache, else random with a warning),
            ``"imagenet"``, ``None`` (random) or a path to a torchvision state dict.
        kernel_sizes, channels, symmetric: the consensus stack (NC-Net PF-Pascal: [5, 5, 5], [16, 16, 1]).
        relocalization_k: > 1 enables NC-Net's relocalisation: the correlation volume is max-pooled over
            k^4 blocks (``ops.max_pool4d``) before filtering, and each match is refined to the position of the
            block maximum in the full-resolution target grid.
        image_size: resize both images so that the longer side is this many pixels before the backbone
            (None: as given). Smaller is faster (the consensus cost grows with the 4th power of the grid).
        checkpoint: NC-Net's published checkpoint (``.pth.tar``) or a state dict of this module; the consensus
            layout (kernel sizes, channels) is taken from it.
        **backbone_kwargs: passed to :func:`semcorr.backbones.build_backbone` for named backbones.

    ``forward`` returns :class:`Matches` with ``confidence`` = the softmax probability of the match and extras
    ``"index"`` (flat target cell in the filtered grid), ``"mutual"``, ``"tgt_grid"`` (the target grid of
    ``field``: the full feature grid with relocalisation).
    """

    def __init__(self, backbone: Union[str, nn.Module] = "resnet101", weights="auto",
                 kernel_sizes: Sequence = (5, 5, 5), channels: Sequence[int] = (16, 16, 1), symmetric: bool = True,
                 relocalization_k: int = 0, image_size: Optional[int] = None, checkpoint=None, **backbone_kwargs):
        super().__init__()
        from semcorr.backbones import build_backbone

        sd = None
        if checkpoint is not None:
            sd = convert_ncnet_state_dict(checkpoint)
            kernel_sizes, channels = _consensus_layout(sd)
            if any(k.startswith("backbone.") for k in sd) and weights == "auto":
                weights = None  # the checkpoint carries the backbone
        if isinstance(backbone, str):
            if backbone.startswith("resnet"):
                depth = int(backbone[len("resnet"):])
                weights = resolve_resnet_weights(depth, weights, "NCNet")
                backbone_kwargs.setdefault("layers", ("layer3",))
                self.backbone_name = "%s (%s)" % (backbone, weights if weights is not None else
                                                  ("checkpoint" if sd is not None else "random"))
                net = build_backbone(backbone, weights=weights, **backbone_kwargs)
            else:
                self.backbone_name = backbone
                net = build_backbone(backbone, **backbone_kwargs)
        else:
            self.backbone_name = type(backbone).__name__
            net = backbone
        self.backbone = net
        self.consensus = NeighConsensus(kernel_sizes=list(kernel_sizes), channels=list(channels), symmetric=symmetric)
        self.relocalization_k = int(relocalization_k)
        self.image_size = image_size
        if sd is not None:
            self.load_ncnet_state_dict(sd)
        self.eval()

    # ---- checkpoints ----
    def load_ncnet_state_dict(self, state, strict_consensus: bool = True):
        """Load NC-Net's published state dict (or ours). The consensus weights must all be present; backbone
        keys are loaded when present (a checkpoint without them keeps the current backbone)."""
        sd = convert_ncnet_state_dict(state)
        own = self.state_dict()
        missing = [k for k in own if k.startswith("consensus.") and k not in sd]
        if strict_consensus and missing:
            raise KeyError("NC-Net checkpoint lacks consensus weights: %s" % ", ".join(missing))
        load = {k: v for k, v in sd.items() if k in own}
        for k, v in load.items():
            if tuple(own[k].shape) != tuple(v.shape):
                raise ValueError("NC-Net checkpoint: %s has shape %s, the model expects %s"
                                 % (k, tuple(v.shape), tuple(own[k].shape)))
        self.load_state_dict(load, strict=False)
        return sorted(set(own) - set(load))

    # ---- pipeline ----
    def _resize(self, img: torch.Tensor) -> torch.Tensor:
        if self.image_size is None:
            return img
        h, w = img.shape[-2:]
        s = float(self.image_size) / max(h, w)
        size = (max(1, int(round(h * s))), max(1, int(round(w * s))))
        return img if size == (h, w) else F.interpolate(img, size=size, mode="bilinear", align_corners=False)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        return fuse_features(self.backbone(self._resize(img)))

    def filter_volume(self, corr: torch.Tensor) -> torch.Tensor:
        """(B, 1, Hs, Ws, Ht, Wt) raw correlation -> mutual matching, consensus, mutual matching."""
        corr = ops.mutual_matching(corr)
        corr = self.consensus(corr)
        return ops.mutual_matching(corr)

    def correlation(self, src_img: torch.Tensor, tgt_img: torch.Tensor):
        """Images -> (filtered volume (B, 1, Hs, Ws, Ht, Wt), argmax offsets (B, 4, Hs, Ws, Ht, Wt) or None,
        (Ht, Wt) of the full-resolution target feature grid)."""
        fs, ft = self.features(src_img), self.features(tgt_img)
        corr = ops.corr4d(fs, ft).unsqueeze(1)  # NC-Net FeatureL2Norm + FeatureCorrelation
        delta = None
        if self.relocalization_k > 1:
            corr, delta = ops.max_pool4d(corr, self.relocalization_k)
        return self.filter_volume(corr), delta, tuple(ft.shape[-2:])

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        corr, delta, full_grid = self.correlation(src_img, tgt_img)
        B, _, Hs, Ws, Ht, Wt = corr.shape
        flat = corr.reshape(B, Hs * Ws, Ht * Wt)
        prob = torch.softmax(flat, dim=2)  # NC-Net readout: softmax over the target cells
        conf, idx = prob.max(dim=2)
        best_src = flat.argmax(dim=1)  # (B, Ht*Wt)
        mutual = torch.gather(best_src, 1, idx) == torch.arange(Hs * Ws, device=idx.device).unsqueeze(0)
        if delta is None:
            grid = (Ht, Wt)
            tgt_cell = idx
        else:
            k = self.relocalization_k
            ti, tj = idx // Wt, idx % Wt
            d = delta.reshape(B, 4, Hs * Ws, Ht * Wt)
            di = torch.gather(d[:, 2], 2, idx.unsqueeze(-1)).squeeze(-1)
            dj = torch.gather(d[:, 3], 2, idx.unsqueeze(-1)).squeeze(-1)
            grid = full_grid  # the full-resolution target grid the pooled one came from
            tgt_cell = (ti * k + di) * grid[1] + tj * k + dj
        centres = flow.grid_coords(grid[0], grid[1], tgt_img.shape[-2:], dtype=corr.dtype, device=corr.device)
        field = centres.reshape(-1, 2)[tgt_cell].reshape(B, Hs, Ws, 2)
        return Matches(field=field, confidence=conf.reshape(B, Hs, Ws), src_size=tuple(src_img.shape[-2:]),
                       tgt_size=tuple(tgt_img.shape[-2:]),
                       extras={"index": idx.reshape(B, Hs, Ws), "mutual": mutual.reshape(B, Hs, Ws),
                               "tgt_grid": grid})


def load_ncnet_checkpoint(path, **kwargs) -> NCNet:
    """An :class:`NCNet` built from NC-Net's published checkpoint (consensus layout read from it)."""
    return NCNet(checkpoint=path, **kwargs)
