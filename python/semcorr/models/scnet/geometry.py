"""SCNet's geometric kernel: probabilistic Hough matching of region pairs, as the released code builds it.

Read from k-han/SCNet (``vl_nnhoughvote.m``, ``vl_GeoVote.m``, ``box2frame.m``, ``inv_frame.m``):

* Every box is a frame: centre ``(xc, yc)`` and half sizes ``(w/2, h/2)`` of its corner coordinates
  (``box2frame``; the boxes are MATLAB 1-based pixel coordinates).
* The match (r, r') votes for the position where the *source image's bottom-right corner* ``(W_src, H_src)``
  lands when the source box frame is mapped onto the target box frame (offsets in the box frame), and for
  ``log2`` of the ratio of the frame areas.
* Hough space: x over ``[1, 2 W_tgt]``, y over ``[1, 2 H_tgt]`` with ``round(2W / cell * 0.2)`` bins,
  ``cell = max(sqrt(4 W_tgt H_tgt / 8000), 5)``; scale over ``[-4, 4]`` in 40 bins (``round(20 * 2)``);
  bin edges from ``linspace``, a value v falls in bin ``i`` when ``edge[i] <= v < edge[i+1]``
  (VLFeat's ``vl_binsearch``). Pairs outside, or whose aspect ratios differ by a factor >= 2
  (``thresAspect``), do not vote.
* Votes are ``max(A - 0.4, 0)`` (``sim_thresh``) of the similarity A; each pair receives the sum of the votes
  of its bin, plus 0.01: ``G = V[bin] + 0.01`` (0.01 alone for pairs that do not vote). The paper's
  ``z = f * sum_m' K f(m')`` is then ``A * G`` (``Dot2DWISE``).

The released backward of the vote (``vl_nnhoughvote`` with ``dzdy``) is not the derivative of the forward:
for each bin it sums ``dzdy`` only over the pairs of that bin whose vote is positive, gives that sum to those
pairs, and skips the smallest bin id among the pairs with a non-zero ``dzdy`` (it assumes that id is the
"no bin" 0). :func:`hough_vote_scores` reproduces it by default (``grad="published"``, the gradient the
published weights were trained with); ``grad="exact"`` is the true derivative (our option).

Why not ``semcorr_ext.ops.hough_vote``: that op returns ``app * V(app)[bins]`` with the same tensor voting and
being weighted, whereas SCNet votes with ``max(A - 0.4, 0)``, adds 0.01 and weights by ``A`` (AG) or by a
different similarity (AG+), and trains with the released non-exact backward above; the vote is one
``index_add`` and one gather over the (Ns, Nt) pairs, so plain torch costs nothing here.
"""
import math
from typing import Tuple

import torch

__all__ = ["SIM_THRESH", "VOTE_BIAS", "box_frames", "hough_bins", "hough_vote_scores", "to_one_based"]

#: ``sim_thresh`` of vl_nnhoughvote: votes are max(A - 0.4, 0)
SIM_THRESH = 0.4
#: added to every pair's vote sum (``wVote + 0.01``)
VOTE_BIAS = 0.01
_N_CELL = 8000  # nCell of vl_GeoVote
_ZOOM_XY, _ZOOM_S = 0.2, 2.0
_THRES_ASPECT = 2.0
_S_RANGE = 4.0  # log2 scale bins span [-4, 4]


def to_one_based(boxes: torch.Tensor) -> torch.Tensor:
    """Our boxes are 0-based pixel coordinates (x0, y0, x1, y1); the released MATLAB code uses 1-based ones."""
    return boxes + 1


def box_frames(boxes1: torch.Tensor):
    """``box2frame`` of 1-based boxes (R, 4) -> centres (R, 2) and half sizes (R, 2) (float64)."""
    b = boxes1.to(torch.float64)
    c = (b[:, :2] + b[:, 2:]) / 2
    return c, b[:, 2:] - c


def hough_space(tgt_hw: Tuple[int, int]):
    """Bin edges (x, y, s) of vl_GeoVote's Hough space for a target image of (H, W) pixels (float64)."""
    H, W = int(tgt_hw[0]), int(tgt_hw[1])
    width, height = 2.0 * W, 2.0 * H
    cell = max(math.sqrt(width * height / _N_CELL), 5.0)
    # MATLAB round: half away from zero (all values here are positive)
    nx = int(math.floor(width / cell * _ZOOM_XY + 0.5))
    ny = int(math.floor(height / cell * _ZOOM_XY + 0.5))
    ns = int(math.floor(20 * _ZOOM_S + 0.5))
    f64 = dict(dtype=torch.float64)
    return (torch.linspace(1, width, nx + 1, **f64), torch.linspace(1, height, ny + 1, **f64),
            torch.linspace(-_S_RANGE, _S_RANGE, ns + 1, **f64))


def _binsearch(edges: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """vl_binsearch: number of edges <= v (0 below the first edge, len(edges) at or above the last)."""
    return torch.searchsorted(edges.contiguous(), v.contiguous(), right=True)


def hough_bins(src_boxes: torch.Tensor, tgt_boxes: torch.Tensor, src_hw, tgt_hw):
    """The bin of every region pair, as vl_GeoVote's ``tableBina`` minus one.

    Args:
        src_boxes, tgt_boxes: (Ns, 4), (Nt, 4) boxes (x0, y0, x1, y1) in 0-based pixels of the source / target
            image (as given to the ROI pooling).
        src_hw, tgt_hw: (H, W) of the two images (the network inputs).
    Returns:
        ``(bins, nbins)``: (Ns, Nt) int64 flat ids ``(s * nx + x) * ny + y`` (the column-major MATLAB id
        ``y + x * ny + s * ny * nx`` minus one), -1 for pairs that do not vote; ``nbins = (ns, nx, ny)``.
    """
    cs, hs = box_frames(to_one_based(src_boxes))
    ct, ht = box_frames(to_one_based(tgt_boxes))
    H, W = float(src_hw[0]), float(src_hw[1])
    # inv_frame + projection of the source image's bottom-right corner into each source box frame
    x_train = (W - cs[:, 0]) / hs[:, 0]
    y_train = (H - cs[:, 1]) / hs[:, 1]
    s_train = hs[:, 0] * hs[:, 1]  # detA
    x_vote = ht[None, :, 0] * x_train[:, None] + ct[None, :, 0]
    y_vote = ht[None, :, 1] * y_train[:, None] + ct[None, :, 1]
    s_vote = torch.log2((ht[None, :, 0] * ht[None, :, 1] / s_train[:, None]).abs())
    xe, ye, se = (e.to(x_vote.device) for e in hough_space(tgt_hw))
    nx, ny, ns = len(xe) - 1, len(ye) - 1, len(se) - 1
    bx, by, bs = _binsearch(xe, x_vote), _binsearch(ye, y_vote), _binsearch(se, s_vote)
    ok = (bx >= 1) & (bx <= nx) & (by >= 1) & (by <= ny) & (bs >= 1) & (bs <= ns)
    ratio = (ht[:, 0] / ht[:, 1])[None, :] / (hs[:, 0] / hs[:, 1])[:, None]  # aTest / aTrain
    ok &= (ratio < _THRES_ASPECT) & (ratio > 1.0 / _THRES_ASPECT)
    flat = ((bs - 1) * nx + (bx - 1)) * ny + (by - 1)
    return torch.where(ok, flat, torch.full_like(flat, -1)), (ns, nx, ny)


class _PublishedVote(torch.autograd.Function):
    """G = V[bins] + 0.01 with V the per-bin sums of max(A - 0.4, 0); backward as vl_nnhoughvote's."""

    @staticmethod
    def forward(ctx, sim, bins, n_bins: int, exact: bool):
        vote = (sim - SIM_THRESH).clamp(min=0)
        valid = bins >= 0
        V = vote.new_zeros(n_bins).index_add_(0, bins[valid], vote[valid])
        G = torch.where(valid, V[bins.clamp(min=0)], torch.zeros_like(vote)) + VOTE_BIAS
        ctx.save_for_backward(bins, vote)
        ctx.n_bins, ctx.exact = n_bins, exact
        return G

    @staticmethod
    def backward(ctx, dzdy):
        bins, vote = ctx.saved_tensors
        valid = bins >= 0
        positive = valid & (vote > 0)
        if ctx.exact:  # d G[m'] / d A[m] = [bin(m) = bin(m')] [A[m] > 0.4]
            S = dzdy.new_zeros(ctx.n_bins).index_add_(0, bins[valid], dzdy[valid])
            return torch.where(positive, S[bins.clamp(min=0)], torch.zeros_like(dzdy)), None, None, None
        # released: offSets = unique(tableBina(dzdy ~= 0)); offSets(2:end) (1-based ids, 0 = no bin)
        ids = torch.unique(bins[dzdy != 0] + 1)
        grad = torch.zeros_like(dzdy)
        if ids.numel() <= 1:
            return grad, None, None, None
        kept = torch.zeros(ctx.n_bins + 1, dtype=torch.bool, device=bins.device)
        kept[ids[1:]] = True
        sel = positive & kept[bins + 1]
        S = dzdy.new_zeros(ctx.n_bins).index_add_(0, bins[sel], dzdy[sel])
        grad[sel] = S[bins[sel]]
        return grad, None, None, None


def hough_vote_scores(sim: torch.Tensor, bins: torch.Tensor, nbins, grad: str = "published") -> torch.Tensor:
    """SCNet's geometry term ``G`` (``G_out``) of one pair: (Ns, Nt) from the similarity that votes (``A_out``
    for AG, the geometry similarity for AG+) and :func:`hough_bins`. ``grad``: ``"published"`` (the released
    backward, default) or ``"exact"``."""
    if grad not in ("published", "exact"):
        raise ValueError("grad must be 'published' or 'exact', got %r" % (grad,))
    if sim.shape != bins.shape or sim.dim() != 2:
        raise ValueError("sim and bins must both be (Ns, Nt), got %s and %s" % (tuple(sim.shape), tuple(bins.shape)))
    return _PublishedVote.apply(sim, bins, int(math.prod(nbins)), grad == "exact")
