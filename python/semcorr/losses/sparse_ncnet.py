"""Sparse NC-Net's weakly supervised loss (Rocco, Arandjelovic, Sivic, ECCV 2020; ignacio-rocco/sparse-ncnet
``train.py`` + ``lib/sparse.py:get_scores``).

The training forward of the released ``train.py`` (``eval_model_fn`` with its defaults ``--relocalize 0
--change_stride 0``) is: L2-normalised layer3 features (stride 16) -> the union of the top-k correlations in both
directions (``corr_and_add``, values of a point found twice added) -> the sparse neighbourhood consensus (ReLU,
then submanifold convolutions + ReLU, symmetric). No mutual matching.

Score of a sparse volume (``get_scores``): for every source cell that holds points, the softmax over *all* target
cells of the cell's scores, absent points counting as 0 (the released code pads the values with zeros up to the
number of target cells), and its maximum; averaged over the cells of each pair, then over the pairs; the same
with source and target swapped, and the two averaged. Loss = score(negatives) - score(positives), negatives being
the source of the next pair of the batch with the target.

Deviations from the released code: (1) ``get_scores`` finds a cell's points with a k-nearest-neighbour search
(faiss) over point coordinates and so keeps at most k of them when the union holds more (an artefact of the
search, and which k are kept is up to faiss): here every point of the cell counts. (2) The released code counts
``fs**2`` cells with ``fs`` = the largest coordinate + 1 (square grids); here the other image's ``H * W`` (the same
for the square 400 x 400 training images).
"""
from typing import Tuple

import torch

__all__ = ["sparse_match_score", "training_volume", "sparse_weak_loss"]


def _direction_score(values: torch.Tensor, seg: torch.Tensor, n_seg: int, n_other: int, batch: torch.Tensor,
                     n_batch: int) -> torch.Tensor:
    """Mean over pairs of (mean over present cells of the max softmax probability, zeros for absent points)."""
    count = torch.bincount(seg, minlength=n_seg)
    top = values.new_full((n_seg,), float("-inf")).scatter_reduce(0, seg, values, "amax", include_self=True)
    zeros = (n_other - count).to(values.dtype)
    # the largest entry of the padded vector: the largest value, or 0 when zeros were padded and all values < 0
    top = torch.where(zeros > 0, top.clamp(min=0), top)
    m = top.detach()
    denom = values.new_zeros(n_seg).index_add(0, seg, torch.exp(values - m[seg])) + zeros * torch.exp(-m)
    present = count > 0
    best = torch.exp(top - m) / denom.clamp_min(torch.finfo(values.dtype).tiny)
    best = torch.where(present, best, torch.zeros_like(best))
    cell_batch = batch  # (n_seg,) pair index of each cell
    per_pair = values.new_zeros(n_batch).index_add(0, cell_batch, best)
    n_cells = torch.bincount(cell_batch[present], minlength=n_batch).to(values.dtype)
    return (per_pair / n_cells.clamp_min(1)).mean()


def sparse_match_score(coords: torch.Tensor, values: torch.Tensor, batch_size: int, src_grid: Tuple[int, int],
                       tgt_grid: Tuple[int, int]) -> torch.Tensor:
    """The released ``(get_scores(corr) + get_scores(corr, reverse=True)) / 2`` of a sparse volume.

    Args:
        coords: (N, 5) int64 rows ``(b, i, j, k, l)``; values: (N,) scores of the points.
        src_grid, tgt_grid: (H, W) of the source and target feature grids.
    """
    hs, ws = src_grid
    ht, wt = tgt_grid
    b = coords[:, 0]
    src_id = (b * hs + coords[:, 1]) * ws + coords[:, 2]
    tgt_id = (b * ht + coords[:, 3]) * wt + coords[:, 4]
    src_batch = torch.arange(batch_size, device=coords.device).repeat_interleave(hs * ws)
    tgt_batch = torch.arange(batch_size, device=coords.device).repeat_interleave(ht * wt)
    a = _direction_score(values, src_id, batch_size * hs * ws, ht * wt, src_batch, batch_size)
    r = _direction_score(values, tgt_id, batch_size * ht * wt, hs * ws, tgt_batch, batch_size)
    return (a + r) / 2


def training_volume(model, src_img: torch.Tensor, tgt_img: torch.Tensor):
    """The released training forward on a :class:`semcorr.models.sparse_ncnet.SparseNCNet` built as ``train.py``
    runs it (``relocalization=None, change_stride=False, mutual=False``): features, the top-k union in both
    directions, the sparse consensus (``SparseNCNet.sparse_scores``). Returns (coords, scores, src_grid, tgt_grid)."""
    fs, ft = model.features(src_img), model.features(tgt_img)
    # features() gives (consensus-grid map, fine map for relocalisation); the fine map is not used in training
    fs, ft = (fs[0] if isinstance(fs, tuple) else fs), (ft[0] if isinstance(ft, tuple) else ft)
    coords, _, scores = model.sparse_scores(fs, ft)
    return coords, scores, tuple(fs.shape[-2:]), tuple(ft.shape[-2:])


def sparse_weak_loss(model, src_img: torch.Tensor, tgt_img: torch.Tensor, neg_src_img: torch.Tensor):
    """``score(neg_src, tgt) - score(src, tgt)``; returns (loss, positive score, negative score)."""
    B = src_img.shape[0]
    c, v, gs, gt = training_volume(model, src_img, tgt_img)
    pos = sparse_match_score(c, v, B, gs, gt)
    c, v, gs, gt = training_volume(model, neg_src_img, tgt_img)
    neg = sparse_match_score(c, v, B, gs, gt)
    return neg - pos, pos, neg
