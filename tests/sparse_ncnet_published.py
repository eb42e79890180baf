"""Float64 references of the published Sparse NC-Net (ignacio-rocco/sparse-ncnet) and of MinkowskiEngine 0.4's
convolution, written from reading that code (not copied), plus the checkpoint file its ``train.py`` writes.

Used by tests/test_sparse_ncnet_*.py. Plain dict/loop code on purpose: slow, obviously what the published code
computes, and independent of the vectorised implementation under test.
"""
import argparse
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---- MinkowskiEngine 0.4 ----------------------------------------------------------------------------------
def me_region_offsets(kernel_size):
    """Offsets of ME's HYPERCUBE region in iteration order, as ``RegionIterator::operator++`` (src/region.cpp,
    v0.4.3) walks it: start at the lower bound; add 1 to axis 0; when it passes the upper bound reset it and
    carry into the next axis. Odd sizes span [-k//2, k//2], even ones [0, k - 1]."""
    lb = [-(k // 2) if k % 2 else 0 for k in kernel_size]
    ub = [k // 2 if k % 2 else k - 1 for k in kernel_size]
    point, out = list(lb), []
    while True:
        out.append(tuple(point))
        d = 0
        while d < len(point):
            point[d] += 1
            if point[d] <= ub[d]:
                break
            point[d] = lb[d]
            d += 1
        if d == len(point):
            return out


def me_conv(coords, feats, kernel, bias, kernel_size):
    """ME's stride-1 convolution on a sparse tensor (output on the input coordinates): for every output
    coordinate and kernel row o, the input at ``coord + offset_o`` (same batch), if present, contributes
    ``feat @ kernel[o]``; then ``+ bias`` ((1, Cout)). ``coords``: list of 5-tuples (b, x1..x4)."""
    offsets = me_region_offsets(kernel_size)
    if kernel.dim() == 2:  # ME's 1x1x1x1 kernel is a plain (Cin, Cout) matrix
        kernel = kernel.unsqueeze(0)
    row = {c: n for n, c in enumerate(coords)}
    out = torch.zeros(len(coords), kernel.shape[2], dtype=torch.float64)
    for n, c in enumerate(coords):
        for o, off in enumerate(offsets):
            m = row.get((c[0],) + tuple(ci + oi for ci, oi in zip(c[1:], off)))
            if m is not None:
                out[n] += feats[m].double() @ kernel[o].double()
    if bias is not None:
        out += bias.double().reshape(1, -1)
    return out


# ---- the published checkpoint ------------------------------------------------------------------------------
def train_args(**overrides):
    """``args`` of the published train.py with its defaults (argparse.Namespace, as pickled in the file)."""
    a = dict(checkpoint="", image_size=400, dataset_image_path="datasets/ivd",
             dataset_csv_path="datasets/ivd/image_pairs/", num_epochs=5, batch_size=16, lr=0.0005,
             ncons_kernel_sizes=[3, 3], ncons_channels=[16, 1], result_model_fn="sparsencnet",
             result_model_dir="trained_models", fe_finetune_params=0, k=10, symmetric_mode=1, bn=0,
             random_affine=0, feature_extraction_cnn="resnet101", relocalize=0, change_stride=0)
    a.update(overrides)
    return argparse.Namespace(**a)


def published_feature_extraction(seed=0):
    """ImMatchNet's FeatureExtraction.model: torchvision ResNet-101 up to layer3 as an nn.Sequential (random
    weights from ``seed``, BatchNorm statistics randomised so that they are not the identity)."""
    torch.manual_seed(seed)
    net = torchvision.models.resnet101(weights=None)
    g = torch.Generator().manual_seed(seed + 1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            m.num_batches_tracked.fill_(1000)
    return torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3).eval()


def me_consensus_params(kernel_sizes=(3, 3), channels=(16, 1), seed=0):
    """[(kernel (K, Cin, Cout), bias (1, Cout), kernel_size)] as MinkowskiConvolution holds them, initialised
    as its reset_parameters (uniform +-1/sqrt(Cin * K)), float32."""
    g = torch.Generator().manual_seed(seed)
    out, cin = [], 1
    for ks, cout in zip(kernel_sizes, channels):
        ks4 = (ks,) * 4 if isinstance(ks, int) else tuple(ks)
        K = int(np.prod(ks4))
        stdv = 1.0 / np.sqrt(cin * K)
        shape = (cin, cout) if K == 1 else (K, cin, cout)
        out.append(((torch.rand(*shape, generator=g) * 2 - 1) * stdv, (torch.rand(1, cout, generator=g) * 2 - 1) * stdv,
                    ks4))
        cin = cout
    return out


def published_state_dict(fe, consensus, with_num_batches_tracked=True):
    """ImMatchNet.state_dict(): ``FeatureExtraction.model.*`` then ``NeighConsensus.conv.<2i+1>.kernel/bias``
    (conv = Sequential(MinkowskiReLU, conv, MinkowskiReLU, conv, MinkowskiReLU))."""
    sd = OrderedDict()
    for k, v in fe.state_dict().items():
        if with_num_batches_tracked or not k.endswith("num_batches_tracked"):
            sd["FeatureExtraction.model." + k] = v.clone()
    for i, (kernel, bias, _) in enumerate(consensus):
        sd["NeighConsensus.conv.%d.kernel" % (2 * i + 1)] = kernel.clone()
        sd["NeighConsensus.conv.%d.bias" % (2 * i + 1)] = bias.clone()
    return sd


def published_checkpoint(state_dict, args, num_epochs=2):
    """The dict train.py passes to save_checkpoint (torch.save): epoch, args, state_dict, best_test_loss (a
    numpy float64 from ``min(test_loss[epoch-1], best)``), optimizer (Adam over the trainable consensus
    parameters, after a step), train_loss / test_loss (numpy arrays)."""
    params = [torch.nn.Parameter(v.clone()) for k, v in state_dict.items() if k.startswith("NeighConsensus.")]
    opt = torch.optim.Adam(params, lr=args.lr)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    train_loss, test_loss = np.zeros(num_epochs), np.zeros(num_epochs)
    train_loss[:] = [-0.1, -0.2][:num_epochs]
    test_loss[:] = [-0.15, -0.18][:num_epochs]
    best = float("inf")
    best = min(test_loss[num_epochs - 1], best)
    assert isinstance(best, np.float64)
    return {"epoch": num_epochs, "args": args, "state_dict": state_dict, "best_test_loss": best,
            "optimizer": opt.state_dict(), "train_loss": train_loss, "test_loss": test_loss}


# ---- the published pipeline, float64 -----------------------------------------------------------------------
def feature_l2_norm(f):
    return f / torch.pow(torch.sum(torch.pow(f, 2), 1) + 1e-6, 0.5).unsqueeze(1)


def change_stride(fe):
    """The evaluation's --change_stride 1 (first layer3 block with stride 1), on a copy."""
    import copy

    fe = copy.deepcopy(fe)
    fe[-1][0].conv1.stride = (1, 1)
    fe[-1][0].conv2.stride = (1, 1)
    fe[-1][0].downsample[0].stride = (1, 1)
    return fe


def eval_features(fe64, img01, relocalize=True):
    """eval_model_reloc's features: normalised image -> FeatureExtraction.model -> 2x2 max-pool -> featureL2Norm;
    and featureL2Norm of the unpooled map (feature_2x)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        f2x = fe64((img01.double() - mean) / std)
    if not relocalize:
        return feature_l2_norm(f2x), None
    return feature_l2_norm(F.max_pool2d(f2x, kernel_size=2, stride=2, padding=0)), feature_l2_norm(f2x)


def corr_and_add(fa, fb, k):
    """{(b, iA, jA, iB, jB): value}: sparse_corr both ways (faiss exact L2 kNN; eval mode: corr = 1 - d^2 / 2),
    joined as MinkowskiUnion does (values of a coordinate present in both tensors added)."""
    points = {}
    B, C, _, wa = fa.shape
    wb = fb.shape[-1]
    for b in range(B):
        a = fa[b].reshape(C, -1).t()
        bb = fb[b].reshape(C, -1).t()
        for q, db, reverse in ((a, bb, False), (bb, a, True)):
            d2 = ((q[:, None, :] - db[None, :, :]) ** 2).sum(-1)
            idx = torch.argsort(d2, dim=1)[:, :k]
            wq, wd = (wb, wa) if reverse else (wa, wb)
            for n in range(q.shape[0]):
                for m in idx[n].tolist():
                    pq, pd = divmod(n, wq), divmod(m, wd)
                    key = (b,) + (pd + pq if reverse else pq + pd)
                    points[key] = points.get(key, 0.0) + float(1 - d2[n, m] / 2)
    return points


def sparse_neigh_consensus(points, consensus, symmetric=True):
    """SparseNeighConsensus.forward: MinkowskiReLU, then (conv, MinkowskiReLU) per layer; symmetric: the same
    stack on the transposed coordinates (b, iB, jB, iA, jA), transposed back and added."""
    def stack(coords, x):
        x = x.clamp(min=0)
        for kernel, bias, ks in consensus:
            x = me_conv(coords, x, kernel, bias, ks).clamp(min=0)
        return x

    coords = sorted(points)
    x = torch.tensor([points[c] for c in coords], dtype=torch.float64).unsqueeze(1)
    out = stack(coords, x)
    if symmetric:
        tcoords = [(c[0], c[3], c[4], c[1], c[2]) for c in coords]
        out = out + stack(tcoords, x)  # row n of the transposed tensor is point n: transposing back is the identity
    return {c: float(out[n, 0]) for n, c in enumerate(coords)}


def get_matches_both_dirs(scores):
    """The published readout on a batch of one: per source cell and per target cell the point of largest score
    (sorting the coalesced rows by descending score, stable, first row per cell), union of both, duplicates
    removed. Returns ({(iA, jA, iB, jB): score} of the union, {(iA, jA): (iA, jA, iB, jB)} of the source side)."""
    coords = sorted(scores)  # coalesce: lexicographic
    order = sorted(range(len(coords)), key=lambda n: -scores[coords[n]])  # Python's sort is stable
    best, per_source = {}, {}
    for side in (slice(1, 3), slice(3, 5)):
        seen = set()
        for n in order:
            cell = coords[n][side]
            if cell not in seen:
                seen.add(cell)
                best[coords[n][1:]] = scores[coords[n]]
                if side.start == 1:
                    per_source[cell] = coords[n][1:]
    return best, per_source


def relocalize(pos, fa2x, fb2x, upsample_positions=True, crop_size=2):
    """lib/relocalize.py ``relocalize`` for a batch of one, with torchvision's roi_pool: ``pos`` (N, 4) float64
    (yA, xA, yB, xB) -> new (N, 4)."""
    from torchvision.ops import roi_pool

    yA, xA, yB, xB = (pos[:, i].unsqueeze(0).double() for i in range(4))
    if upsample_positions:
        yA, xA, yB, xB = yA * 2, xA * 2, yB * 2, xB * 2
    N, ch, c = pos.shape[0], fa2x.shape[1], crop_size % 2
    z = torch.zeros(1, N, dtype=torch.float64)
    la = roi_pool(fa2x, torch.cat((z, xA - c, yA - c, xA + 1, yA + 1)).t(), output_size=(crop_size, crop_size))
    lb = roi_pool(fb2x, torch.cat((z, xB - c, yB - c, xB + 1, yB + 1)).t(), output_size=(crop_size, crop_size))
    la, lb = la.view(N, ch, -1, 1), lb.view(N, ch, 1, -1)
    lin = torch.linspace(-c, 1, crop_size, dtype=torch.float64)
    dY, dX = torch.meshgrid(lin, lin, indexing="ij")
    dX, dY = dX.reshape(-1), dY.reshape(-1)
    corr = (la * lb).sum(dim=1)
    ia = torch.argmax(corr.max(dim=2, keepdim=True)[0], dim=1)
    ib = torch.argmax(corr.max(dim=1, keepdim=True)[0], dim=2)
    return torch.cat([yA + dY[ia].t(), xA + dX[ia].t(), yB + dY[ib].t(), xB + dX[ib].t()]).t()


def relocalize_soft(pos, fa2x, fb2x, upsample_positions=True, sigma=10):
    """lib/relocalize.py ``relocalize_soft`` for a batch of one (roi_pool 3x3 around each end, softmax of sigma *
    correlation with the other end's centre, expected offset)."""
    from torchvision.ops import roi_pool

    yA, xA, yB, xB = (pos[:, i].unsqueeze(0).double() for i in range(4))
    if upsample_positions:
        yA, xA, yB, xB = yA * 2, xA * 2, yB * 2, xB * 2
    N = pos.shape[0]
    z = torch.zeros(1, N, dtype=torch.float64)
    la = roi_pool(fa2x, torch.cat((z, xA - 1, yA - 1, xA + 1, yA + 1)).t(), output_size=(3, 3))
    lb = roi_pool(fb2x, torch.cat((z, xB - 1, yB - 1, xB + 1, yB + 1)).t(), output_size=(3, 3))
    lin = torch.linspace(-1, 1, 3, dtype=torch.float64)
    dY, dX = torch.meshgrid(lin, lin, indexing="ij")
    dX, dY = dX.unsqueeze(0), dY.unsqueeze(0)
    w_b = (la[:, :, 1:2, 1:2] * lb).sum(dim=1).mul(sigma).view(N, -1).softmax(dim=1).view(N, 3, 3)
    w_a = (lb[:, :, 1:2, 1:2] * la).sum(dim=1).mul(sigma).view(N, -1).softmax(dim=1).view(N, 3, 3)
    return torch.cat([yA + (w_a * dY).view(N, -1).sum(dim=1).unsqueeze(0),
                      xA + (w_a * dX).view(N, -1).sum(dim=1).unsqueeze(0),
                      yB + (w_b * dY).view(N, -1).sum(dim=1).unsqueeze(0),
                      xB + (w_b * dX).view(N, -1).sum(dim=1).unsqueeze(0)]).t()


def relocalize_hard_soft(matches, fa2x, fb2x):
    """The evaluation's ``hard_soft`` chain (hard with crop 2, then soft without upsampling) on a list of
    (iA, jA, iB, jB) -> (N, 4) (yA, xA, yB, xB) on the fine grid."""
    pos = relocalize(torch.tensor(matches, dtype=torch.float64), fa2x, fb2x)
    return relocalize_soft(pos, fa2x, fb2x, upsample_positions=False)
