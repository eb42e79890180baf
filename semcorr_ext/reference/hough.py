"""References of hough_match and hough_vote (docs/OPS.md#hough): dense, float64 votes, written for clarity.

Bins are computed exactly as the op does (and as HPF does): in the centres' dtype, ``trunc(vote / cell)``,
clamped into the Hough space. They materialise the (Ns, Nt) bin matrix, which the ops never do.
"""
import math

import torch
import torch.nn.functional as F


def _flat_sizes(size, B):
    if isinstance(size, torch.Tensor):
        size = size.detach().to("cpu", torch.float64).reshape(-1).tolist()
    flat = []
    for v in size:
        if isinstance(v, (list, tuple)):
            flat.extend(float(x) for x in v)
        else:
            flat.append(float(v))
    if len(flat) == 2:
        flat = flat * max(B, 1)
    if len(flat) != 2 * B:
        raise ValueError("sizes must be (W, H) or B pairs, got %d values for B=%d" % (len(flat), B))
    return [(flat[2 * b], flat[2 * b + 1]) for b in range(B)]


def hpf_gaussian7(dtype=torch.float64):
    """HPF's normalised 7x7 Gaussian: sigma = 7/2/2.354 on offsets -3..3."""
    sig_sq = (7 / 2 / 2.354) ** 2
    ax = torch.arange(-3, 4, dtype=torch.float64)
    g = torch.exp(-(ax[None, :] ** 2 / 2 / sig_sq + ax[:, None] ** 2 / 2 / sig_sq))
    return (g / g.sum()).to(dtype)


def hough_geometry(src_wh, tgt_wh, ncells):
    """HPF build_hspace: (nbins_x, nbins_y, cell) for a pair of (W, H) image sizes."""
    hs_w, hs_h = src_wh[0] + tgt_wh[0], src_wh[1] + tgt_wh[1]
    cell = math.sqrt((hs_w * hs_h) / ncells)
    return int(hs_w / cell) + 1, int(hs_h / cell) + 1, cell


def _axis_bin(q, nbins):
    q = torch.nan_to_num(q, nan=0.0)
    b = q.clamp(min=0).clamp(max=nbins - 1).long()  # trunc toward zero for q >= 0
    return torch.where(q >= nbins, torch.full_like(b, nbins - 1), b)


def hough_match_bins(src_centers, tgt_centers, src_wh, tgt_wh, ncells=8192):
    """(Ns, Nt) int64 flat bin ids of one pair, and (nbins_x, nbins_y)."""
    nbx, nby, cell = hough_geometry(src_wh, tgt_wh, ncells)
    dt = src_centers.dtype
    ref = torch.tensor(src_wh, dtype=dt)
    cell_t = torch.tensor(cell, dtype=dt)
    vote = (ref[None, None, :] - src_centers[:, None, :]) + tgt_centers[None, :, :]  # (Ns, Nt, 2)
    bx = _axis_bin(vote[..., 0] / cell_t, nbx)
    by = _axis_bin(vote[..., 1] / cell_t, nby)
    return bx + by * nbx, (nbx, nby)


def hough_match(app, src_centers, tgt_centers, src_size, tgt_size, *, ncells=8192, smooth=True):
    B = app.shape[0]
    ss, ts = _flat_sizes(src_size, B), _flat_sizes(tgt_size, B)
    out = torch.zeros(app.shape, dtype=torch.float64)
    for b in range(B):
        if app.shape[1] * app.shape[2] == 0:
            continue
        bins, (nbx, nby) = hough_match_bins(src_centers[b].cpu(), tgt_centers[b].cpu(), ss[b], ts[b], ncells)
        a = app[b].double().cpu()
        votes = torch.zeros(nbx * nby, dtype=torch.float64).index_add(0, bins.reshape(-1), a.reshape(-1))
        if smooth:
            votes = F.conv2d(votes.view(1, 1, nby, nbx), hpf_gaussian7().view(1, 1, 7, 7), padding=3).view(-1)
        out[b] = a * votes[bins]
    return out.to(app.dtype)


def hough_vote(app, bins, nbins, *, smooth_kernel=None):
    nbins = (int(nbins),) if isinstance(nbins, int) else tuple(int(n) for n in nbins)
    total = math.prod(nbins)
    B = app.shape[0]
    out = torch.zeros(app.shape, dtype=torch.float64)
    for b in range(B):
        a = app[b].double()
        bb = bins[b].long()
        valid = bb >= 0
        votes = torch.zeros(total, dtype=torch.float64).index_add(0, bb[valid], a[valid])
        if smooth_kernel is not None:
            k = smooth_kernel.double().cpu()
            conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[len(nbins)]
            pad = tuple(s // 2 for s in k.shape)
            votes = conv(votes.view(1, 1, *nbins), k.view(1, 1, *k.shape), padding=pad).view(-1)
        out[b] = torch.where(valid, a * votes[bb.clamp(min=0)], torch.zeros((), dtype=torch.float64))
    return out.to(app.dtype)
