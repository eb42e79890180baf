"""References of corr4d_topk, kernel_map4d and sparse_conv4d (docs/OPS.md#corr4d_topk, #kernel_map4d,
#sparse_conv4d), in float64 and plain PyTorch (they materialise the dense volume / use Python dictionaries:
for tests only)."""
import torch

from .correlation import corr4d

__all__ = ["corr4d_topk", "kernel_map4d", "sparse_conv4d", "conv4d_same"]


def corr4d_topk(src, tgt, k, *, normalize=True, eps=1e-6):
    """Dense float64 volume, then a stable descending sort (ties keep the smaller target index first)."""
    B, _, Hs, Ws = src.shape
    vol = corr4d(src.double(), tgt.double(), normalize=normalize, eps=eps).reshape(B, Hs, Ws, -1)
    vals, idx = torch.sort(vol, dim=-1, descending=True, stable=True)
    return vals[..., :k].to(src.dtype), idx[..., :k]


def _offsets(kernel_size):
    ks = (kernel_size,) * 4 if isinstance(kernel_size, int) else tuple(kernel_size)
    if len(ks) == 1:
        ks = ks * 4
    out = []
    for a in range(ks[0]):
        for b in range(ks[1]):
            for c in range(ks[2]):
                for d in range(ks[3]):
                    out.append((0, a - ks[0] // 2, b - ks[1] // 2, c - ks[2] // 2, d - ks[3] // 2))
    return ks, out


def kernel_map4d(coords, kernel_size):
    """(in_rows, out_rows, offsets_ptr) by dictionary lookup, offset-major, increasing output row."""
    _, offs = _offsets(kernel_size)
    rows = [tuple(int(v) for v in r) for r in coords.tolist()]
    where = {r: n for n, r in enumerate(rows)}
    if len(where) != len(rows):
        raise ValueError("kernel_map4d: coords must have unique rows")
    ins, outs, ptr = [], [], [0]
    for o in offs:
        for n, r in enumerate(rows):
            m = where.get(tuple(x + d for x, d in zip(r, o)))
            if m is not None:
                ins.append(m)
                outs.append(n)
        ptr.append(len(ins))
    t = lambda v: torch.tensor(v, dtype=torch.int64)
    return t(ins), t(outs), t(ptr)


def sparse_conv4d(feats, coords, weight, bias=None):
    """out[n] = bias + sum over present neighbours coords[n] + delta_o of weight[:, :, o] @ feats[neighbour]."""
    ks, offs = _offsets(tuple(weight.shape[2:]))
    f, w = feats.double(), weight.double()
    rows = [tuple(int(v) for v in r) for r in coords.tolist()]
    where = {r: n for n, r in enumerate(rows)}
    out = torch.zeros(feats.shape[0], weight.shape[0], dtype=torch.float64)
    if bias is not None:
        out += bias.double()
    wflat = w.reshape(w.shape[0], w.shape[1], -1)  # (Cout, Cin, K) in offset order
    for o, delta in enumerate(offs):
        for n, r in enumerate(rows):
            m = where.get(tuple(x + d for x, d in zip(r, delta)))
            if m is not None:
                out[n] += wflat[:, :, o] @ f[m]
    return out.to(feats.dtype)


def conv4d_same(x, weight, bias=None):
    """Brute-force dense 4D cross-correlation with "same" zero padding, stride 1: x (B, Cin, H1, W1, H2, W2),
    weight (Cout, Cin, k1, k2, k3, k4) odd -> (B, Cout, H1, W1, H2, W2). float64."""
    x, w = x.double(), weight.double()
    B, Cin, H1, W1, H2, W2 = x.shape
    k = w.shape[2:]
    p = [s // 2 for s in k]
    xp = torch.nn.functional.pad(x, (p[3], p[3], p[2], p[2], p[1], p[1], p[0], p[0]))
    out = torch.zeros(B, w.shape[0], H1, W1, H2, W2, dtype=torch.float64)
    for a in range(k[0]):
        for b in range(k[1]):
            for c in range(k[2]):
                for d in range(k[3]):
                    patch = xp[:, :, a:a + H1, b:b + W1, c:c + H2, d:d + W2]
                    out += torch.einsum("oi,bi...->bo...", w[:, :, a, b, c, d], patch)
    if bias is not None:
        out += bias.double().view(1, -1, 1, 1, 1, 1)
    return out
