import torch


def check(cond, fmt, *args):
    """torch._check with a formatted message that names the argument (fake kernels run under tracing, where
    the error must come before any shape is used)."""
    if not isinstance(cond, bool):  # a SymBool under dynamic shapes
        torch._check(cond, lambda: fmt % args)
        return
    if not cond:
        raise RuntimeError(fmt % args)


def out_dtype_of(t, out_dtype, op):
    """The output dtype of a GEMM-shaped op with input ``t`` given ``out_dtype`` (csrc/common/checks.h
    out_dtype_of): ``t``'s dtype for None or that dtype, float32 for float16/bfloat16 inputs asked for float32."""
    if out_dtype is None or out_dtype == t.dtype:
        return t.dtype
    check(out_dtype == torch.float32 and t.dtype in (torch.float16, torch.bfloat16),
          "semcorr::%s: `out_dtype` must be None, the input dtype (%s) or float32 with float16/bfloat16 inputs, "
          "got %s", op, t.dtype, out_dtype)
    return out_dtype


def forbid_double_backward(qualname, forward_name):
    """Register an autograd formula for a backward op that raises a clear error, so that
    ``create_graph=True`` + a second ``backward`` fails with a message instead of silently wrong grads."""

    def _setup(ctx, inputs, output):
        pass

    def _backward(ctx, *grads):
        raise RuntimeError(
            "%s: double backward (gradient of the gradient) is not implemented. Compute second-order terms "
            "with the pure-PyTorch reference in semcorr_ext.reference instead." % forward_name)

    torch.library.register_autograd(qualname, _backward, setup_context=_setup)
