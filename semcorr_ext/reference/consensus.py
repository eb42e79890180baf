"""References of conv4d and max_pool4d (docs/OPS.md#consensus), computed in float64 by brute force."""
import itertools

import torch


def conv4d(x, weight, bias=None, padding=None):
    """Brute force: one float64 einsum per kernel tap (k1*k2*k3*k4 of them) on a zero-padded copy."""
    from semcorr_ext.ops.consensus import conv4d_padding

    p = conv4d_padding(weight, padding)
    xd, wd = x.double(), weight.double()
    ks = list(weight.shape[2:])
    xp = torch.nn.functional.pad(xd, (p[3], p[3], p[2], p[2], p[1], p[1], p[0], p[0]))
    out_sz = [xp.shape[2 + d] - ks[d] + 1 for d in range(4)]
    if any(s < 1 for s in out_sz) and x.numel() > 0:
        raise RuntimeError("conv4d: input smaller than the kernel")
    if x.numel() == 0:
        out_sz = [0 if x.shape[2 + d] == 0 else s for d, s in enumerate(out_sz)]
        return x.new_zeros((x.shape[0], weight.shape[0], *out_sz))
    out = xd.new_zeros((x.shape[0], weight.shape[0], *out_sz))
    for a in itertools.product(*[range(k) for k in ks]):
        win = xp[:, :, a[0]:a[0] + out_sz[0], a[1]:a[1] + out_sz[1], a[2]:a[2] + out_sz[2], a[3]:a[3] + out_sz[3]]
        out += torch.einsum("bcijkl,oc->boijkl", win, wd[:, :, a[0], a[1], a[2], a[3]])
    if bias is not None:
        out += bias.double().view(1, -1, 1, 1, 1, 1)
    return out.to(x.dtype)


def max_pool4d(x, kernel_size):
    """Blocks as an explicit reshape; argmax by torch.max over the flattened block (first maximum)."""
    k = [int(kernel_size)] * 4 if isinstance(kernel_size, int) else [int(v) for v in kernel_size]
    B, C = x.shape[:2]
    n = [x.shape[2 + d] // k[d] for d in range(4)]
    xc = x[:, :, :n[0] * k[0], :n[1] * k[1], :n[2] * k[2], :n[3] * k[3]].double()
    blocks = xc.reshape(B, C, n[0], k[0], n[1], k[1], n[2], k[2], n[3], k[3]).permute(0, 1, 2, 4, 6, 8, 3, 5, 7, 9)
    flat = blocks.reshape(B, C, *n, k[0] * k[1] * k[2] * k[3])
    if flat.shape[-1] == 0 or flat.numel() == 0:
        return x.new_zeros((B, C, *n)), torch.zeros((B, 4 * C, *n), dtype=torch.int64, device=x.device)
    nan = torch.isnan(flat)
    values, idx = flat.max(dim=-1)
    # the first NaN of a block counts as its maximum
    has_nan = nan.any(-1)
    idx = torch.where(has_nan, nan.to(torch.uint8).argmax(-1), flat.argmax(-1))
    values = torch.where(has_nan, torch.full_like(values, float("nan")), torch.gather(flat, -1, idx[..., None])[..., 0])
    offs = []
    rem = idx
    strides = [k[1] * k[2] * k[3], k[2] * k[3], k[3], 1]
    for d in range(4):
        offs.append(rem // strides[d])
        rem = rem % strides[d]
    argmax = torch.stack(offs, dim=2).reshape(B, 4 * C, *n)
    return values.to(x.dtype), argmax
