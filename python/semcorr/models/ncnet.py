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

Fidelity to the released code (ignacio-rocco/ncnet, ``lib/model.py`` ``ImMatchNet``): the filtered volume equals
the published forward (FeatureL2Norm, 4D FeatureCorrelation, MutualMatching, symmetric NeighConsensus of the
conv3d-loop Conv4d, MutualMatching) to 1e-5 from a checkpoint of the published layout
(``tests/test_ncnet_published.py``). The readout is ``corr_to_matches(do_softmax=True)`` in one direction: for
each source cell, softmax over the target cells (the published evaluation reads the other way, from each target
cell to the source, which is the same computation with the images swapped since the filter is symmetric).
Deviations, all outside the network: match positions are cell centres of our tiling convention
(:class:`Matches`), not ``linspace(-1, 1, n)``; ``image_size`` keeps the aspect ratio where the published
evaluation resizes to a 400x400 square; with relocalisation only the target side is refined (the source
grid of :class:`Matches` is regular); ``half_precision`` is not offered. See docs/models/ncnet.md.
"""
import argparse
import os
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops
from semcorr.backbone_factory import fuse_features, make_backbone
from semcorr.checkpoints import CheckpointError, check_keys, load_checkpoint, rename_prefix, unwrap_state_dict
from semcorr_ext.nn import Conv4d, NeighConsensus

from . import register_model
from .base import CorrespondenceModel, Matches

__all__ = ["NCNet", "convert_ncnet_state_dict", "read_ncnet_checkpoint", "load_ncnet_checkpoint"]

# NC-Net's FeatureExtraction.model is nn.Sequential(conv1, bn1, relu, maxpool, layer1, layer2, layer3): the
# published checkpoints name the backbone by those indices. Our ResNetFeatures names them as below.
_NCNET_BACKBONE_PREFIXES = {
    "FeatureExtraction.model.0.": "backbone.stem_conv.0.",
    "FeatureExtraction.model.1.": "backbone.stem_conv.1.",
    "FeatureExtraction.model.4.": "backbone.stages.layer1.",
    "FeatureExtraction.model.5.": "backbone.stages.layer2.",
    "FeatureExtraction.model.6.": "backbone.stages.layer3.",
}


def read_ncnet_checkpoint(path_or_state) -> Tuple[Dict[str, torch.Tensor], Optional[argparse.Namespace]]:
    """(state dict with ``module.`` stripped and ``vgg`` renamed ``model`` as ImMatchNet does, the saved ``args``
    or None) from a path or a loaded object.

    A path is read with :func:`semcorr.checkpoints.load_checkpoint` (``weights_only`` + the numpy/argparse
    allow-list), so the file NC-Net's ``train.py`` writes -- ``{epoch, args, state_dict, best_test_loss (numpy
    scalar), optimizer, train_loss, test_loss (numpy arrays)}`` -- loads without unpickling arbitrary code."""
    obj = load_checkpoint(path_or_state) if isinstance(path_or_state, (str, os.PathLike)) else path_or_state
    args = obj.get("args") if isinstance(obj, Mapping) else None
    sd = unwrap_state_dict(obj, keys=("state_dict",))
    # ImMatchNet renames 'vgg' -> 'model' in every key (checkpoints of an older FeatureExtraction attribute name)
    sd = OrderedDict((k.replace("vgg", "model"), v) for k, v in sd.items())
    return sd, (args if isinstance(args, argparse.Namespace) else None)


def convert_ncnet_state_dict(state) -> Dict[str, torch.Tensor]:
    """NC-Net's published state dict (``FeatureExtraction.model.<i>.*``, ``NeighConsensus.conv.<2i>.weight``
    stored as ``[k1, Cout, Cin, k2, k3, k4]``) -> the state dict of :class:`NCNet` (``backbone.*``,
    ``consensus.conv.<2i>.weight`` as ``(Cout, Cin, k1, k2, k3, k4)``). Keys already in our layout pass
    through; keys of neither layout are kept as they are (and reported as unexpected when loading)."""
    sd, _ = read_ncnet_checkpoint(state)
    out = OrderedDict()
    for k, v in sd.items():
        if k.startswith("NeighConsensus."):
            nk = "consensus." + k[len("NeighConsensus."):]
            if nk.endswith(".weight") and v.dim() == 6:
                v = Conv4d.ncnet_to_standard(v)
            out[nk] = v
            continue
        out[rename_prefix(k, _NCNET_BACKBONE_PREFIXES)] = v
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


def _layout_from_args(args: Optional[argparse.Namespace], sd: Dict[str, torch.Tensor]):
    """The consensus layout ImMatchNet builds for a checkpoint: ``args.ncons_kernel_sizes`` /
    ``args.ncons_channels`` when the checkpoint stores them (as ``train.py`` does), else read off the weights.
    Weights that disagree with the stored args are reported by the key check when loading."""
    ks, ch = _consensus_layout(sd)
    if args is not None and hasattr(args, "ncons_kernel_sizes") and hasattr(args, "ncons_channels"):
        ks = [int(k) for k in args.ncons_kernel_sizes]
        ch = [int(c) for c in args.ncons_channels]
        if len(ks) != len(ch):
            raise CheckpointError("NC-Net checkpoint args: ncons_kernel_sizes %s and ncons_channels %s differ in length"
                                  % (ks, ch))
    if not ch:
        raise CheckpointError("NC-Net checkpoint has no consensus weights (NeighConsensus.conv.<i>.weight) and no "
                              "args.ncons_kernel_sizes / ncons_channels")
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
        checkpoint: NC-Net's published checkpoint (``.pth.tar`` as its ``train.py`` writes it, read safely by
            :func:`semcorr.checkpoints.load_checkpoint`), a loaded dict of that layout, or a state dict of this
            module. As in ImMatchNet the consensus layout comes from the checkpoint's ``args.ncons_kernel_sizes``
            / ``args.ncons_channels`` (from the weight shapes when there are no args), and the backbone from its
            ``FeatureExtraction.*`` tensors. Missing / unexpected / mis-shaped tensors raise
            :class:`semcorr.checkpoints.CheckpointError`.
        checkpoint_backbone: False for a consensus-only state dict (not a published layout); the backbone then
            keeps ``weights``.
        **backbone_kwargs: passed to :func:`semcorr.backbones.build_backbone` for named backbones.

    ``forward`` returns :class:`Matches` with ``confidence`` = the softmax probability of the match and extras
    ``"index"`` (flat target cell in the filtered grid), ``"mutual"``, ``"tgt_grid"`` (the target grid of
    ``field``: the full feature grid with relocalisation).
    """

    def __init__(self, backbone: Union[str, nn.Module] = "resnet101", weights="auto",
                 kernel_sizes: Sequence = (5, 5, 5), channels: Sequence[int] = (16, 16, 1), symmetric: bool = True,
                 relocalization_k: int = 0, image_size: Optional[int] = None, checkpoint=None,
                 checkpoint_backbone: bool = True, **backbone_kwargs):
        super().__init__()
        sd = None
        if checkpoint is not None:
            raw, args = read_ncnet_checkpoint(checkpoint)
            sd = convert_ncnet_state_dict(raw)
            # ImMatchNet overrides the consensus layout with the checkpoint's args (train.py stores them)
            kernel_sizes, channels = _layout_from_args(args, sd)
            if checkpoint_backbone and weights == "auto":
                weights = None  # the checkpoint carries the backbone: no ImageNet look-up, no warning
        net = make_backbone(backbone, "NCNet", weights, default_layers=("layer3",), **backbone_kwargs)
        self.set_backbone(net, net.label(checkpoint=sd is not None))  # random until a checkpoint loads
        self.consensus = NeighConsensus(kernel_sizes=list(kernel_sizes), channels=list(channels), symmetric=symmetric)
        self.relocalization_k = int(relocalization_k)
        self.image_size = image_size
        # random until a checkpoint says otherwise (a user-given backbone module is the user's business)
        self.mark_untrained("consensus")
        if sd is not None:
            self.load_ncnet_state_dict(sd, with_backbone=checkpoint_backbone)
        self.eval()

    # ---- checkpoints ----
    def load_ncnet_state_dict(self, state, with_backbone: bool = True) -> None:
        """Load NC-Net's published state dict (or ours) strictly.

        The published ``ImMatchNet`` copies every ``FeatureExtraction.*`` tensor except ``num_batches_tracked``
        (absent from checkpoints of PyTorch < 0.4.1) and every ``NeighConsensus.*`` tensor; so do we, and any
        missing, unexpected or wrongly shaped tensor raises a :class:`CheckpointError` naming it.
        ``with_backbone=False`` loads a consensus-only state dict (not a published layout: ``train.py`` always
        saves the backbone); backbone keys are then unexpected and the backbone keeps its weights."""
        sd = convert_ncnet_state_dict(state)
        own = self.state_dict()
        expected = OrderedDict(
            (k, v) for k, v in own.items()
            if (with_backbone or not k.startswith("backbone."))
            and not (k.endswith("num_batches_tracked") and k not in sd))
        check_keys(expected, sd, "NC-Net")
        self.load_state_dict(sd, strict=False)  # every key checked above; the rest (num_batches_tracked) stay
        self.mark_trained("consensus", *(["backbone"] if with_backbone and any(k.startswith("backbone.") for k in sd)
                                         else []))

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
