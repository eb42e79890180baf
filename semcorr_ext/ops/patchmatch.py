"""PatchMatch neighbourhood consensus ops (docs/OPS.md#patchmatch; Lee et al., "PatchMatch-Based Neighborhood Consensus
for Semantic Correspondence", CVPR 2021).

One PMNC iteration is ``patchmatch_propagate`` (candidates) -> ``gather_windows4d`` (the w^4 correlation windows
around them) -> a learned scoring network -> ``patchmatch_select`` (keep the k best).
"""
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ["patchmatch_propagate", "gather_windows4d", "gather_windows4d_points", "gather_windows4d_linear",
           "patchmatch_select", "PMNC_OFFSETS", "pmnc_offsets",
           "num_candidates"]

#: The 21 source-grid offsets of PMNC: (0,0), (0,+-1), (+-1,0), (0,+-3), (+-3,0), (0,+-5), (+-5,0), (+-1,+-2), (+-2,+-1).
PMNC_OFFSETS = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0), (0, -3), (0, 3), (-3, 0), (3, 0), (0, -5), (0, 5), (-5, 0),
                (5, 0), (-1, -2), (-1, 2), (1, -2), (1, 2), (-2, -1), (-2, 1), (2, -1), (2, 1))


def pmnc_offsets(device=None) -> Tensor:
    """:data:`PMNC_OFFSETS` as a (21, 2) int64 tensor."""
    return torch.tensor(PMNC_OFFSETS, dtype=torch.int64, device=device)


def num_candidates(K: int, P: int, random_samples: int = 0) -> int:
    """N of :func:`patchmatch_propagate`: ``K * (9 + P + random_samples)``."""
    return K * (9 + P + random_samples)


def patchmatch_propagate(matches: Tensor, offsets: Tensor, *, target_size: Sequence[int], random_samples: int = 0,
                         radius: int = 0, seed: int = 0, iteration: int = 0) -> Tuple[Tensor, Tensor]:
    """Candidate matches of one PatchMatch iteration: own, propagated, refined and random.

    Args:
        matches: ``(B, Hs, Ws, K, 2)`` int64, the K current matches (row, col) of each source pixel in the
            target grid. Values outside the grid are clamped into it.
        offsets: ``(P, 2)`` int64 source-grid offsets (di, dj) to propagate from (PMNC: :func:`pmnc_offsets`).
        target_size: ``(Ht, Wt)`` of the target grid.
        random_samples: R, the number of random candidates drawn around each own match. Default 0.
        radius: the random candidates are uniform in the square ``[-radius, radius]^2`` around the match.
        seed, iteration: the key of the counter-based hash (splitmix64, chained over
            ``(seed, iteration, b, i, j, sample)``) that draws the random candidates: every backend (CPU, CUDA,
            the float64 reference) draws exactly the same ones for the same key.

    Returns:
        ``candidates`` ``(B, Hs, Ws, N, 2)`` int64 and ``valid`` ``(B, Hs, Ws, N)`` bool, ``N = K * (9 + P + R)``.
        Order of the N candidates of source pixel (i, j), with ``m_k`` its own k-th match:

        * ``[0, K)``: the own matches ``m_k``;
        * ``K + p*K + k``: propagation, match k of source pixel ``(i, j) + offsets[p]``; when that pixel is
          outside the source grid, a copy of ``m_k`` marked invalid;
        * ``K + P*K + 8*k + d``: refinement, ``m_k`` plus the d-th of the 8 neighbours in row-major order
          (-1,-1), (-1,0), (-1,1), (0,-1), (0,1), (1,-1), (1,0), (1,1);
        * ``K*(9+P) + k*R + r``: random sample r around ``m_k``, hash sample index ``k*R + r``.

        Every candidate is clamped into ``[0, Ht) x [0, Wt)``. ``valid`` is False for the out-of-grid
        propagation fallbacks and for any candidate equal to an earlier one, so each distinct candidate is
        valid exactly once (its first occurrence) and :func:`patchmatch_select` never picks one twice.
        Candidate 0 is always valid. Not differentiable (integer outputs).
    """
    if len(target_size) != 2:
        raise ValueError("patchmatch_propagate: `target_size` must be (Ht, Wt), got %r" % (target_size,))
    return torch.ops.semcorr.patchmatch_propagate.default(
        matches, offsets, [int(target_size[0]), int(target_size[1])], int(random_samples), int(radius), int(seed),
        int(iteration))


def gather_windows4d(corr: Tensor, candidates: Tensor, window: int = 5) -> Tensor:
    """The ``w^4`` windows of a 4D correlation volume centred at sparse candidate matches.

    ``out[b, i, j, n, a, e, c, d] = corr[b, i + a - r, j + e - r, u + c - r, v + d - r]`` with
    ``(u, v) = candidates[b, i, j, n]``, ``r = window // 2``, and 0 where the position is outside the volume.

    Args:
        corr: ``(B, Hs, Ws, Ht, Wt)`` (or NC-Net's ``(B, 1, Hs, Ws, Ht, Wt)``), float32/float64/bfloat16
            (also float16 on CUDA).
        candidates: ``(B, Hs, Ws, N, 2)`` int64 (row, col) in the target grid.
        window: odd window side w. Default 5 (PMNC).

    Returns:
        ``(B, Hs, Ws, N, w, w, w, w)`` in the dtype of ``corr``. Differentiable in ``corr``: the backward
        sums the window gradients back into a zero volume, deterministically on every backend (each volume
        element gathers its contributions in a fixed order; no atomics).
    """
    if corr.dim() == 6 and corr.shape[1] == 1:
        corr = corr.squeeze(1)
    return torch.ops.semcorr.gather_windows4d.default(corr, candidates, int(window))


def gather_windows4d_points(corr: Tensor, points: Tensor, window: int = 5) -> Tensor:
    """The ``w^4`` windows of a 4D correlation volume centred at a list of 4D positions.

    ``out[m, a, e, c, d] = corr[b, i + a - r, j + e - r, u + c - r, v + d - r]`` with
    ``(b, i, j, u, v) = points[m]``, ``r = window // 2``, and 0 where the position is outside the volume.
    :func:`gather_windows4d` with the source cell given per window: PMNC uses it to cut only the windows it has
    not scored yet (a few per source cell and iteration) instead of every candidate of every cell.

    Args:
        corr: ``(B, Hs, Ws, Ht, Wt)`` (or ``(B, 1, Hs, Ws, Ht, Wt)``), float32/float64/bfloat16 (also float16 on
            CUDA).
        points: ``(M, 5)`` int64 ``(b, i, j, u, v)``; any values (a window outside the volume is all zeros).
        window: odd window side w. Default 5 (PMNC).

    Returns:
        ``(M, w, w, w, w)`` in the dtype of ``corr``. Differentiable in ``corr`` (deterministic backward: the
        points are listed by window centre and each volume element gathers its contributions in a fixed order).
    """
    if corr.dim() == 6 and corr.shape[1] == 1:
        corr = corr.squeeze(1)
    return torch.ops.semcorr.gather_windows4d_points.default(corr, points, int(window))


def gather_windows4d_linear(corr: Tensor, points: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """A linear layer on the windows of :func:`gather_windows4d_points`, without materialising them.

    ``out[m, c] = bias[c] + sum(weight[c] * gather_windows4d_points(corr, points, w)[m])``: the first layer of
    PMNC's scoring network (a 4D convolution whose kernel covers the window). On CPU the windows are cut tile by
    tile into a buffer that stays in cache and multiplied there; on CUDA they are cut in bounded chunks for cuBLAS.

    Args:
        corr: ``(B, Hs, Ws, Ht, Wt)`` (or ``(B, 1, Hs, Ws, Ht, Wt)``), float32/float64/bfloat16 (also float16 on
            CUDA).
        points: ``(M, 5)`` int64 ``(b, i, j, u, v)``, any values (taps outside the volume read 0).
        weight: ``(C, w, w, w, w)``, odd ``w`` (the window side), the dtype of ``corr``.
        bias: ``(C)`` or None.

    Returns:
        ``(M, C)``. Differentiable in ``corr``, ``weight`` and ``bias``.
    """
    if corr.dim() == 6 and corr.shape[1] == 1:
        corr = corr.squeeze(1)
    return torch.ops.semcorr.gather_windows4d_linear.default(corr, points, weight, bias)


def patchmatch_select(candidates: Tensor, scores: Tensor, valid: Tensor, k: int,
                      return_indices: bool = False):
    """The k best valid candidates of each source pixel.

    Args:
        candidates: ``(B, Hs, Ws, N, 2)`` int64.
        scores: ``(B, Hs, Ws, N)`` float.
        valid: ``(B, Hs, Ws, N)`` bool (e.g. from :func:`patchmatch_propagate`).
        k: how many to keep.
        return_indices: also return the candidate indices.

    Returns:
        ``(matches (B, Hs, Ws, k, 2) int64, scores (B, Hs, Ws, k))`` (+ ``indices (B, Hs, Ws, k)`` int64), in
        rank order: higher score first, NaN after every number, equal scores by lower candidate index. If a
        pixel has fewer than k valid candidates the remaining slots hold index -1, match (-1, -1) and score
        -inf. Differentiable in ``scores`` (the gradient goes back to the selected candidates).
    """
    m, s, i = torch.ops.semcorr.patchmatch_select.default(candidates, scores, valid, int(k))
    return (m, s, i) if return_indices else (m, s)
