"""Fake kernels and autograd of kernel_soft_argmax."""
import math

import torch

from ._util import check, forbid_double_backward

_lib = "semcorr::"


@torch.library.register_fake(_lib + "kernel_soft_argmax")
def _kernel_soft_argmax_fake(corr, beta, sigma, normalize):
    check(corr.dim() == 5, "semcorr::kernel_soft_argmax: `corr` must be a 5-D tensor (B, Hs, Ws, Ht, Wt), got shape %s",
          corr.shape)
    check(corr.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16),
          "semcorr::kernel_soft_argmax: `corr` must be a floating tensor, got %s", corr.dtype)
    check(math.isfinite(beta) and beta >= 0, "semcorr::kernel_soft_argmax: `beta` must be finite and >= 0, got %s", beta)
    return corr.new_empty((corr.shape[0], corr.shape[1], corr.shape[2], 2))


@torch.library.register_fake(_lib + "_kernel_soft_argmax_backward")
def _kernel_soft_argmax_backward_fake(grad, corr, beta, sigma, normalize):
    return torch.empty_like(corr, memory_format=torch.contiguous_format)


def _setup(ctx, inputs, output):
    corr, beta, sigma, normalize = inputs
    ctx.save_for_backward(corr)
    ctx.args = (beta, sigma, normalize)


def _backward(ctx, grad):
    (corr,) = ctx.saved_tensors
    return torch.ops.semcorr._kernel_soft_argmax_backward.default(grad, corr, *ctx.args), None, None, None


torch.library.register_autograd(_lib + "kernel_soft_argmax", _backward, setup_context=_setup)
forbid_double_backward(_lib + "_kernel_soft_argmax_backward", "semcorr::kernel_soft_argmax")
