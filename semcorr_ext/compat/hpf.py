"""Hyperpixel Flow's (Min et al., ICCV 2019; juhongm999/hpf model/rhm.py) matching functions on
semcorr_ext's ops.

Replace ``from . import rhm`` (or ``from model import rhm``) by ``from semcorr_ext.compat import hpf as rhm``:
``rhm.appearance_similarity(src_feats, trg_feats, cosd=3)`` and ``rhm.rhm(src_hyperpixels, trg_hyperpixels,
hsfilter, ncells=8192)`` keep the published signatures (including the published ``trg`` argument names, so
that keyword calls keep working) and outputs.

What changes: the similarity is one ``ops.corr4d`` GEMM with the norms, ReLU and power fused (no (N, M)
norm-product matrix); the voting is one ``ops.hough_match`` pass that computes bins on the fly (no (N, M)
int64 bin-id matrix, no flattened (N, bins) Hough space per source hyperpixel as the published
``index_add`` builds).
"""
import torch

from .. import ops
from ..reference.hough import hpf_gaussian7

__all__ = ["appearance_similarity", "rhm", "build_hspace", "center"]


def appearance_similarity(src_feats, trg_feats, cosd=3):
    """HPF's exponentiated cosine: ``relu(cos(src_feats[i], trg_feats[j])) ** cosd`` for ``(N, C)`` and
    ``(M, C)`` features -> ``(N, M)``. No epsilon in the norms, as published."""
    if src_feats.dim() != 2 or trg_feats.dim() != 2 or src_feats.shape[1] != trg_feats.shape[1]:
        raise ValueError("appearance_similarity: `src_feats` and `trg_feats` must be (N, C) and (M, C), got %s and %s"
                         % (list(src_feats.shape), list(trg_feats.shape)))
    src = src_feats.t().reshape(1, src_feats.shape[1], src_feats.shape[0], 1)
    tgt = trg_feats.t().reshape(1, trg_feats.shape[1], trg_feats.shape[0], 1)
    sim = ops.corr4d(src, tgt, normalize=True, relu=True, power=float(cosd), eps=0.0)
    return sim.reshape(src_feats.shape[0], trg_feats.shape[0])


def center(box):
    """HPF's ``geometry.center``: ``(x, y)`` box centres of ``(N, 4)`` boxes, floor-halved widths as published."""
    return box[:, :2] + torch.div(box[:, 2:] - box[:, :2], 2, rounding_mode="floor")


def build_hspace(src_imsize, trg_imsize, ncells):
    """HPF's ``build_hspace``: ``(nbins_x, nbins_y, hs_cellsize)`` of the Hough space of two ``(W, H)`` images."""
    from ..reference.hough import hough_geometry

    return hough_geometry(tuple(src_imsize), tuple(trg_imsize), ncells)


def _is_hpf_filter(hsfilter):
    return tuple(hsfilter.shape) == (7, 7) and torch.allclose(
        hsfilter.detach().double().cpu(), hpf_gaussian7(), rtol=0, atol=1e-6)


def rhm(src_hyperpixels, trg_hyperpixels, hsfilter, ncells=8192):
    """HPF's regularised Hough matching: appearance similarity times the smoothed Hough votes of each match.

    ``src_hyperpixels = (boxes (N, 4) x1 y1 x2 y2, feats (N, C), imsize (W, H))``, likewise the target;
    ``hsfilter`` the 7x7 filter on the Hough space (HPF: ``geometry.gaussian2d(7)``). Returns ``(N, M)``.
    HPF's own Gaussian runs in the fused ``ops.hough_match``; any other 7x7 filter through ``ops.hough_vote``
    with HPF's bins. Unlike the published code (which indexes out of its Hough space), a box centre outside
    its image is clamped to the border bins by ``hough_match``.
    """
    src_boxes, src_feats, src_imsize = src_hyperpixels
    tgt_boxes, tgt_feats, tgt_imsize = trg_hyperpixels
    if hsfilter.dim() != 2 or hsfilter.shape[0] % 2 == 0 or hsfilter.shape[1] % 2 == 0:
        raise ValueError("rhm: `hsfilter` must be a 2-D filter of odd sizes (HPF: 7x7), got shape %s"
                         % (list(hsfilter.shape),))
    votes = appearance_similarity(src_feats, tgt_feats)
    src_c, tgt_c = center(src_boxes).to(torch.float), center(tgt_boxes).to(torch.float)  # HPF bins in float32
    src_wh, tgt_wh = [float(v) for v in src_imsize], [float(v) for v in tgt_imsize]
    if _is_hpf_filter(hsfilter):
        return ops.hough_match(votes[None], src_c[None], tgt_c[None], src_wh, tgt_wh, ncells=ncells)[0]
    nbins_x, nbins_y, cell = build_hspace(src_wh, tgt_wh, ncells)
    xy = (torch.tensor(src_wh, device=src_c.device) - src_c)[:, None, :] + tgt_c[None, :, :]
    bins = (xy / cell).long()
    bins = bins[..., 0] + bins[..., 1] * nbins_x
    return ops.hough_vote(votes[None], bins[None], (nbins_y, nbins_x), smooth_kernel=hsfilter.to(votes.dtype))[0]
