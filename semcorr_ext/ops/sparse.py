"""Sparse neighbourhood-consensus ops (docs/OPS.md#corr4d_topk, #kernel_map4d, #sparse_conv4d): top-k correlation
and submanifold sparse 4D convolution (Sparse NC-Net, Rocco et al. 2020, without the MinkowskiEngine dependency)."""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ["corr4d_topk", "KernelMap", "kernel_map4d", "sparse_conv4d", "CORR4D_TOPK_CUDA_MAX_K"]

#: largest ``k`` the CUDA kernel of :func:`corr4d_topk` accepts (each row's list lives in shared memory)
CORR4D_TOPK_CUDA_MAX_K = 32


def corr4d_topk(src: Tensor, tgt: Tensor, k: int, *, normalize: bool = True, eps: float = 1e-6
                ) -> Tuple[Tensor, Tensor]:
    """The ``k`` largest correlations of every source position over all target positions.

    Same numbers as :func:`semcorr_ext.ops.corr4d` (cosine similarity with ``normalize``, else the raw dot
    product; no relu/power) but the ``(Hs*Ws) x (Ht*Wt)`` volume is never materialised: it is computed in
    tiles (a BLAS GEMM per tile of target positions on CPU; a shared-memory tiled kernel on CUDA) and each
    source row keeps a running sorted top-k list. Peak extra memory ``O(B*Hs*Ws*k + tile)``.

    Args:
        src: source features ``(B, C, Hs, Ws)``.
        tgt: target features ``(B, C, Ht, Wt)``, same dtype and device.
        k: number of kept targets per source position, ``0 <= k <= Ht*Wt``; on CUDA also
            ``k <= 32`` (:data:`CORR4D_TOPK_CUDA_MAX_K`).
        normalize: L2-normalise the feature vectors first (``f / sqrt(sum_c f^2 + eps)``). Default ``True``.
        eps: added to the squared norm. Default 1e-6.

    Returns:
        ``(values, indices)``, both ``(B, Hs, Ws, k)``: values in the input dtype, sorted descending (ties go
        to the smaller target index; NaN ranks first, as ``torch.topk``); indices int64 flat target positions
        ``l + Wt * k`` (so ``divmod(index, Wt)`` gives the target cell (k, l)).

    Differentiable in ``src`` and ``tgt`` through ``values`` (the selection itself is piecewise constant).
    dtypes: float32/float64/bfloat16 on CPU; also float16 on CUDA (float32 accumulation). Used by Sparse NC-Net
    in both directions (src->tgt and tgt->src) to pick the candidate matches.
    """
    return torch.ops.semcorr.corr4d_topk.default(src, tgt, int(k), bool(normalize), float(eps))


@dataclass
class KernelMap:
    """The neighbour lists of a submanifold sparse 4D convolution on one coordinate set.

    For kernel offset ``o`` (enumerated in weight order ``o = ((a*k2 + b)*k3 + c)*k4 + d``, i.e. the offset
    ``(a - k1//2, b - k2//2, c - k3//2, d - k4//2)``), the pairs ``(in_rows[p], out_rows[p])`` for ``p`` in
    ``[offsets_ptr[o], offsets_ptr[o+1])`` say that output row ``out_rows[p]`` reads input row ``in_rows[p]``
    through ``weight[:, :, a, b, c, d]``; ``out_rows`` increases within an offset. Build it once with
    :func:`kernel_map4d` and pass it to every :func:`sparse_conv4d` layer on the same coordinates.
    """

    in_rows: Tensor
    out_rows: Tensor
    offsets_ptr: Tensor
    kernel_size: Tuple[int, int, int, int]
    num_points: int

    @property
    def num_pairs(self) -> int:
        return int(self.in_rows.shape[0])

    def to(self, device) -> "KernelMap":
        return KernelMap(self.in_rows.to(device), self.out_rows.to(device), self.offsets_ptr.to(device),
                         self.kernel_size, self.num_points)


def _kernel_size4(kernel_size) -> Tuple[int, int, int, int]:
    if isinstance(kernel_size, int):
        return (kernel_size,) * 4
    ks = tuple(int(k) for k in kernel_size)
    if len(ks) == 1:
        return ks * 4
    if len(ks) != 4:
        raise ValueError("kernel_map4d: `kernel_size` must be an int or 4 ints, got %r" % (kernel_size,))
    return ks


def kernel_map4d(coords: Tensor, kernel_size: Union[int, Sequence[int]]) -> KernelMap:
    """Build the kernel map of a submanifold sparse 4D convolution.

    Args:
        coords: ``(N, 5)`` int32/int64 rows ``(b, i, j, k, l)``, every entry ``>= 0``, rows unique.
        kernel_size: odd int or 4 odd ints ``(k1, k2, k3, k4)``.

    Returns:
        :class:`KernelMap` (int64 tensors on the device of ``coords``). Built by sorting 64-bit coordinate keys
        once and binary-searching every (offset, point) neighbour; the batch index is never crossed.
    """
    ks = _kernel_size4(kernel_size)
    in_rows, out_rows, ptr = torch.ops.semcorr.kernel_map4d.default(coords, list(ks))
    return KernelMap(in_rows, out_rows, ptr, ks, int(coords.shape[0]))


def sparse_conv4d(feats: Tensor, coords: Optional[Tensor], weight: Tensor, bias: Optional[Tensor] = None,
                  kernel_map: Optional[KernelMap] = None) -> Tensor:
    """Submanifold sparse 4D convolution (output on the input coordinates).

    ``out[n] = bias + sum_o weight[:, :, o] @ feats[m]`` over the kernel offsets ``o`` whose neighbour
    ``coords[n] + delta_o`` is present (at row ``m``). A cross-correlation like ``conv3d``: on a fully dense
    coordinate set it equals :func:`semcorr_ext.ops.conv4d` with "same" zero padding.

    Args:
        feats: ``(N, Cin)`` features of the points, float32/float64/bfloat16 (CPU), also float16 (CUDA).
        coords: ``(N, 5)`` int rows ``(b, i, j, k, l)``; only used to build the kernel map when ``kernel_map`` is
            None (may then be None).
        weight: ``(Cout, Cin, k1, k2, k3, k4)``, odd kernel sizes.
        bias: ``(Cout,)`` or None.
        kernel_map: from :func:`kernel_map4d` on these coordinates with the weight's kernel size; reuse it for
            every layer of a stack.

    Returns:
        ``(N, Cout)``. Differentiable in ``feats``, ``weight`` and ``bias``; forward and backward are
        deterministic on every backend (per offset: gather -> GEMM -> scatter into rows that are distinct
        within the offset, no atomics).
    """
    ks = tuple(int(s) for s in weight.shape[2:]) if weight.dim() == 6 else None
    if kernel_map is None:
        if coords is None:
            raise ValueError("sparse_conv4d: give `coords` or a prebuilt `kernel_map`")
        if ks is None:
            raise RuntimeError("semcorr::sparse_conv4d: `weight` must be a 6-D tensor (Cout, Cin, k1, k2, k3, k4), "
                               "got shape %s" % (list(weight.shape),))
        kernel_map = kernel_map4d(coords, ks)
    else:
        if ks is not None and tuple(kernel_map.kernel_size) != ks:
            raise ValueError("sparse_conv4d: `kernel_map` was built for kernel size %s but `weight` has %s"
                             % (tuple(kernel_map.kernel_size), ks))
        if feats.dim() == 2 and kernel_map.num_points != feats.shape[0]:
            raise ValueError("sparse_conv4d: `kernel_map` was built for %d points but `feats` has %d rows"
                             % (kernel_map.num_points, feats.shape[0]))
    return torch.ops.semcorr.sparse_conv4d.default(feats, weight, bias, kernel_map.in_rows, kernel_map.out_rows,
                                                   kernel_map.offsets_ptr)
