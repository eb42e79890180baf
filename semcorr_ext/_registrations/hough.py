"""Fake kernels and autograd of hough_match and hough_vote."""
import torch

from ._util import check, forbid_double_backward

_lib = "semcorr::"


@torch.library.register_fake(_lib + "hough_match")
def _hough_match_fake(app, src_centers, tgt_centers, src_size, tgt_size, ncells, smooth):
    op = "semcorr::hough_match"
    check(app.dim() == 3, "%s: `app` must be a 3-D tensor (B, Ns, Nt), got shape %s", op, app.shape)
    check(src_centers.dim() == 3 and src_centers.shape[0] == app.shape[0] and src_centers.shape[1] == app.shape[1]
          and src_centers.shape[2] == 2, "%s: `src_centers` must have shape (B, Ns, 2), got %s for app %s", op,
          src_centers.shape, app.shape)
    check(tgt_centers.dim() == 3 and tgt_centers.shape[0] == app.shape[0] and tgt_centers.shape[1] == app.shape[2]
          and tgt_centers.shape[2] == 2, "%s: `tgt_centers` must have shape (B, Nt, 2), got %s for app %s", op,
          tgt_centers.shape, app.shape)
    check(ncells >= 1, "%s: `ncells` must be >= 1, got %s", op, ncells)
    return app.new_empty(app.shape)


@torch.library.register_fake(_lib + "_hough_match_backward")
def _hough_match_backward_fake(grad, app, src_centers, tgt_centers, src_size, tgt_size, ncells, smooth):
    return app.new_empty(app.shape)


def _hough_match_setup(ctx, inputs, output):
    app, src_centers, tgt_centers, src_size, tgt_size, ncells, smooth = inputs
    ctx.save_for_backward(app, src_centers, tgt_centers)
    ctx.args = (src_size, tgt_size, ncells, smooth)


def _hough_match_backward(ctx, grad):
    app, src_centers, tgt_centers = ctx.saved_tensors
    grad_app = torch.ops.semcorr._hough_match_backward.default(grad, app, src_centers, tgt_centers, *ctx.args)
    return grad_app, None, None, None, None, None, None


torch.library.register_autograd(_lib + "hough_match", _hough_match_backward, setup_context=_hough_match_setup)


@torch.library.register_fake(_lib + "hough_vote")
def _hough_vote_fake(app, bins, nbins, smooth_kernel):
    op = "semcorr::hough_vote"
    check(app.dim() == 3, "%s: `app` must be a 3-D tensor (B, Ns, Nt), got shape %s", op, app.shape)
    check(bins.shape == app.shape, "%s: `bins` must have the shape of `app` %s, got %s", op, app.shape, bins.shape)
    check(1 <= len(nbins) <= 3, "%s: `nbins` must hold 1 to 3 sizes, got %s", op, nbins)
    return app.new_empty(app.shape)


@torch.library.register_fake(_lib + "_hough_vote_backward")
def _hough_vote_backward_fake(grad, app, bins, nbins, smooth_kernel):
    return app.new_empty(app.shape)


def _hough_vote_setup(ctx, inputs, output):
    app, bins, nbins, smooth_kernel = inputs
    ctx.save_for_backward(app, bins, smooth_kernel)
    ctx.nbins = nbins


def _hough_vote_backward(ctx, grad):
    app, bins, smooth_kernel = ctx.saved_tensors
    grad_app = torch.ops.semcorr._hough_vote_backward.default(grad, app, bins, ctx.nbins, smooth_kernel)
    return grad_app, None, None, None


torch.library.register_autograd(_lib + "hough_vote", _hough_vote_backward, setup_context=_hough_vote_setup)

forbid_double_backward(_lib + "_hough_match_backward", "semcorr::hough_match")
forbid_double_backward(_lib + "_hough_vote_backward", "semcorr::hough_vote")
