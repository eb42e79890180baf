import torch


def check(cond, fmt, *args):
    """torch._check with a formatted message that names the argument (fake kernels run under tracing, where
    the error must come before any shape is used)."""
    if not isinstance(cond, bool):  # a SymBool under dynamic shapes
        torch._check(cond, lambda: fmt % args)
        return
    if not cond:
        raise RuntimeError(fmt % args)


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
