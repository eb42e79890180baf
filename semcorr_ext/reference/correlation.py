"""References of corr4d and mutual_matching (docs/OPS.md#correlation), computed in float64."""
import torch


def corr4d(src, tgt, *, normalize=True, relu=False, power=1.0, eps=1e-6):
    if power != 1.0 and not relu:
        raise ValueError("corr4d: `power` != 1 requires `relu=True`")
    s, t = src.double(), tgt.double()
    if normalize:
        s = s / torch.sqrt((s * s).sum(1, keepdim=True) + eps)
        t = t / torch.sqrt((t * t).sum(1, keepdim=True) + eps)
    out = torch.einsum("bcij,bckl->bijkl", s, t)
    if relu:
        out = out.clamp(min=0)
    if power != 1.0:
        out = out ** power
    return out.to(src.dtype)


def mutual_matching(corr, eps=1e-5):
    c = corr.double()
    shape = c.shape
    if c.dim() == 6:
        c = c.squeeze(1)
    B, Hs, Ws, Ht, Wt = c.shape
    flat = c.reshape(B, Hs * Ws, Ht * Wt)
    max_t = flat.max(dim=2, keepdim=True).values  # best target for each source
    max_s = flat.max(dim=1, keepdim=True).values  # best source for each target
    out = flat * ((flat / (max_t + eps)) * (flat / (max_s + eps)))
    return out.reshape(shape).to(corr.dtype)
