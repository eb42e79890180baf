"""Reference of kernel_soft_argmax (docs/OPS.md#kernel_soft_argmax), computed in float64."""
import torch


def kernel_soft_argmax(corr, *, beta=50.0, sigma=5.0, normalize=True):
    """SFNet's kernel soft-argmax on a source-major volume (B, Hs, Ws, Ht, Wt) -> (B, Hs, Ws, 2) as (x, y).

    Written for clarity: the Gaussian is materialised over the whole volume."""
    if corr.dim() != 5:
        raise ValueError("kernel_soft_argmax: `corr` must be (B, Hs, Ws, Ht, Wt), got %s" % (tuple(corr.shape),))
    B, Hs, Ws, Ht, Wt = corr.shape
    s = corr.double().reshape(B, Hs, Ws, Ht * Wt)
    if normalize:
        s = s / torch.sqrt((s * s).sum(-1, keepdim=True) + 1e-6)
    ys = torch.arange(Ht, dtype=torch.float64, device=corr.device)
    xs = torch.arange(Wt, dtype=torch.float64, device=corr.device)
    ty, tx = torch.meshgrid(ys, xs, indexing="ij")
    ty, tx = ty.reshape(-1), tx.reshape(-1)
    if sigma is not None and sigma > 0:
        idx = s.detach().argmax(-1, keepdim=True)  # first maximal index; no gradient through it
        x0, y0 = (idx % Wt).double(), (idx // Wt).double()
        g = torch.exp(-((tx - x0) ** 2 + (ty - y0) ** 2) / (2.0 * float(sigma) ** 2))
        u = g * s
    else:
        u = s
    z = beta * (u - u.max(-1, keepdim=True).values)
    p = torch.softmax(z, dim=-1)
    X = torch.linspace(-1, 1, Wt, dtype=torch.float64, device=corr.device)[tx.long()]
    Y = torch.linspace(-1, 1, Ht, dtype=torch.float64, device=corr.device)[ty.long()]
    out = torch.stack([(p * X).sum(-1), (p * Y).sum(-1)], dim=-1)
    return out.to(corr.dtype)
