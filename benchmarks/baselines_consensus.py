"""NC-Net's neighbourhood consensus written plainly in PyTorch from the paper and the behaviour of its public
code (not copied), as the baseline for conv4d / NeighConsensus and the numerical check of our ops.

NC-Net's Conv4d computes a 4D convolution as a Python loop over the output slices of the first dim, each
slice a sum over the k1 taps of ``conv3d`` calls on zero-padded input slices; its input is first permuted to
(H1, B, C, ...) and zero-padded along H1 (a copy), and the stacked output permuted back (another copy).
The published module assigns each slice in place into a tensor created with requires_grad=True, which fails in
backward on current PyTorch; here the slices are collected and stacked, which is the same computation and
differentiable. The published weight layout is [k1, Cout, Cin, k2, k3, k4]; these functions take the
standard (Cout, Cin, k1, k2, k3, k4).
"""
import torch
import torch.nn.functional as F


def ncnet_conv4d(x, weight, bias=None):
    """NC-Net Conv4d: 'same' padding k//2 per dim (odd kernels), stride 1."""
    B, C, H1 = x.shape[:3]
    k1 = weight.shape[2]
    p1 = k1 // 2
    inner_pad = tuple(k // 2 for k in weight.shape[3:])
    data = x.permute(2, 0, 1, 3, 4, 5).contiguous()  # (H1, B, C, W1, H2, W2): slices are contiguous
    filters = weight.permute(2, 0, 1, 3, 4, 5).contiguous()  # (k1, Cout, Cin, k2, k3, k4)
    if p1 > 0:
        z = data.new_zeros((p1,) + tuple(data.shape[1:]))
        data = torch.cat((z, data, z), 0)
    slices = []
    for i in range(H1):
        acc = F.conv3d(data[i + p1], filters[p1], bias=bias, padding=inner_pad)
        for a in range(k1):
            if a != p1:
                acc = acc + F.conv3d(data[i + a], filters[a], padding=inner_pad)
        slices.append(acc)
    return torch.stack(slices, dim=2)  # (B, Cout, H1, W1, H2, W2)


def ncnet_neigh_consensus(x, weights, biases, symmetric=True):
    """NC-Net NeighConsensus: Conv4d + ReLU layers; symmetric mode adds the same net applied to the
    source/target-swapped volume, swapped back."""

    def net(v):
        for w, b in zip(weights, biases):
            v = F.relu(ncnet_conv4d(v, w, b))
        return v

    if not symmetric:
        return net(x)
    return net(x) + net(x.permute(0, 1, 4, 5, 2, 3)).permute(0, 1, 4, 5, 2, 3)


def ncnet_maxpool4d(corr4d, k):
    """NC-Net relocalisation pooling on (B, 1, H1, W1, H2, W2) with sizes divisible by k: the maximum of each
    k^4 block and its offsets (i, j, k, l) inside the block. Written as a reshape of the k^4 block offsets into
    one dim and an argmax over it (the published code stacks the k^4 strided sub-volumes the same way)."""
    B, C, H1, W1, H2, W2 = corr4d.shape
    slices = []
    for i in range(k):
        for j in range(k):
            for kk in range(k):
                for ll in range(k):
                    slices.append(corr4d[:, 0, i::k, j::k, kk::k, ll::k].unsqueeze(1))
    stacked = torch.cat(slices, dim=1)
    values, idx = torch.max(stacked, dim=1, keepdim=True)
    max_l = torch.fmod(idx, k)
    max_k = torch.fmod(idx.sub(max_l).div(k, rounding_mode="floor"), k)
    max_j = torch.fmod(idx.sub(max_l).div(k, rounding_mode="floor").sub(max_k).div(k, rounding_mode="floor"), k)
    max_i = idx.sub(max_l).div(k, rounding_mode="floor").sub(max_k).div(k, rounding_mode="floor").sub(max_j).div(
        k, rounding_mode="floor")
    return values, max_i, max_j, max_k, max_l
