"""The published Hough matching algorithms, written plainly in PyTorch from the papers and their public code's
behaviour (not copied). Benchmarks time our ops against these; tests check that our ops give the same numbers.
Argument names follow the published code (``trg_`` for the target, where the rest of the project says ``tgt_``)
so the two read side by side.
"""
import math

import torch
import torch.nn.functional as F


# ---- HPF (Min et al., ICCV 2019): regularised Hough matching -------------------------------------------
def hpf_box_center(box):
    """HPF geometry.center: (x, y) = top-left + (extent // 2) per box (N, 4) = (x0, y0, x1, y1), float boxes."""
    cx = box[:, 0] + torch.div(box[:, 2] - box[:, 0], 2, rounding_mode="floor")
    cy = box[:, 1] + torch.div(box[:, 3] - box[:, 1], 2, rounding_mode="floor")
    return torch.stack((cx, cy), dim=1)


def hpf_receptive_fields(rfsz, jsz, feat_h, feat_w):
    """HPF geometry.receptive_fields: one box (x0, y0, x1, y1) per feature cell, row-major,
    centred at (j * jsz, i * jsz) with half-size rfsz // 2 (float32)."""
    ii, jj = torch.meshgrid(torch.arange(feat_h), torch.arange(feat_w), indexing="ij")
    ii, jj = ii.reshape(-1).float(), jj.reshape(-1).float()
    half = rfsz // 2
    return torch.stack((jj * jsz - half, ii * jsz - half, jj * jsz + half, ii * jsz + half), dim=1)


def hpf_gaussian2d(side=7):
    """HPF geometry.gaussian2d in float32: exp(-(x^2 + y^2) / 2 / sigma^2), sigma = side/2/2.354, normalised."""
    sig_sq = (torch.tensor(float(side)) / 2 / 2.354) ** 2
    half = (side - 1) // 2
    ax = torch.arange(-half, half + 1).float()
    x = ax.unsqueeze(0).expand(side, side)
    y = ax.unsqueeze(1).expand(side, side)
    g = torch.exp(-(x ** 2 / 2 / sig_sq + y ** 2 / 2 / sig_sq))
    return g / g.sum()


def hpf_build_hspace(src_imsize, trg_imsize, ncells):
    """HPF build_hspace: sizes are (W, H)."""
    hs_w = src_imsize[0] + trg_imsize[0]
    hs_h = src_imsize[1] + trg_imsize[1]
    cell = math.sqrt((hs_w * hs_h) / ncells)
    return int(hs_w / cell) + 1, int(hs_h / cell) + 1, cell


def hpf_bin_ids(src_imsize, src_centers, trg_centers, cell, nbins_x):
    """HPF hspace_bin_ids: the materialised (Ns, Nt) matrix of flat bin ids. Votes are
    (src_size - src_centre) + trg_centre in float32, divided by the cell size, truncated (.long())."""
    ref = torch.tensor(src_imsize, dtype=src_centers.dtype, device=src_centers.device)
    ns, nt = len(src_centers), len(trg_centers)
    vote = (ref.unsqueeze(0).expand_as(src_centers) - src_centers).unsqueeze(2).repeat(1, 1, nt) + \
        trg_centers.t().unsqueeze(0).repeat(ns, 1, 1)  # (Ns, 2, Nt)
    ids = (vote / cell).long()
    return ids[:, 0, :] + ids[:, 1, :] * nbins_x


def hpf_rhm(app, src_centers, trg_centers, src_imsize, trg_imsize, ncells=8192, smooth=True, hsfilter=None):
    """HPF rhm for one pair given the appearance similarities app (Ns, Nt): a per-source Hough table
    (Ns x nbins) filled by index_add, summed over sources, smoothed by conv2d with the 7x7 Gaussian (padding 3),
    then index_select of the smoothed votes at the materialised bin-id matrix. smooth=False skips the conv."""
    nbins_x, nbins_y, cell = hpf_build_hspace(src_imsize, trg_imsize, ncells)
    bin_ids = hpf_bin_ids(src_imsize, src_centers, trg_centers, cell, nbins_x)
    hspace = app.new_zeros((len(app), nbins_y * nbins_x))
    hbin_ids = bin_ids + torch.arange(len(app), device=app.device).mul(hspace.size(1)).unsqueeze(1).expand_as(bin_ids)
    hspace = hspace.view(-1).index_add(0, hbin_ids.view(-1), app.reshape(-1)).view_as(hspace)
    hspace = hspace.sum(dim=0)
    if smooth:
        filt = hpf_gaussian2d(7).to(app) if hsfilter is None else hsfilter
        hspace = F.conv2d(hspace.view(1, 1, nbins_y, nbins_x), filt.view(1, 1, 7, 7), padding=3).view(-1)
    return app * torch.index_select(hspace, dim=0, index=bin_ids.view(-1)).view_as(app)


# ---- SCNet (Han et al., ICCV 2017) / PHM (Cho et al., CVPR 2015): probabilistic Hough matching -----------
def phm_offset_bins(src_centers, tgt_centers, cell, nbins_x, nbins_y, offset_x, offset_y):
    """Flat offset bin of every region pair: the offset t - s is shifted by (offset_x, offset_y) and binned by
    floor(. / cell); pairs outside the grid get -1. Returns (Ns, Nt) int64."""
    d = tgt_centers[None, :, :] - src_centers[:, None, :]
    bx = torch.floor((d[..., 0] + offset_x) / cell).long()
    by = torch.floor((d[..., 1] + offset_y) / cell).long()
    valid = (bx >= 0) & (bx < nbins_x) & (by >= 0) & (by < nbins_y)
    return torch.where(valid, bx + by * nbins_x, torch.full_like(bx, -1))


def phm_dense(app, bins, nbins, kernel=None):
    """PHM written the plain way: one-hot (Ns*Nt, nbins) vote matrix, votes = onehot^T app, optional smoothing,
    out = app * votes[bins] (0 for bins == -1). app/bins (Ns, Nt); nbins a tuple."""
    total = math.prod(nbins)
    valid = bins >= 0
    onehot = F.one_hot(bins.clamp(min=0).reshape(-1), total).to(app.dtype) * valid.reshape(-1, 1).to(app.dtype)
    votes = onehot.t() @ app.reshape(-1)
    if kernel is not None:
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[len(nbins)]
        votes = conv(votes.view(1, 1, *nbins), kernel.to(app.dtype).view(1, 1, *kernel.shape),
                     padding=tuple(s // 2 for s in kernel.shape)).view(-1)
    return app * (onehot @ votes).view_as(app)
