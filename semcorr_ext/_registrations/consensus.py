"""Fake kernels and autograd of conv4d and max_pool4d."""
import torch

from ._util import check, forbid_double_backward, out_dtype_of

_lib = "semcorr::"


@torch.library.register_fake(_lib + "conv4d")
def _conv4d_fake(x, weight, bias, padding, out_dtype=None):
    check(x.dim() == 6, "semcorr::conv4d: `x` must be a 6-D tensor (B, Cin, H1, W1, H2, W2), got shape %s",
          list(x.shape))
    check(weight.dim() == 6, "semcorr::conv4d: `weight` must be a 6-D tensor (Cout, Cin, k1, k2, k3, k4), got shape %s",
          list(weight.shape))
    check(weight.shape[1] == x.shape[1], "semcorr::conv4d: `weight` dim 1 (Cin) must equal `x` dim 1, got x %s and "
          "weight %s", list(x.shape), list(weight.shape))
    check(x.dtype == weight.dtype, "semcorr::conv4d: `x` and `weight` must have the same dtype, got %s and %s",
          x.dtype, weight.dtype)
    check(len(padding) == 4, "semcorr::conv4d: `padding` must have 4 entries, got %s", padding)
    if bias is not None:
        check(bias.dim() == 1 and bias.shape[0] == weight.shape[0],
              "semcorr::conv4d: `bias` must have shape (Cout,) = (%s,), got %s", weight.shape[0], list(bias.shape))
    out = []
    for d in range(4):
        check(padding[d] >= 0, "semcorr::conv4d: `padding` must be >= 0, got %s", padding)
        n = x.shape[2 + d] + 2 * padding[d] - weight.shape[2 + d] + 1
        out.append(0 if x.shape[2 + d] == 0 else n)
    return x.new_empty((x.shape[0], weight.shape[0], *out), dtype=out_dtype_of(x, out_dtype, "conv4d"))


@torch.library.register_fake(_lib + "_conv4d_backward")
def _conv4d_backward_fake(grad, x, weight, padding, output_mask):
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(weight, memory_format=torch.contiguous_format), weight.new_empty((weight.shape[0],)))


def _conv4d_setup(ctx, inputs, output):
    x, weight, bias, padding = inputs[:4]  # out_dtype only sets the output's dtype
    ctx.save_for_backward(x, weight)
    ctx.padding = padding
    ctx.has_bias = bias is not None


def _conv4d_backward(ctx, grad):
    x, weight = ctx.saved_tensors
    mask = [bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1]),
            bool(ctx.has_bias and ctx.needs_input_grad[2])]
    gx, gw, gb = torch.ops.semcorr._conv4d_backward.default(grad, x, weight, ctx.padding, mask)
    return (gx if mask[0] else None, gw if mask[1] else None, gb if mask[2] else None, None, None)


torch.library.register_autograd(_lib + "conv4d", _conv4d_backward, setup_context=_conv4d_setup)


def _pooled_shape(x, kernel_size):
    return [x.shape[2 + d] // kernel_size[d] for d in range(4)]


@torch.library.register_fake(_lib + "max_pool4d")
def _max_pool4d_fake(x, kernel_size):
    check(x.dim() == 6, "semcorr::max_pool4d: `x` must be a 6-D tensor (B, C, H1, W1, H2, W2), got shape %s",
          list(x.shape))
    check(len(kernel_size) == 4 and all(k >= 1 for k in kernel_size),
          "semcorr::max_pool4d: `kernel_size` must be 4 ints >= 1, got %s", kernel_size)
    n = _pooled_shape(x, kernel_size)
    return (x.new_empty((x.shape[0], x.shape[1], *n)),
            x.new_empty((x.shape[0], 4 * x.shape[1], *n), dtype=torch.int64))


@torch.library.register_fake(_lib + "_max_pool4d_backward")
def _max_pool4d_backward_fake(grad, argmax, x_size, kernel_size):
    return grad.new_empty(list(x_size))


def _max_pool4d_setup(ctx, inputs, output):
    x, kernel_size = inputs
    ctx.save_for_backward(output[1])
    ctx.x_size = list(x.shape)
    ctx.kernel_size = kernel_size
    ctx.mark_non_differentiable(output[1])


def _max_pool4d_backward(ctx, grad_values, grad_argmax):
    (argmax,) = ctx.saved_tensors
    if grad_values is None:
        return None, None
    return torch.ops.semcorr._max_pool4d_backward.default(grad_values, argmax, ctx.x_size, ctx.kernel_size), None


torch.library.register_autograd(_lib + "max_pool4d", _max_pool4d_backward, setup_context=_max_pool4d_setup)

forbid_double_backward(_lib + "_conv4d_backward", "semcorr::conv4d")
forbid_double_backward(_lib + "_max_pool4d_backward", "semcorr::max_pool4d")
