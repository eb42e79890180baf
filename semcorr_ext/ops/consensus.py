"""Dense neighbourhood-consensus ops (docs/OPS.md#consensus): ``conv4d`` and ``max_pool4d``."""
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ["conv4d", "max_pool4d", "conv4d_padding"]

IntOr4 = Union[int, Sequence[int]]


def _four(value, name: str, op: str):
    if isinstance(value, int) and not isinstance(value, bool):
        return [int(value)] * 4
    try:
        vals = [int(v) for v in value]
    except TypeError:
        raise ValueError("semcorr::%s: `%s` must be an int or a sequence of 4 ints, got %r" % (op, name, value))
    if len(vals) != 4:
        raise ValueError("semcorr::%s: `%s` must be an int or a sequence of 4 ints, got %r" % (op, name, value))
    return vals


def conv4d_padding(weight: Tensor, padding: Optional[IntOr4] = None):
    """The 4 paddings ``conv4d`` uses: ``padding`` as given (int -> same on every dim), default ``k // 2``
    per kernel dim ("same" output size for odd kernels)."""
    if padding is None:
        if weight.dim() != 6:
            raise RuntimeError("semcorr::conv4d: `weight` must be a 6-D tensor (Cout, Cin, k1, k2, k3, k4), got shape %s"
                               % (list(weight.shape),))
        return [int(k) // 2 for k in weight.shape[2:]]
    return _four(padding, "padding", "conv4d")


def conv4d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, padding: Optional[IntOr4] = None, *,
           out_dtype: Optional[torch.dtype] = None) -> Tensor:
    """Dense 4D convolution of a correlation volume (the layer of neighbourhood consensus).

    ``out[b, o, i1, i2, i3, i4] = bias[o] + sum_{c, a1..a4} weight[o, c, a1, a2, a3, a4] *
    x[b, c, i1 + a1 - p1, i2 + a2 - p2, i3 + a3 - p3, i4 + a4 - p4]`` with zeros outside the volume:
    a cross-correlation with stride 1, like :func:`torch.nn.functional.conv3d` one dimension up.

    Args:
        x: ``(B, Cin, H1, W1, H2, W2)`` (for a correlation volume: source grid (H1, W1), target (H2, W2)).
        weight: ``(Cout, Cin, k1, k2, k3, k4)``, the standard PyTorch layout; kernels may be non-isotropic
            (ANC-Net's 3x3x5x5). NC-Net checkpoints store ``[k1, Cout, Cin, k2, k3, k4]``: convert with
            ``weight.permute(1, 2, 0, 3, 4, 5)`` or use :meth:`semcorr_ext.nn.Conv4d.from_ncnet_weight`.
        bias: ``(Cout,)`` or ``None``.
        padding: int or 4 ints ``(p1, p2, p3, p4) >= 0``; default ``k // 2`` per dim ("same" for odd k).
        out_dtype: ``None`` (the input dtype) or ``torch.float32`` with bfloat16/float16 inputs: their products
            summed and returned in float32, i.e. the float32 op on the inputs upcast (autocast's choice,
            docs/OPS.md#precision). Gradients keep the inputs' dtype.

    Returns:
        ``(B, Cout, H1 + 2 p1 - k1 + 1, ..., W2 + 2 p4 - k4 + 1)`` in ``out_dtype`` (default: the input dtype).
        A zero-sized input dim gives a zero-sized output dim; an input smaller than the kernel (output size < 1)
        is an error.

    Matches NC-Net ``Conv4d`` (a loop of ``conv3d`` over the first dim) and a brute-force 4D loop.
    Differentiable in ``x``, ``weight`` and ``bias`` (double backward raises). dtypes: float32/float64/bfloat16
    on CPU; also float16 on CUDA (float32 accumulation; docs/OPS.md#precision).

    CPU: the taps of the first one or two dims are folded into the channels of one batched oneDNN
    3-D/2-D convolution per chunk of slices (C++ loop, no Python), with a workspace of O(k1 x one 3-D
    slice): no im2col of the whole volume and no padded copy. CUDA: an implicit-GEMM kernel with
    shared-memory tiles over output channels x positions and the (input channel, tap) reduction.
    """
    pad = conv4d_padding(weight, padding)
    return torch.ops.semcorr.conv4d.default(x, weight, bias, pad, out_dtype)


def max_pool4d(x: Tensor, kernel_size: IntOr4) -> Tuple[Tensor, Tensor]:
    """4D max pooling over non-overlapping blocks with the position of each maximum (NC-Net relocalisation).

    Args:
        x: ``(B, C, H1, W1, H2, W2)``.
        kernel_size: int or 4 ints ``(k1, k2, k3, k4) >= 1``; stride = kernel size, no padding. Trailing
            positions that do not fill a whole block are dropped (like ``max_pool3d``'s default
            ``ceil_mode=False``).

    Returns:
        ``values (B, C, H1 // k1, W1 // k2, H2 // k3, W2 // k4)`` (differentiable: the gradient goes to the
        maximum of each block) and ``argmax (B, 4 * C, ...)`` int64, channel ``4 * c + d`` holding the offset
        ``0 <= . < k_d`` along dim ``d`` of the maximum of channel ``c`` inside its block (NC-Net's
        ``max_i, max_j, max_k, max_l`` for ``C = 1``). Ties go to the first maximum in row-major block order;
        NaN counts as the maximum. The absolute index along dim d is ``block_index * k_d + offset``.
    """
    return torch.ops.semcorr.max_pool4d.default(x, _four(kernel_size, "kernel_size", "max_pool4d"))
