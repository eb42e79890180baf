"""Fake kernels and autograd of corr4d_topk, kernel_map4d and sparse_conv4d."""
import torch

from ._util import check, forbid_double_backward

_lib = "semcorr::"


@torch.library.register_fake(_lib + "corr4d_topk")
def _corr4d_topk_fake(src, tgt, k, normalize, eps):
    op = "semcorr::corr4d_topk"
    check(src.dim() == 4, "%s: `src` must be a 4-D tensor (B, C, Hs, Ws), got shape %s", op, src.shape)
    check(tgt.dim() == 4, "%s: `tgt` must be a 4-D tensor (B, C, Ht, Wt), got shape %s", op, tgt.shape)
    check(src.shape[:2] == tgt.shape[:2], "%s: `src` and `tgt` must agree in batch and channels, got %s and %s",
          op, src.shape, tgt.shape)
    check(src.dtype == tgt.dtype, "%s: `src` and `tgt` must have the same dtype, got %s and %s", op, src.dtype,
          tgt.dtype)
    check(0 <= k <= tgt.shape[2] * tgt.shape[3], "%s: `k` must be in [0, Ht*Wt], got k=%s", op, k)
    shape = (src.shape[0], src.shape[2], src.shape[3], k)
    return src.new_empty(shape), src.new_empty(shape, dtype=torch.int64)


@torch.library.register_fake(_lib + "_corr4d_topk_backward")
def _corr4d_topk_backward_fake(grad, src, tgt, values, indices, normalize, eps):
    return torch.empty_like(src), torch.empty_like(tgt)


def _corr4d_topk_setup(ctx, inputs, output):
    src, tgt, k, normalize, eps = inputs
    values, indices = output
    ctx.save_for_backward(src, tgt, values, indices)
    ctx.args = (normalize, eps)


def _corr4d_topk_backward(ctx, grad_values, grad_indices):
    src, tgt, values, indices = ctx.saved_tensors
    if grad_values is None:
        grad_values = torch.zeros_like(values)
    grad_src, grad_tgt = torch.ops.semcorr._corr4d_topk_backward.default(grad_values, src, tgt, values, indices,
                                                                         *ctx.args)
    return grad_src, grad_tgt, None, None, None


torch.library.register_autograd(_lib + "corr4d_topk", _corr4d_topk_backward, setup_context=_corr4d_topk_setup)


@torch.library.register_fake(_lib + "kernel_map4d")
def _kernel_map4d_fake(coords, kernel_size):
    op = "semcorr::kernel_map4d"
    check(coords.dim() == 2 and coords.shape[1] == 5, "%s: `coords` must be (N, 5), got shape %s", op, coords.shape)
    K = 1
    for k in (kernel_size * 4 if len(kernel_size) == 1 else kernel_size):
        K *= k
    ctx = torch.library.get_ctx()
    n = ctx.new_dynamic_size()  # number of (input, output) pairs: data dependent
    return (coords.new_empty((n,), dtype=torch.int64), coords.new_empty((n,), dtype=torch.int64),
            coords.new_empty((K + 1,), dtype=torch.int64))


@torch.library.register_fake(_lib + "sparse_conv4d")
def _sparse_conv4d_fake(feats, weight, bias, in_rows, out_rows, offsets_ptr):
    op = "semcorr::sparse_conv4d"
    check(feats.dim() == 2, "%s: `feats` must be a 2-D tensor (N, Cin), got shape %s", op, feats.shape)
    check(weight.dim() == 6, "%s: `weight` must be a 6-D tensor (Cout, Cin, k1, k2, k3, k4), got shape %s", op,
          weight.shape)
    check(weight.shape[1] == feats.shape[1], "%s: `weight` dim 1 (Cin) must equal `feats` dim 1, got %s and %s", op,
          weight.shape, feats.shape)
    check(feats.dtype == weight.dtype, "%s: `feats` and `weight` must have the same dtype, got %s and %s", op,
          feats.dtype, weight.dtype)
    return feats.new_empty((feats.shape[0], weight.shape[0]))


@torch.library.register_fake(_lib + "_sparse_conv4d_backward")
def _sparse_conv4d_backward_fake(grad, feats, weight, in_rows, out_rows, offsets_ptr):
    return torch.empty_like(feats), torch.empty_like(weight), weight.new_empty((weight.shape[0],))


def _sparse_conv4d_setup(ctx, inputs, output):
    feats, weight, bias, in_rows, out_rows, offsets_ptr = inputs
    ctx.save_for_backward(feats, weight, in_rows, out_rows, offsets_ptr)
    ctx.has_bias = bias is not None


def _sparse_conv4d_backward(ctx, grad):
    feats, weight, in_rows, out_rows, offsets_ptr = ctx.saved_tensors
    gf, gw, gb = torch.ops.semcorr._sparse_conv4d_backward.default(grad, feats, weight, in_rows, out_rows,
                                                                   offsets_ptr)
    return gf, gw, (gb if ctx.has_bias else None), None, None, None


torch.library.register_autograd(_lib + "sparse_conv4d", _sparse_conv4d_backward, setup_context=_sparse_conv4d_setup)

forbid_double_backward(_lib + "_corr4d_topk_backward", "semcorr::corr4d_topk")
forbid_double_backward(_lib + "_sparse_conv4d_backward", "semcorr::sparse_conv4d")
