"""Soft-argmax ops (contract: docs/OPS.md#soft-argmax)."""
from typing import Optional

import torch
from torch import Tensor

__all__ = ["kernel_soft_argmax"]


def kernel_soft_argmax(corr: Tensor, *, beta: float = 50.0, sigma: Optional[float] = 5.0,
                       normalize: bool = True) -> Tensor:
    """SFNet's kernel soft-argmax: a differentiable, sub-cell best match for every source position.

    For each source position ``(b, i, j)``, over its ``Ht * Wt`` target scores ``s``:

    1. if ``normalize``: ``s = s / sqrt(sum s^2 + 1e-6)`` (SFNet's ``L2normalize`` of the correlation);
    2. ``(y0, x0)`` = the discrete argmax of ``s`` (lowest flat index on ties; no gradient flows through it);
    3. ``g = exp(-((x - x0)^2 + (y - y0)^2) / (2 sigma^2))`` in target grid cells (peak 1, not normalised);
    4. ``p = softmax(beta * g * s)`` over the targets (max-subtracted, accumulated in float32 or better);
    5. ``out = (sum p * X, sum p * Y)`` with ``X = linspace(-1, 1, Wt)``, ``Y = linspace(-1, 1, Ht)``.

    Args:
        corr: source-major correlation ``(B, Hs, Ws, Ht, Wt)`` (as returned by :func:`corr4d`). SFNet's own
            volume is target-major ``(B, Ht*Wt, Hs, Ws)``: pass ``corr_tm.permute(0, 2, 3, 1).reshape(B, Hs, Ws,
            Ht, Wt)``.
        beta: softmax inverse temperature, >= 0 (SFNet: 50). Stable up to at least 100 in every dtype.
        sigma: standard deviation of the Gaussian in target cells (SFNet: 5). ``None`` (or <= 0) gives the plain
            soft-argmax (CATs) without a kernel.
        normalize: L2-normalise each source position's scores first (SFNet does). Default ``True``.

    Returns:
        ``(B, Hs, Ws, 2)`` as ``(x, y)`` in ``[-1, 1]`` over the *target grid* (align_corners=True over the grid
        cells: -1 / +1 are the centres of the first / last target cells), in the input dtype.

    Fused: one pass over each source position's scores finds the norm and the argmax, a second forms the
    kernel-weighted softmax and the expected coordinates; no volume-sized temporary is allocated. The
    backward recomputes the probabilities instead of storing them. Differentiable in ``corr`` (double
    backward is not implemented). dtypes: float32/float64 on CPU; also float16/bfloat16 on CUDA. Empty source
    grids give an empty output; an empty target grid with source positions is an error.
    """
    if sigma is not None and not isinstance(sigma, (int, float)):
        raise TypeError("kernel_soft_argmax: `sigma` must be a number or None, got %s" % type(sigma).__name__)
    s = 0.0 if sigma is None else float(sigma)
    return torch.ops.semcorr.kernel_soft_argmax.default(corr, float(beta), s, bool(normalize))
