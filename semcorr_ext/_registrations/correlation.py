"""Fake kernels and autograd of corr4d and mutual_matching."""
import torch

from ._util import check, forbid_double_backward, out_dtype_of

_lib = "semcorr::"


@torch.library.register_fake(_lib + "corr4d")
def _corr4d_fake(src, tgt, normalize, relu, power, eps, out_dtype=None):
    check(src.dim() == 4, "semcorr::corr4d: `src` must be a 4-D tensor (B, C, Hs, Ws), got shape %s", src.shape)
    check(tgt.dim() == 4, "semcorr::corr4d: `tgt` must be a 4-D tensor (B, C, Ht, Wt), got shape %s", tgt.shape)
    check(src.shape[:2] == tgt.shape[:2],
          "semcorr::corr4d: `src` and `tgt` must agree in batch and channels, got %s and %s", src.shape, tgt.shape)
    check(src.dtype == tgt.dtype, "semcorr::corr4d: `src` and `tgt` must have the same dtype, got %s and %s",
          src.dtype, tgt.dtype)
    check(power == 1.0 or relu, "semcorr::corr4d: `power` != 1 requires `relu=True`, got power=%s", power)
    dtype = out_dtype_of(src, out_dtype, "corr4d")
    return src.new_empty((src.shape[0], src.shape[2], src.shape[3], tgt.shape[2], tgt.shape[3]), dtype=dtype)


@torch.library.register_fake(_lib + "_corr4d_backward")
def _corr4d_backward_fake(grad, src, tgt, out, normalize, relu, power, eps):
    return torch.empty_like(src), torch.empty_like(tgt)


def _corr4d_setup(ctx, inputs, output):
    src, tgt, normalize, relu, power, eps = inputs[:6]  # out_dtype only sets the output's dtype
    ctx.save_for_backward(src, tgt, output)
    ctx.args = (normalize, relu, power, eps)


def _corr4d_backward(ctx, grad):
    src, tgt, out = ctx.saved_tensors
    grad_src, grad_tgt = torch.ops.semcorr._corr4d_backward.default(grad, src, tgt, out, *ctx.args)
    return grad_src, grad_tgt, None, None, None, None, None


torch.library.register_autograd(_lib + "corr4d", _corr4d_backward, setup_context=_corr4d_setup)


@torch.library.register_fake(_lib + "mutual_matching")
def _mutual_matching_fake(corr, eps):
    check(corr.dim() == 5 or (corr.dim() == 6 and corr.shape[1] == 1),
          "semcorr::mutual_matching: `corr` must be (B, Hs, Ws, Ht, Wt) or (B, 1, Hs, Ws, Ht, Wt), got shape %s",
          corr.shape)
    return torch.empty_like(corr)


@torch.library.register_fake(_lib + "_mutual_matching_backward")
def _mutual_matching_backward_fake(grad, corr, eps):
    return torch.empty_like(corr)


def _mutual_matching_setup(ctx, inputs, output):
    corr, eps = inputs
    ctx.save_for_backward(corr)
    ctx.eps = eps


def _mutual_matching_backward(ctx, grad):
    (corr,) = ctx.saved_tensors
    return torch.ops.semcorr._mutual_matching_backward.default(grad, corr, ctx.eps), None


torch.library.register_autograd(_lib + "mutual_matching", _mutual_matching_backward,
                                setup_context=_mutual_matching_setup)

forbid_double_backward(_lib + "_corr4d_backward", "semcorr::corr4d")
forbid_double_backward(_lib + "_mutual_matching_backward", "semcorr::mutual_matching")
