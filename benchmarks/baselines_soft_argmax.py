"""SFNet's kernel soft-argmax written plainly in PyTorch from the paper and the behaviour of the published
code (``find_correspondence.kernel_soft_argmax`` after ``SFNet.L2normalize``); not copied. Layout as SFNet:
target-major correlation (B, Ht*Wt, Hs, Ws) with a square or rectangular grid.

Every step materialises a full volume: the Gaussian kernel, the kernel-weighted scores, the max-subtracted
scaled scores, their exponentials, the probabilities, and the two marginals.
"""
import torch


def sfnet_l2normalize(x, d=1, eps=1e-6):
    """SFNet L2normalize: x / sqrt(sum_d x^2 + eps) (on the correlation: over the target dimension)."""
    norm = (x ** 2).sum(dim=d, keepdim=True) + eps
    return x / norm ** 0.5


def sfnet_apply_gaussian_kernel(corr, Ht, Wt, sigma):
    """Multiply each source position's target scores by a Gaussian centred on their argmax (target cells)."""
    b, hw, hs, ws = corr.shape
    idx = corr.max(dim=1)[1]  # (b, hs, ws), first maximal target index
    idx_y = (idx // Wt).view(b, 1, 1, hs, ws).to(corr.dtype)
    idx_x = (idx % Wt).view(b, 1, 1, hs, ws).to(corr.dtype)
    x = torch.arange(Wt, dtype=corr.dtype, device=corr.device).view(1, 1, Wt, 1, 1)
    y = torch.arange(Ht, dtype=corr.dtype, device=corr.device).view(1, Ht, 1, 1, 1)
    gauss = torch.exp(-((x - idx_x) ** 2 + (y - idx_y) ** 2) / (2 * sigma ** 2))  # (b, Ht, Wt, hs, ws)
    return gauss.view(b, hw, hs, ws) * corr


def sfnet_softmax_with_temperature(x, beta, d=1):
    m = x.max(dim=d, keepdim=True)[0]
    e = torch.exp(beta * (x - m))
    return e / e.sum(dim=d, keepdim=True)


def sfnet_kernel_soft_argmax(corr, Ht, Wt, beta=50.0, sigma=5.0):
    """(B, Ht*Wt, Hs, Ws) -> grid_x, grid_y each (B, 1, Hs, Ws); sigma=None skips the kernel (soft-argmax)."""
    b, _, hs, ws = corr.shape
    if sigma is not None:
        corr = sfnet_apply_gaussian_kernel(corr, Ht, Wt, sigma)
    p = sfnet_softmax_with_temperature(corr, beta, d=1).view(b, Ht, Wt, hs, ws)
    x_normal = torch.linspace(-1, 1, Wt, dtype=corr.dtype, device=corr.device).view(1, Wt, 1, 1)
    y_normal = torch.linspace(-1, 1, Ht, dtype=corr.dtype, device=corr.device).view(1, Ht, 1, 1)
    grid_x = (p.sum(dim=1) * x_normal).sum(dim=1, keepdim=True)  # marginal over y, then expectation over x
    grid_y = (p.sum(dim=2) * y_normal).sum(dim=1, keepdim=True)
    return grid_x, grid_y


def sfnet_find_correspondence(corr_tm, Ht, Wt, beta=50.0, sigma=5.0, normalize=True):
    """The whole published path on a target-major volume, returned in our layout (B, Hs, Ws, 2)."""
    if normalize:
        corr_tm = sfnet_l2normalize(corr_tm)
    gx, gy = sfnet_kernel_soft_argmax(corr_tm, Ht, Wt, beta, sigma)
    return torch.cat([gx, gy], dim=1).permute(0, 2, 3, 1)


def to_target_major(corr):
    """Our (B, Hs, Ws, Ht, Wt) -> SFNet's (B, Ht*Wt, Hs, Ws) (a contiguous copy)."""
    B, Hs, Ws, Ht, Wt = corr.shape
    return corr.reshape(B, Hs, Ws, Ht * Wt).permute(0, 3, 1, 2).contiguous()
