"""Correlation ops (contract: docs/OPS.md#correlation)."""
from typing import Optional

import torch
from torch import Tensor

__all__ = ["corr4d", "mutual_matching"]


def corr4d(src: Tensor, tgt: Tensor, *, normalize: bool = True, relu: bool = False, power: float = 1.0,
           eps: float = 1e-6, out_dtype: Optional[torch.dtype] = None) -> Tensor:
    """Dense 4D correlation of two feature maps.

    ``out[b, i, j, k, l] = <src[b, :, i, j], tgt[b, :, k, l]>`` after optionally L2-normalising every
    C-vector (``f / sqrt(sum_c f^2 + eps)``), then ``max(out, 0)`` if ``relu``, then ``out ** power``.

    Args:
        src: source features ``(B, C, Hs, Ws)``.
        tgt: target features ``(B, C, Ht, Wt)``, same dtype and device.
        normalize: L2-normalise the feature vectors first (cosine similarity). Default ``True``.
        relu: clamp negative correlations to 0. Default ``False``.
        power: exponent applied after ``relu``; ``power != 1`` requires ``relu=True``. Default 1.
        eps: added to the squared norm before the square root. Default 1e-6.
        out_dtype: ``None`` (the input dtype) or ``torch.float32`` with bfloat16/float16 inputs: their products
            summed, finished and returned in float32, i.e. the float32 op on the inputs upcast (autocast's choice:
            a bfloat16 volume's argmax ties, docs/OPS.md#precision). Gradients keep the inputs' dtype.

    Returns:
        ``(B, Hs, Ws, Ht, Wt)`` in ``out_dtype`` (default: the input dtype).

    Papers and settings:
        NC-Net ``FeatureL2Norm`` + ``FeatureCorrelation``: defaults.
        HPF appearance similarity ``relu(cos)^3``: ``relu=True, power=3`` (HPF normalises without eps: ``eps=0``).
        SFNet matching layer: ``relu=True`` (SFNet's layout is target-major: ``out.permute(0, 3, 4, 1, 2)``).

    The volume is computed by one batched GEMM (BLAS on CPU, a tiled shared-memory kernel on CUDA) with the
    normalisation folded into the epilogue: no normalised copy of the inputs is made. Differentiable in
    ``src`` and ``tgt``. dtypes: float32/float64/bfloat16 on CPU; also float16 on CUDA (float32 accumulation;
    docs/OPS.md#precision).
    """
    return torch.ops.semcorr.corr4d.default(src, tgt, bool(normalize), bool(relu), float(power), float(eps),
                                            out_dtype)


def mutual_matching(corr: Tensor, eps: float = 1e-5) -> Tensor:
    """Soft mutual nearest-neighbour filtering of a 4D correlation volume (NC-Net ``MutualMatching``).

    ``out = corr * (corr / (max_t + eps)) * (corr / (max_s + eps))`` where ``max_t`` is the maximum over all
    target positions for each source position and ``max_s`` the maximum over all source positions for each
    target position. A match survives only where it is (close to) the best in both directions.

    Args:
        corr: ``(B, Hs, Ws, Ht, Wt)`` or NC-Net's ``(B, 1, Hs, Ws, Ht, Wt)``.
        eps: added to both maxima. Default 1e-5 (NC-Net).

    Returns:
        Same shape and dtype as ``corr``. Differentiable; the gradient through each maximum goes to its
        first (lowest-index) maximal entry, as ``torch.max(dim)`` does. Meant for non-negative volumes
        (after ReLU or a softmax), as in NC-Net.
    """
    return torch.ops.semcorr.mutual_matching.default(corr, float(eps))
