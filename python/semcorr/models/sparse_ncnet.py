"""Sparse NC-Net (Rocco, Arandjelovic, Sivic: "Efficient Neighbourhood Consensus Networks via Submanifold
Sparse Convolutions", ECCV 2020) on the semcorr_ext ops, without MinkowskiEngine or faiss.

The default is the published network as its evaluation scripts run it (``eval/eval_hpatches_extract.py`` and
``eval/eval_inloc_extract.py`` of ignacio-rocco/sparse-ncnet with the released ``sparsencnet_k10.pth.tar``,
trained by ``train.py`` with its defaults):

1. features: ImageNet-normalised image -> ResNet-101 up to layer3 with the first layer3 block's stride set to 1
   (``--change_stride 1``: stride 8) -> 2x2 max-pool (``--relocalize 1 --reloc_hard_crop_size 2``: stride 16
   for the consensus) -> L2 norm (``featureL2Norm``: ``f / sqrt(sum f^2 + 1e-6)``); the stride-8 map, L2
   normalised, is kept for relocalisation.
2. ``corr_and_add``: the k = 10 nearest targets of every source cell and the k nearest sources of every
   target cell (faiss L2 search on unit vectors = top-k cosine; here ``ops.corr4d_topk``), as two sparse
   tensors joined by ``MinkowskiUnion``, which ADDS the values of a point found in both directions.
3. ``SparseNeighConsensus``: ReLU on the input, then per layer a submanifold 4D convolution + ReLU; train.py's
   default layout: kernels (3, 3), channels (16, 1); symmetric (the stack on the swapped volume, swapped back,
   added). No mutual matching anywhere in the sparse pipeline (the dense NC-Net's is not applied).
4. readout (``get_matches_both_dirs``): for every source cell the point of largest score (and for every
   target cell likewise), the union of both sets, the 2000 best by score; then relocalisation ``hard_soft``
   on the stride-8 grid (:mod:`semcorr.models.sparse_ncnet_relocalize`).

Everything follows the released code (the paper's text is not the reference where they could differ, e.g. the
relocalisation and readout details exist only in the evaluation scripts). Remaining deviations (kNN by
``corr4d_topk``, tie order, the dense field, pixel convention) are listed in ``docs/models/sparse_ncnet.md``.

Our additions are options, off by default: ``mutual=True`` (NC-Net's mutual matching before and after the
consensus), ``union="unique"`` (a point found in both directions counted once instead of summed).

    model = build_model("sparse-ncnet", checkpoint="sparsencnet_k10.pth.tar")   # the released network
    model = build_model("sparse-ncnet", relocalization=None, change_stride=False)   # ImMatchNet.forward's path
"""
import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow, ops
from semcorr.backbone_factory import fuse_features, make_backbone
from semcorr.checkpoints import CheckpointError, check_keys
from semcorr_ext.nn import SparseNeighConsensus

from . import register_alias, register_model
from .base import CorrespondenceModel, Matches
from .sparse_ncnet_convert import consensus_layout, read_sparse_ncnet_checkpoint
from .sparse_ncnet_relocalize import RELOCALIZATIONS, relocalize

__all__ = ["SparseNCNet", "sparse_mutual_matching", "topk_union", "feature_l2_norm"]

#: image-size granularity of the published ``resize`` (``1 / scale_factor`` of the evaluation scripts)
_BASE_UNIT = 16


def feature_l2_norm(f: torch.Tensor) -> torch.Tensor:
    """NC-Net / Sparse NC-Net's ``featureL2Norm``: ``f / sqrt(sum_c f^2 + 1e-6)`` over the channel axis."""
    return f / torch.sqrt((f * f).sum(1, keepdim=True) + 1e-6)


def topk_union(fs: torch.Tensor, ft: torch.Tensor, k: int, union: str = "sum"):
    """The candidate 4D points of Sparse NC-Net: the top-k targets of each source cell and the top-k sources of
    each target cell (cosine similarity, ``ops.corr4d_topk``), joined.

    ``union="sum"`` (published: ``MinkowskiUnion`` adds the features of a coordinate present in both sparse
    tensors) gives a point found in both directions twice its correlation; ``"unique"`` (our option) keeps it
    once. Returns ``(coords (N, 5) int64 rows (b, i, j, k, l) sorted lexicographically, values (N,))``.
    Differentiable in the features through ``values``.
    """
    if union not in ("sum", "unique"):
        raise ValueError("topk_union: union must be 'sum' (published) or 'unique', got %r" % (union,))
    B, _, hs, ws = fs.shape
    ht, wt = ft.shape[-2:]
    dev = fs.device
    v1, i1 = ops.corr4d_topk(fs, ft, min(k, ht * wt))  # (B, hs, ws, k1): targets of each source cell
    v2, i2 = ops.corr4d_topk(ft, fs, min(k, hs * ws))  # (B, ht, wt, k2): sources of each target cell
    src1 = torch.arange(B * hs * ws, device=dev).view(B, hs * ws, 1)  # flat (b, i, j)
    tgt1 = torch.arange(B, device=dev).view(B, 1, 1) * (ht * wt) + i1.reshape(B, hs * ws, -1)
    tgt2 = torch.arange(B * ht * wt, device=dev).view(B, ht * wt, 1)
    src2 = torch.arange(B, device=dev).view(B, 1, 1) * (hs * ws) + i2.reshape(B, ht * wt, -1)
    # key = flat (b, i, j) * (ht * wt) + (k, l): lexicographic in (b, i, j, k, l) since b is shared
    key = torch.cat([(src1 * (ht * wt) + tgt1 % (ht * wt)).reshape(-1), (src2 * (ht * wt) + tgt2 % (ht * wt)).reshape(-1)])
    vals = torch.cat([v1.reshape(-1), v2.reshape(-1)])
    uniq, inv = torch.unique(key, sorted=True, return_inverse=True)
    if union == "sum":
        out = vals.new_zeros(uniq.shape[0]).index_add(0, inv, vals)
    else:  # a point found in both directions has the same correlation (up to rounding): keep the first
        first = torch.full((uniq.shape[0],), key.shape[0], dtype=torch.long, device=dev)
        first = first.scatter_reduce(0, inv, torch.arange(key.shape[0], device=dev), "amin")
        out = vals[first]
    src, tgt = uniq // (ht * wt), uniq % (ht * wt)
    coords = torch.stack([src // (hs * ws), (src // ws) % hs, src % ws, tgt // wt, tgt % wt], 1)
    return coords, out


def _segment_max(values: torch.Tensor, seg: torch.Tensor, nseg: int) -> torch.Tensor:
    out = values.new_full((nseg,), float("-inf"))
    return out.scatter_reduce(0, seg, values, "amax", include_self=True)


def sparse_mutual_matching(values: torch.Tensor, src_id: torch.Tensor, tgt_id: torch.Tensor, n_src: int,
                           n_tgt: int, eps: float = 1e-5) -> torch.Tensor:
    """NC-Net's MutualMatching on a sparse volume: ``v * (v / (max over the source cell's points + eps)) *
    (v / (max over the target cell's points + eps))`` (absent points count as missing, not as zeros).
    Not part of the published Sparse NC-Net (the ``mutual=True`` option of :class:`SparseNCNet`)."""
    max_t = _segment_max(values.detach(), src_id, n_src)[src_id]
    max_s = _segment_max(values.detach(), tgt_id, n_tgt)[tgt_id]
    return values * (values / (max_t + eps)) * (values / (max_s + eps))


def _best_per_segment(score: torch.Tensor, seg: torch.Tensor, nseg: int) -> torch.Tensor:
    """For each segment the row of largest ``score``; ties go to the first row. The published ``get_matches``
    sorts the coalesced (lexicographic) rows by descending score and keeps the first of each cell: with the
    stable sort CUDA uses at these sizes that is the same row. Segments without rows give ``len(score)``."""
    n = score.shape[0]
    best = _segment_max(score, seg, nseg)
    cand = torch.where(score == best[seg], torch.arange(n, device=score.device), torch.full_like(seg, n))
    return torch.full((nseg,), n, dtype=torch.long, device=score.device).scatter_reduce(0, seg, cand, "amin")


@register_model("sparse-ncnet")
class SparseNCNet(CorrespondenceModel):
    """Sparse NC-Net: top-k correlation both ways (summed union) + submanifold sparse neighbourhood consensus
    + the published readout and relocalisation.

    Args:
        backbone: ``"resnet101"`` (default, published: layer3), ``"resnet50"``, ``"daisy"``/``"hog"`` (offline,
            not published) or an ``nn.Module`` mapping images to a (B, C, h, w) map (or a list of maps).
        weights: ResNet weights: ``"auto"`` (ImageNet if in the torch hub cache, else random with a warning),
            ``"imagenet"`` (the published frozen backbone), ``None`` or a state-dict path.
        k: nearest neighbours per cell and direction (published 10).
        kernel_sizes, channels, symmetric: the consensus stack; published ``train.py`` default (3, 3), (16, 1),
            symmetric. A checkpoint's ``args`` override them, as ``ImMatchNet`` does.
        relocalization: the published ``--reloc_type``: ``"hard_soft"`` (default, as the evaluation), ``"hard"``,
            ``"soft"``, ``"hard_hard"``, or ``None`` (no max-pool, no relocalisation: ``ImMatchNet.forward``).
        reloc_crop_size: 2 (default: 2x2 max-pool, 2x2 hard crop) or 3 (3x3/stride-2/pad-1 max-pool, 3x3 crop).
        change_stride: ResNet backbones only: the first layer3 block with stride 1 (published evaluation
            ``--change_stride 1``), so the consensus grid after the max-pool keeps stride 16.
        union: ``"sum"`` (published) or ``"unique"`` (our option), see :func:`topk_union`.
        mutual: our option (not published): NC-Net's mutual matching before and after the consensus.
        num_matches: length of the published match list (``--Npts``, 2000); None keeps all.
        image_size: resize each image as the published ``resize`` (longer side about ``image_size``, both sides
            floored to a multiple of the feature stride; the evaluation used 3200) or None (as given).
        checkpoint: the published ``.pth.tar`` (train.py layout, MinkowskiEngine kernels), its bare state dict,
            or a state dict of this module; loaded strictly (:func:`semcorr.checkpoints.check_keys`).
        **backbone_kwargs: passed to :func:`semcorr.backbones.build_backbone` for named backbones.

    ``forward`` returns :class:`Matches`: ``field`` holds, for every source cell of the consensus grid, the
    relocalised target position of its best match; ``confidence`` its score. ``extras``: ``"index"`` (B, Hs, Ws)
    flat target cell of the consensus grid, ``"mutual"`` (the matched target cell's best source is this cell),
    ``"src_points"`` (B, Hs, Ws, 2) the relocalised source position of each match in source pixels (the
    published output moves both ends), ``"matches"`` (one ``(src_xy (N, 2), tgt_xy (N, 2), score (N,))`` per
    image pair, in pixels: the published match list), ``"tgt_grid"`` (grid of the relocalised positions),
    ``"num_points"``, ``"dense_points"``.
    """

    def __init__(self, backbone: Union[str, nn.Module] = "resnet101", weights="auto", k: int = 10,
                 kernel_sizes: Sequence = (3, 3), channels: Sequence[int] = (16, 1), symmetric: bool = True,
                 relocalization: Optional[str] = "hard_soft", reloc_crop_size: int = 2, change_stride: bool = True,
                 union: str = "sum", mutual: bool = False, num_matches: Optional[int] = 2000,
                 image_size: Optional[int] = None, checkpoint=None, **backbone_kwargs):
        super().__init__()
        sd = None
        if checkpoint is not None:
            cfg, sd = read_sparse_ncnet_checkpoint(checkpoint)
            ks_sd, ch_sd = consensus_layout(sd)
            kernel_sizes = cfg.get("kernel_sizes") or ks_sd
            channels = cfg.get("channels") or ch_sd
            symmetric = symmetric if cfg.get("symmetric") is None else cfg["symmetric"]
            k = k if cfg.get("k") is None else int(cfg["k"])
            if weights == "auto" and any(key.startswith("backbone.") for key in sd):
                weights = None  # the checkpoint carries the backbone: no ImageNet look-up, no warning
        if k < 1:
            raise ValueError("SparseNCNet: k must be >= 1, got %d" % k)
        if relocalization not in RELOCALIZATIONS:
            raise ValueError("SparseNCNet: relocalization must be one of %s, got %r" % (RELOCALIZATIONS, relocalization))
        if reloc_crop_size not in (2, 3):
            raise ValueError("SparseNCNet: reloc_crop_size must be 2 or 3, got %r" % (reloc_crop_size,))
        if union not in ("sum", "unique"):
            raise ValueError("SparseNCNet: union must be 'sum' (published) or 'unique', got %r" % (union,))
        net = make_backbone(backbone, "SparseNCNet", weights, default_layers=("layer3",), **backbone_kwargs)
        is_resnet = net.resnet
        self.set_backbone(net, net.label(checkpoint=sd is not None))  # random until its backbone.* tensors load
        self.change_stride = bool(change_stride) and is_resnet
        if self.change_stride:
            self._set_layer3_stride_1()
        self.k = int(k)
        self.union = union
        self.mutual = mutual
        self.relocalization = relocalization
        self.reloc_crop_size = int(reloc_crop_size)
        self.num_matches = num_matches
        self.image_size = image_size
        self.consensus = SparseNeighConsensus(kernel_sizes=tuple(kernel_sizes), channels=tuple(channels),
                                              symmetric=symmetric, in_channels=1)
        self.mark_untrained("consensus")
        if sd is not None:
            self.load_sparse_ncnet_state_dict(sd, is_resnet)
        self.eval()

    def _set_layer3_stride_1(self) -> None:
        # the published change_stride: conv1, conv2 and the downsample of layer3's first block get stride 1
        stages = getattr(self.backbone, "stages", None)
        if stages is None or "layer3" not in stages:
            raise ValueError("SparseNCNet: change_stride needs a ResNet backbone with layer3")
        block = stages["layer3"][0]
        block.conv1.stride = (1, 1)
        block.conv2.stride = (1, 1)
        block.downsample[0].stride = (1, 1)

    # ---- checkpoints ----
    def load_sparse_ncnet_state_dict(self, sd, backbone_is_resnet: bool = True) -> None:
        """Load a converted state dict (:func:`~semcorr.models.sparse_ncnet_convert.read_sparse_ncnet_checkpoint`)
        strictly: every consensus tensor and, when the file holds a backbone, every backbone tensor except
        ``num_batches_tracked`` (the published loader skips it too); anything missing, unexpected or wrongly
        shaped raises a :class:`~semcorr.checkpoints.CheckpointError` naming it."""
        has_backbone = any(key.startswith("backbone.") for key in sd)
        if has_backbone and not backbone_is_resnet:
            raise CheckpointError("Sparse NC-Net checkpoint holds a ResNet backbone (backbone.* keys) but the model "
                                  "was built with backbone=%s; use backbone='resnet101'" % self.backbone_name)
        own = self.state_dict()
        expected = {key: v for key, v in own.items()
                    if (has_backbone or not key.startswith("backbone."))
                    and not (key.endswith("num_batches_tracked") and key not in sd)}
        check_keys(expected, sd, "Sparse NC-Net")
        self.load_state_dict(sd, strict=False)  # every key checked above; the rest (num_batches_tracked) stay
        self.mark_trained("consensus", *(["backbone"] if has_backbone else []))

    # ---- pipeline ----
    def _resize(self, img: torch.Tensor) -> torch.Tensor:
        """The published ``resize``: longer side ~ ``image_size``, sides floored to the feature stride."""
        if self.image_size is None:
            return img
        unit = _BASE_UNIT * (2 if self.relocalization else 1) // (2 if self.change_stride else 1)
        h, w = img.shape[-2:]
        scale = max(h, w) / float(self.image_size)
        size = tuple(max(unit, int(math.floor(s / scale / unit) * unit)) for s in (h, w))
        return img if size == (h, w) else F.interpolate(img, size=size, mode="bilinear", align_corners=False)

    def features(self, img: torch.Tensor):
        """Image -> (features of the consensus grid, not normalised: ``corr4d_topk`` applies ``featureL2Norm``;
        L2-normalised fine features for relocalisation, or None)."""
        raw = fuse_features(self.backbone(self._resize(img)))
        if not self.relocalization:
            return raw, None
        if self.reloc_crop_size == 2:
            pooled = F.max_pool2d(raw, kernel_size=2, stride=2, padding=0)
        else:
            pooled = F.max_pool2d(raw, kernel_size=3, stride=2, padding=1)
        return pooled, feature_l2_norm(raw)

    def sparse_scores(self, fs: torch.Tensor, ft: torch.Tensor):
        """Consensus-grid features -> (coords (N, 5), correlation (N,) after the union, consensus score (N,))."""
        B, _, hs, ws = fs.shape
        ht, wt = ft.shape[-2:]
        coords, corr = topk_union(fs, ft, self.k, self.union)
        x = torch.relu(corr)  # the published stack starts with MinkowskiReLU
        if self.mutual:
            src_id = (coords[:, 0] * hs + coords[:, 1]) * ws + coords[:, 2]
            tgt_id = (coords[:, 0] * ht + coords[:, 3]) * wt + coords[:, 4]
            x = sparse_mutual_matching(x, src_id, tgt_id, B * hs * ws, B * ht * wt)
        x = self.consensus(x.unsqueeze(1).to(fs.dtype), coords).squeeze(1)
        if self.mutual:
            x = sparse_mutual_matching(x, src_id, tgt_id, B * hs * ws, B * ht * wt)
        return coords, corr, x

    def _positions(self, coords, rows, fine_a, fine_b, dtype):
        """(b, relocalised (yA, xA, yB, xB)) of the points ``rows``, in cells of the relocalisation grid."""
        b = coords[rows, 0]
        pos = coords[rows, 1:].to(dtype)
        if self.relocalization:
            pos = relocalize(b, pos, fine_a, fine_b, self.relocalization, self.reloc_crop_size)
        return b, pos

    @staticmethod
    def _to_pixels(yx: torch.Tensor, grid, size) -> torch.Tensor:
        """(..., 2) (y, x) in cells of ``grid`` -> (..., 2) (x, y) pixels of an image of ``size`` (cell c
        covers [c, c + 1) * size / grid: the published ``(c + 0.5) / fs * W`` in our pixel-centre convention)."""
        return torch.stack([(yx[..., 1] + 0.5) * size[1] / grid[1] - 0.5,
                            (yx[..., 0] + 0.5) * size[0] / grid[0] - 0.5], -1)

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        (fs, fine_s), (ft, fine_t) = self.features(src_img), self.features(tgt_img)
        B, _, hs, ws = fs.shape
        ht, wt = ft.shape[-2:]
        coords, _, score = self.sparse_scores(fs, ft)
        n = coords.shape[0]
        src_id = (coords[:, 0] * hs + coords[:, 1]) * ws + coords[:, 2]
        tgt_id = (coords[:, 0] * ht + coords[:, 3]) * wt + coords[:, 4]
        fwd = _best_per_segment(score, src_id, B * hs * ws)  # every source cell has points (its own top-k)
        back = _best_per_segment(score, tgt_id, B * ht * wt)  # and every target cell
        r = 2 if self.relocalization else 1  # the published positions are on the 2x grid after relocalisation
        sgrid, tgrid = (r * hs, r * ws), (r * ht, r * wt)
        src_size, tgt_size = tuple(src_img.shape[-2:]), tuple(tgt_img.shape[-2:])

        _, pos = self._positions(coords, fwd, fine_s, fine_t, fs.dtype)
        tgt_px = self._to_pixels(pos[:, 2:], tgrid, tgt_size).reshape(B, hs, ws, 2)
        field = flow.normalize_coords(tgt_px, tgt_size)
        src_points = self._to_pixels(pos[:, :2], sgrid, src_size).reshape(B, hs, ws, 2)

        idx = (coords[fwd, 3] * wt + coords[fwd, 4]).reshape(B, hs, ws)
        conf = score[fwd].reshape(B, hs, ws)
        back_src = src_id[back].reshape(B, ht * wt)
        mutual = torch.gather(back_src, 1, idx.reshape(B, -1)).reshape(B, hs, ws) == \
            torch.arange(B * hs * ws, device=fs.device).reshape(B, hs, ws)
        matches = [self._match_list(coords, score, fwd, back, bb, fine_s, fine_t, sgrid, tgrid, src_size, tgt_size)
                   for bb in range(B)]
        return Matches(field=field, confidence=conf, src_size=src_size, tgt_size=tgt_size,
                       extras={"index": idx, "mutual": mutual, "tgt_grid": tgrid, "src_points": src_points,
                               "matches": matches, "num_points": int(n), "dense_points": B * hs * ws * ht * wt})

    def _match_list(self, coords, score, fwd, back, bb, fine_s, fine_t, sgrid, tgrid, src_size, tgt_size):
        """The published ``get_matches_both_dirs`` + ``--Npts`` + relocalisation for image pair ``bb``."""
        rows = torch.cat([fwd, back])
        rows = torch.unique(rows[coords[rows, 0] == bb])  # both directions, each point once
        order = torch.sort(score[rows], descending=True, stable=True).indices
        if self.num_matches is not None:
            order = order[: self.num_matches]
        rows = rows[order]
        _, pos = self._positions(coords, rows, fine_s, fine_t, score.dtype)
        if self.relocalization and self.relocalization.startswith("hard") and self.reloc_crop_size == 3:
            # the published script drops duplicates that the 3x3 crop can create (first kept, by score here)
            _, inv = torch.unique(pos, dim=0, return_inverse=True)
            first = torch.full((int(inv.max()) + 1,), len(inv), dtype=torch.long, device=pos.device)
            first = first.scatter_reduce(0, inv, torch.arange(len(inv), device=pos.device), "amin")
            keep = torch.sort(first).values
            rows, pos = rows[keep], pos[keep]
        return (self._to_pixels(pos[:, :2], sgrid, src_size), self._to_pixels(pos[:, 2:], tgrid, tgt_size),
                score[rows])


register_alias("sparse_ncnet", "sparse-ncnet")  # the module name's spelling, accepted everywhere
