"""Hough voting ops (docs/OPS.md#hough): HPF regularised Hough matching and general binned Hough voting."""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

__all__ = ["hough_match", "hough_vote", "flat_sizes"]

SizeLike = Union[Sequence[float], Sequence[Sequence[float]], Tensor]


def flat_sizes(size: SizeLike, name: str = "size") -> list:
    """Image sizes as the op's ``float[]``: ``(W, H)`` -> ``[W, H]`` (shared by the batch); ``[(W0, H0), ...]`` or a
    ``(B, 2)`` tensor -> ``[W0, H0, W1, H1, ...]``. A tensor is read on the host (``.tolist()``: a device sync,
    and a graph break under ``torch.compile``; pass Python numbers there)."""
    if isinstance(size, Tensor):
        size = size.detach().to("cpu", torch.float64).reshape(-1).tolist()
    flat = []
    for v in size:
        if isinstance(v, Tensor):
            flat.extend(float(x) for x in v.reshape(-1).tolist())
        elif isinstance(v, (list, tuple)):
            flat.extend(float(x) for x in v)
        else:
            flat.append(float(v))
    if len(flat) % 2 != 0 or not flat:
        raise ValueError("semcorr::hough_match: `%s` must be (W, H), B pairs (W, H) or a (B, 2) tensor, got %d values"
                         % (name, len(flat)))
    return flat


def hough_match(app: Tensor, src_centers: Tensor, tgt_centers: Tensor, src_size: SizeLike, tgt_size: SizeLike, *,
                ncells: int = 8192, smooth: bool = True) -> Tensor:
    """Regularised Hough matching (HPF, Min et al. ICCV 2019, ``rhm``): re-weights appearance scores by the
    Hough votes of their offset, so that matches agreeing with the dominant translation are promoted.

    For each image pair: the Hough space spans ``(Ws + Wt) x (Hs + Ht)`` pixels, cut into square cells of side
    ``cell = sqrt(hs_w * hs_h / ncells)`` (``nbins_x = int(hs_w / cell) + 1``, ``nbins_y`` likewise). Match
    ``(m, n)`` votes with weight ``app[m, n]`` at ``(src_size - src_centers[m]) + tgt_centers[n]``, binned per
    axis by ``trunc(vote / cell)`` (flat bin ``x + y * nbins_x``). With ``smooth`` the votes are convolved with
    HPF's normalised 7x7 Gaussian (sigma = 7/2/2.354, zero padding 3). Output ``app[m, n] * votes[bin(m, n)]``.

    Args:
        app: ``(B, Ns, Nt)`` appearance scores (HPF: ``ops.corr4d(relu=True, power=3, eps=0)`` on hyperpixels).
        src_centers: ``(B, Ns, 2)`` source box centres ``(x, y)`` in pixels, float32/float64.
        tgt_centers: ``(B, Nt, 2)`` target box centres, same dtype. Bin arithmetic is done in this dtype, as
            HPF does (float32 centres reproduce HPF's bins exactly).
        src_size: source image size ``(W, H)`` in pixels, shared by the batch, or one ``(W, H)`` per pair
            (a list of pairs or a ``(B, 2)`` tensor, read on the host).
        tgt_size: target image size(s), likewise.
        ncells: number of Hough cells (HPF: 8192).
        smooth: apply the 7x7 Gaussian to the votes (HPF: always).

    Returns:
        ``(B, Ns, Nt)`` in ``app``'s dtype. Differentiable in ``app`` (the backward is one scatter pass and one
        gather pass, no dense matrix). Votes of centres outside their image are clamped to the border bins
        (HPF would index out of its space). Bin ids are recomputed on the fly, never stored as (Ns, Nt).
        CPU: float32/float64, deterministic (double-precision votes). CUDA: also float16/bfloat16; votes are
        float atomics (nondeterministic order: raises under ``torch.use_deterministic_algorithms(True)``).
    """
    return torch.ops.semcorr.hough_match.default(app, src_centers, tgt_centers, flat_sizes(src_size, "src_size"),
                                                 flat_sizes(tgt_size, "tgt_size"), int(ncells), bool(smooth))


def hough_vote(app: Tensor, bins: Tensor, nbins: Union[int, Sequence[int]], *,
               smooth_kernel: Optional[Tensor] = None) -> Tensor:
    """General binned Hough voting: probabilistic Hough matching (SCNet, Han et al. ICCV 2017; Cho et al.
    CVPR 2015) over offset bins, and variants with scale (or any 1-3-D) bins.

    ``votes[k] = sum of app over the matches with bins == k`` (matches with ``bins == -1`` do not vote), then
    optionally ``votes = votes (*) smooth_kernel`` on the ``nbins`` grid (cross-correlation, centred, zero
    padding: ``F.conv{1,2,3}d(votes, kernel, padding=k // 2)``), and ``out = app * votes[bins]`` (0 where
    ``bins == -1``).

    Args:
        app: ``(B, Ns, Nt)`` scores (SCNet: region-pair appearance similarities).
        bins: ``(B, Ns, Nt)`` int64 (or int32) flat bin id of each match, row-major over ``nbins``, or -1.
            Values outside ``[-1, prod(nbins))`` raise (checked with one min/max pass, a sync on CUDA).
        nbins: the bin grid, an int or 1 to 3 sizes, e.g. ``(n_scale, n_y, n_x)``.
        smooth_kernel: optional kernel with ``len(nbins)`` dims and odd sizes (any float dtype).

    Returns:
        ``(B, Ns, Nt)`` in ``app``'s dtype, differentiable in ``app`` (not in the kernel). Same determinism
        rules as :func:`hough_match`.
    """
    if isinstance(nbins, int):
        nbins = [nbins]
    return torch.ops.semcorr.hough_vote.default(app, bins, [int(n) for n in nbins], smooth_kernel)
