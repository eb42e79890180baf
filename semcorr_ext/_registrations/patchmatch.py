"""Fake kernels and autograd of patchmatch_propagate, gather_windows4d(_points, _linear) and patchmatch_select."""
import torch

from ._util import check, forbid_double_backward

_lib = "semcorr::"


@torch.library.register_fake(_lib + "patchmatch_propagate")
def _patchmatch_propagate_fake(matches, offsets, target_size, random_samples, radius, seed, iteration):
    op = "semcorr::patchmatch_propagate"
    check(matches.dim() == 5 and matches.shape[4] == 2,
          "%s: `matches` must be a 5-D tensor (B, Hs, Ws, K, 2) of (row, col), got shape %s", op, matches.shape)
    check(matches.dtype == torch.int64, "%s: `matches` must be int64, got %s", op, matches.dtype)
    check(offsets.dim() == 2 and offsets.shape[1] == 2, "%s: `offsets` must be a 2-D tensor (P, 2), got shape %s",
          op, offsets.shape)
    check(offsets.dtype == torch.int64, "%s: `offsets` must be int64, got %s", op, offsets.dtype)
    check(len(target_size) == 2 and target_size[0] > 0 and target_size[1] > 0,
          "%s: `target_size` must be [Ht, Wt] with both > 0, got %s", op, target_size)
    check(random_samples >= 0, "%s: `random_samples` must be >= 0, got %s", op, random_samples)
    check(radius >= 0, "%s: `radius` must be in [0, 2^30), got %s", op, radius)
    B, Hs, Ws, K, _ = matches.shape
    N = K * (9 + offsets.shape[0] + random_samples)
    return matches.new_empty((B, Hs, Ws, N, 2)), matches.new_empty((B, Hs, Ws, N), dtype=torch.bool)


@torch.library.register_fake(_lib + "gather_windows4d")
def _gather_windows4d_fake(corr, candidates, window):
    op = "semcorr::gather_windows4d"
    check(corr.dim() == 5, "%s: `corr` must be a 5-D tensor (B, Hs, Ws, Ht, Wt), got shape %s", op, corr.shape)
    check(candidates.dim() == 5 and candidates.shape[4] == 2,
          "%s: `candidates` must be a 5-D tensor (B, Hs, Ws, N, 2) of (row, col), got shape %s", op,
          candidates.shape)
    check(candidates.shape[:3] == corr.shape[:3],
          "%s: `candidates` must be (B, Hs, Ws, N, 2) with (B, Hs, Ws) of `corr` %s, got %s", op, corr.shape,
          candidates.shape)
    check(window >= 1 and window % 2 == 1 and window <= 63, "%s: `window` must be odd and in [1, 63], got %s", op,
          window)
    B, Hs, Ws, N, _ = candidates.shape
    return corr.new_empty((B, Hs, Ws, N, window, window, window, window))


@torch.library.register_fake(_lib + "_gather_windows4d_backward")
def _gather_windows4d_backward_fake(grad, candidates, corr_size, window):
    return grad.new_empty(corr_size)


@torch.library.register_fake(_lib + "gather_windows4d_points")
def _gather_windows4d_points_fake(corr, points, window):
    op = "semcorr::gather_windows4d_points"
    check(corr.dim() == 5, "%s: `corr` must be a 5-D tensor (B, Hs, Ws, Ht, Wt), got shape %s", op, corr.shape)
    check(points.dim() == 2 and points.shape[1] == 5,
          "%s: `points` must be a 2-D tensor (M, 5) of (b, i, j, u, v), got shape %s", op, points.shape)
    check(points.dtype == torch.int64, "%s: `points` must be int64, got %s", op, points.dtype)
    check(window >= 1 and window % 2 == 1 and window <= 63, "%s: `window` must be odd and in [1, 63], got %s", op,
          window)
    return corr.new_empty((points.shape[0], window, window, window, window))


@torch.library.register_fake(_lib + "_gather_windows4d_points_backward")
def _gather_windows4d_points_backward_fake(grad, points, corr_size, window):
    return grad.new_empty(corr_size)


@torch.library.register_fake(_lib + "patchmatch_select")
def _patchmatch_select_fake(candidates, scores, valid, k):
    op = "semcorr::patchmatch_select"
    check(candidates.dim() == 5 and candidates.shape[4] == 2,
          "%s: `candidates` must be a 5-D tensor (B, Hs, Ws, N, 2) of (row, col), got shape %s", op,
          candidates.shape)
    check(scores.shape == candidates.shape[:4], "%s: `scores` must have shape %s (B, Hs, Ws, N), got %s", op,
          candidates.shape[:4], scores.shape)
    check(valid.shape == candidates.shape[:4] and valid.dtype == torch.bool,
          "%s: `valid` must be a bool tensor of shape %s (B, Hs, Ws, N), got %s %s", op, candidates.shape[:4],
          valid.dtype, valid.shape)
    check(k >= 0, "%s: `k` must be >= 0, got %s", op, k)
    B, Hs, Ws, _, _ = candidates.shape
    return (candidates.new_empty((B, Hs, Ws, k, 2)), scores.new_empty((B, Hs, Ws, k)),
            candidates.new_empty((B, Hs, Ws, k)))


@torch.library.register_fake(_lib + "_patchmatch_select_backward")
def _patchmatch_select_backward_fake(grad, indices, n):
    return grad.new_empty((*grad.shape[:3], n))


def _patchmatch_select_setup(ctx, inputs, output):
    candidates, scores, valid, k = inputs
    ctx.save_for_backward(output[2])
    ctx.n = candidates.shape[3]
    ctx.mark_non_differentiable(output[0], output[2])


def _patchmatch_select_backward(ctx, grad_matches, grad_scores, grad_indices):
    (indices,) = ctx.saved_tensors
    return None, torch.ops.semcorr._patchmatch_select_backward.default(grad_scores, indices, ctx.n), None, None


torch.library.register_autograd(_lib + "patchmatch_select", _patchmatch_select_backward,
                                setup_context=_patchmatch_select_setup)



def _register_windows_autograd(name):
    """Autograd of gather_windows4d and gather_windows4d_points (``index``: candidates or points): the backward is
    the op ``_<name>_backward``, and since that is linear in ``grad`` its own gradient is the forward gather."""
    forward = getattr(torch.ops.semcorr, name).default
    backward = getattr(torch.ops.semcorr, "_%s_backward" % name).default

    def setup(ctx, inputs, output):
        corr, index, window = inputs
        ctx.save_for_backward(index)
        ctx.corr_size, ctx.window = list(corr.shape), window

    def grad_fn(ctx, grad):
        (index,) = ctx.saved_tensors
        return backward(grad, index, ctx.corr_size, ctx.window), None, None

    def backward_setup(ctx, inputs, output):
        grad, index, corr_size, window = inputs
        ctx.save_for_backward(index)
        ctx.window = window

    def double_grad_fn(ctx, gg):
        (index,) = ctx.saved_tensors
        return forward(gg, index, ctx.window), None, None, None

    torch.library.register_autograd(_lib + name, grad_fn, setup_context=setup)
    torch.library.register_autograd(_lib + "_%s_backward" % name, double_grad_fn, setup_context=backward_setup)


_register_windows_autograd("gather_windows4d")
_register_windows_autograd("gather_windows4d_points")


@torch.library.register_fake(_lib + "gather_windows4d_linear")
def _gather_windows4d_linear_fake(corr, points, weight, bias):
    op = "semcorr::gather_windows4d_linear"
    check(corr.dim() == 5, "%s: `corr` must be a 5-D tensor (B, Hs, Ws, Ht, Wt), got shape %s", op, corr.shape)
    check(points.dim() == 2 and points.shape[1] == 5,
          "%s: `points` must be a 2-D tensor (M, 5) of (b, i, j, u, v), got shape %s", op, points.shape)
    check(points.dtype == torch.int64, "%s: `points` must be int64, got %s", op, points.dtype)
    check(weight.dim() == 5 and weight.shape[1] == weight.shape[2] == weight.shape[3] == weight.shape[4],
          "%s: `weight` must be (C, w, w, w, w) with one window side w, got shape %s", op, weight.shape)
    w = weight.shape[1]
    check(w % 2 == 1 and w <= 63, "%s: `window` must be odd and in [1, 63], got %s", op, w)
    check(bias is None or tuple(bias.shape) == (weight.shape[0],), "%s: `bias` must be (C) = (%s), got shape %s",
          op, weight.shape[0], None if bias is None else bias.shape)
    return corr.new_empty((points.shape[0], weight.shape[0]))


def _gather_windows4d_linear_setup(ctx, inputs, output):
    corr, points, weight, bias = inputs
    ctx.save_for_backward(corr, points, weight)
    ctx.has_bias = bias is not None


def _gather_windows4d_linear_backward(ctx, grad):
    # the windows are re-cut only for the weight gradient; the corr gradient scatters grad @ weight
    corr, points, weight = ctx.saved_tensors
    C, w = weight.shape[0], weight.shape[-1]
    g_corr = g_weight = g_bias = None
    if ctx.needs_input_grad[0]:
        # w**4, not -1: with no output channels (C = 0) a (0, -1) reshape is ambiguous and raises
        g_win = (grad @ weight.reshape(C, w ** 4)).view(-1, w, w, w, w)
        g_corr = torch.ops.semcorr._gather_windows4d_points_backward.default(g_win, points, list(corr.shape), w)
    if ctx.needs_input_grad[2]:
        win = torch.ops.semcorr.gather_windows4d_points.default(corr, points, w)
        # the window size, not -1: with no points a (0, -1) reshape is ambiguous and raises
        g_weight = (grad.t() @ win.reshape(win.shape[0], w ** 4)).view(weight.shape)
    if ctx.has_bias and ctx.needs_input_grad[3]:
        g_bias = grad.sum(0)
    return g_corr, None, g_weight, g_bias


torch.library.register_autograd(_lib + "gather_windows4d_linear", _gather_windows4d_linear_backward,
                                setup_context=_gather_windows4d_linear_setup)
forbid_double_backward(_lib + "_patchmatch_select_backward", "semcorr::patchmatch_select")
