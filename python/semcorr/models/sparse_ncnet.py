"""Sparse NC-Net (Rocco, Arandjelovic, Sivic: "Efficient Neighbourhood Consensus Networks via Submanifold
Sparse Convolutions", ECCV 2020) on the semcorr_ext ops, without MinkowskiEngine.

Pipeline: ResNet layer3 features of both images -> ``ops.corr4d_topk`` in both directions (the k best targets
of every source cell and the k best sources of every target cell; the union of the two sets of 4D points,
never the dense volume) -> sparse mutual matching -> :class:`semcorr_ext.nn.SparseNeighConsensus` (submanifold
sparse 4D convolutions, symmetric) -> sparse mutual matching -> readout: for every source cell the best-scoring
target among its kept candidates.

    model = build_model("sparse-ncnet")                       # ResNet-101 (ImageNet weights if cached)
    model = build_model("sparse-ncnet", checkpoint="sparse_ncnet.pt", k=10)
"""
from typing import Optional, Sequence, Union

import torch
from torch import nn

from semcorr_ext import flow, ops
from semcorr.backbones import resolve_resnet_weights
from semcorr_ext.nn import SparseNeighConsensus

from . import register_model
from .base import CorrespondenceModel, Matches
from .nearest_neighbour import fuse_features

__all__ = ["SparseNCNet", "sparse_mutual_matching", "topk_union"]


def topk_union(fs: torch.Tensor, ft: torch.Tensor, k: int):
    """The candidate 4D points of Sparse NC-Net: top-k targets of each source cell and top-k sources of each target
    cell (cosine similarity, ``ops.corr4d_topk``), merged.

    Returns ``(coords (N, 5) int64 rows (b, i, j, k, l) sorted by (b, i, j, k, l), values (N,) the correlations)``.
    Differentiable in the features through ``values``.
    """
    B, _, hs, ws = fs.shape
    ht, wt = ft.shape[-2:]
    dev = fs.device
    v1, i1 = ops.corr4d_topk(fs, ft, min(k, ht * wt))  # (B, hs, ws, k1)
    v2, i2 = ops.corr4d_topk(ft, fs, min(k, hs * ws))  # (B, ht, wt, k2)
    b1 = torch.arange(B, device=dev).view(B, 1, 1, 1).expand_as(i1)
    si = torch.arange(hs, device=dev).view(1, hs, 1, 1).expand_as(i1)
    sj = torch.arange(ws, device=dev).view(1, 1, ws, 1).expand_as(i1)
    c1 = torch.stack([b1, si, sj, i1 // wt, i1 % wt], -1).reshape(-1, 5)
    b2 = torch.arange(B, device=dev).view(B, 1, 1, 1).expand_as(i2)
    tk = torch.arange(ht, device=dev).view(1, ht, 1, 1).expand_as(i2)
    tl = torch.arange(wt, device=dev).view(1, 1, wt, 1).expand_as(i2)
    c2 = torch.stack([b2, i2 // ws, i2 % ws, tk, tl], -1).reshape(-1, 5)
    coords = torch.cat([c1, c2])
    vals = torch.cat([v1.reshape(-1), v2.reshape(-1)])
    key = (((coords[:, 0] * hs + coords[:, 1]) * ws + coords[:, 2]) * ht + coords[:, 3]) * wt + coords[:, 4]
    uniq, inv = torch.unique(key, return_inverse=True)
    # a point found in both directions has the same correlation (up to rounding): keep the first occurrence
    first = torch.full((uniq.shape[0],), key.shape[0], dtype=torch.long, device=dev)
    first = first.scatter_reduce(0, inv, torch.arange(key.shape[0], device=dev), "amin")
    return coords[first], vals[first]


def _segment_max(values: torch.Tensor, seg: torch.Tensor, nseg: int) -> torch.Tensor:
    out = values.new_full((nseg,), float("-inf"))
    return out.scatter_reduce(0, seg, values, "amax", include_self=True)


def sparse_mutual_matching(values: torch.Tensor, src_id: torch.Tensor, tgt_id: torch.Tensor, n_src: int,
                           n_tgt: int, eps: float = 1e-5) -> torch.Tensor:
    """NC-Net's MutualMatching on a sparse volume: ``v * (v / (max over the source cell's points + eps)) *
    (v / (max over the target cell's points + eps))`` (absent points count as missing, not as zeros)."""
    max_t = _segment_max(values.detach(), src_id, n_src)[src_id]
    max_s = _segment_max(values.detach(), tgt_id, n_tgt)[tgt_id]
    return values * (values / (max_t + eps)) * (values / (max_s + eps))


def _readout(score: torch.Tensor, tie: torch.Tensor, seg: torch.Tensor, nseg: int) -> torch.Tensor:
    """For each segment the point of largest ``score`` (ties: largest ``tie``, then the first point)."""
    n = score.shape[0]
    best = _segment_max(score, seg, nseg)
    is_best = score == best[seg]
    tie_m = torch.where(is_best, tie, torch.full_like(tie, float("-inf")))
    best_tie = _segment_max(tie_m, seg, nseg)
    cand = torch.where(is_best & (tie_m == best_tie[seg]), torch.arange(n, device=score.device),
                       torch.full_like(seg, n))
    return torch.full((nseg,), n, dtype=torch.long, device=score.device).scatter_reduce(0, seg, cand, "amin")


@register_model("sparse-ncnet")
class SparseNCNet(CorrespondenceModel):
    """Sparse NC-Net: top-k correlation in both directions + submanifold sparse neighbourhood consensus.

    Args:
        backbone: ``"resnet101"`` (default, layer3 as in NC-Net), ``"resnet50"``, ``"daisy"``/``"hog"`` (hand-made,
            offline) or an ``nn.Module`` mapping images to a (B, C, h, w) map (or a list of maps).
        weights: ResNet weights: ``"auto"`` (ImageNet if in the torch hub cache, else random with a warning),
            ``"imagenet"``, ``None`` or a state-dict path.
        k: candidates kept per cell and direction (Sparse NC-Net: 10).
        kernel_sizes, channels, symmetric: the sparse consensus stack (Sparse NC-Net: 3x3x3x3 kernels,
            channels (16, 16, 1), symmetric).
        mutual: apply sparse mutual matching before and after the consensus (as NC-Net).
        checkpoint: optional state dict of this module (consensus and backbone weights) to load.
        **backbone_kwargs: passed to :func:`semcorr.backbones.build_backbone` for named backbones.

    Returns :class:`Matches` with ``confidence`` = the readout score and ``extras``: ``"index"`` (B, Hs, Ws)
    flat target cell of each match, ``"mutual"`` (B, Hs, Ws) bool (the matched target cell's best source is this
    cell), ``"tgt_grid"``, ``"num_points"`` (size of the sparse volume) and ``"dense_points"`` (what the dense
    volume would hold).
    """

    def __init__(self, backbone: Union[str, nn.Module] = "resnet101", weights="auto", k: int = 10,
                 kernel_sizes: Sequence[int] = (3, 3, 3), channels: Sequence[int] = (16, 16, 1),
                 symmetric: bool = True, mutual: bool = True, checkpoint: Optional[str] = None, **backbone_kwargs):
        super().__init__()
        if k < 1:
            raise ValueError("SparseNCNet: k must be >= 1, got %d" % k)
        from semcorr.backbones import build_backbone

        if isinstance(backbone, str):
            if backbone.startswith("resnet"):
                depth = int(backbone[len("resnet"):])
                weights = resolve_resnet_weights(depth, weights, "SparseNCNet")
                backbone_kwargs.setdefault("layers", ("layer3",))
                self.backbone_name = "%s (%s)" % (backbone, weights if weights is not None else "random")
                net = build_backbone(backbone, weights=weights, **backbone_kwargs)
            else:
                self.backbone_name = backbone
                net = build_backbone(backbone, **backbone_kwargs)
        else:
            self.backbone_name = type(backbone).__name__
            net = backbone
        self.backbone = net
        self.k = int(k)
        self.mutual = mutual
        self.consensus = SparseNeighConsensus(kernel_sizes=tuple(kernel_sizes), channels=tuple(channels),
                                              symmetric=symmetric, in_channels=1)
        if checkpoint is not None:
            state = torch.load(checkpoint, map_location="cpu", weights_only=True)
            self.load_state_dict(state.get("state_dict", state))
        self.eval()

    def features(self, img: torch.Tensor) -> torch.Tensor:
        return fuse_features(self.backbone(img))

    def sparse_scores(self, fs: torch.Tensor, ft: torch.Tensor):
        """Features -> (coords (N, 5), correlation (N,), consensus score (N,)) of the sparse 4D volume."""
        B, _, hs, ws = fs.shape
        ht, wt = ft.shape[-2:]
        coords, corr = topk_union(fs, ft, self.k)
        src_id = (coords[:, 0] * hs + coords[:, 1]) * ws + coords[:, 2]
        tgt_id = (coords[:, 0] * ht + coords[:, 3]) * wt + coords[:, 4]
        x = sparse_mutual_matching(corr, src_id, tgt_id, B * hs * ws, B * ht * wt) if self.mutual else corr
        x = self.consensus(x.unsqueeze(1).to(fs.dtype), coords).squeeze(1)
        if self.mutual:
            x = sparse_mutual_matching(x, src_id, tgt_id, B * hs * ws, B * ht * wt)
        return coords, corr, x

    def forward(self, src_img: torch.Tensor, tgt_img: torch.Tensor) -> Matches:
        self.check_images(src_img, tgt_img)
        fs, ft = self.features(src_img), self.features(tgt_img)
        B, _, hs, ws = fs.shape
        ht, wt = ft.shape[-2:]
        coords, corr, score = self.sparse_scores(fs, ft)
        src_id = (coords[:, 0] * hs + coords[:, 1]) * ws + coords[:, 2]
        tgt_id = (coords[:, 0] * ht + coords[:, 3]) * wt + coords[:, 4]
        pick = _readout(score, corr, src_id, B * hs * ws)  # every source cell has >= 1 point (its own top-k)
        idx = (coords[pick, 3] * wt + coords[pick, 4]).reshape(B, hs, ws)
        conf = score[pick].reshape(B, hs, ws)
        centres = flow.grid_coords(ht, wt, tgt_img.shape[-2:], dtype=fs.dtype, device=fs.device).reshape(-1, 2)
        field = centres[idx]
        # mutual: the best source of the matched target cell (among its points) is this cell
        back = _readout(score, corr, tgt_id, B * ht * wt)
        back_src = torch.where(back < coords.shape[0], src_id[back.clamp(max=coords.shape[0] - 1)],
                               torch.full_like(back, -1)).reshape(B, ht * wt)
        mutual = torch.gather(back_src, 1, idx.reshape(B, -1)).reshape(B, hs, ws) == \
            torch.arange(B * hs * ws, device=fs.device).reshape(B, hs, ws)
        return Matches(field=field, confidence=conf, src_size=tuple(src_img.shape[-2:]),
                       tgt_size=tuple(tgt_img.shape[-2:]),
                       extras={"index": idx, "mutual": mutual, "tgt_grid": (ht, wt),
                               "num_points": int(coords.shape[0]), "dense_points": B * hs * ws * ht * wt})


register_model("sparse_ncnet")(lambda **kwargs: SparseNCNet(**kwargs))
