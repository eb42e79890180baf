"""semcorr_ext.compat.ncnet against NC-Net's published code (ignacio-rocco/ncnet lib/conv4d.py, lib/model.py):
its checkpoint layout written by hand as its train.py saves it, and its forward computation re-written here
in float64 from reading that code (a loop of conv3d over the first dim, bias on the centre tap only)."""
import argparse
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semcorr.checkpoints import load_checkpoint
from semcorr_ext.compat import ncnet

KS, CH = [3, 3], [4, 1]


# ---- float64 references of the published computation --------------------------------------------------------
def ref_conv4d(data, filters_prepermuted, bias):
    """lib/conv4d.py conv4d with pre-permuted filters [k1, Cout, Cin, k2, k3, k4]: zero-pad the first dim by
    k1 // 2, then for every output slice sum conv3d's of the neighbouring input slices (padding k1 // 2)."""
    data, w = data.double(), filters_prepermuted.double()
    bias = None if bias is None else bias.double()
    p = w.shape[0] // 2
    z = data.new_zeros(data.shape[:2] + (p,) + data.shape[3:])
    padded = torch.cat((z, data, z), 2)
    out = []
    for i in range(data.shape[2]):
        acc = F.conv3d(padded[:, :, i + p], w[p], bias=bias, padding=p)
        for q in range(1, p + 1):
            acc = acc + F.conv3d(padded[:, :, i + p - q], w[p - q], padding=p)
            acc = acc + F.conv3d(padded[:, :, i + p + q], w[p + q], padding=p)
        out.append(acc)
    return torch.stack(out, 2)


def ref_neigh_consensus(x, sd, symmetric=True):
    """lib/model.py NeighConsensus: Conv4d + ReLU layers; symmetric mode adds the run on the A/B transpose."""
    def stack(v):
        for i in range(len(sd) // 2):
            v = torch.relu(ref_conv4d(v, sd["conv.%d.weight" % (2 * i)], sd["conv.%d.bias" % (2 * i)]))
        return v
    x = x.double()
    if not symmetric:
        return stack(x)
    return stack(x) + stack(x.permute(0, 1, 4, 5, 2, 3)).permute(0, 1, 4, 5, 2, 3)


def ref_mutual_matching(corr):
    corr = corr.double()
    b, _, h1, w1, h2, w2 = corr.shape
    max_over_a = corr.reshape(b, h1 * w1, h2, w2).max(1, keepdim=True).values
    max_over_b = corr.reshape(b, h1, w1, h2 * w2).max(3, keepdim=True).values
    by_b = (corr.reshape(b, h1 * w1, h2, w2) / (max_over_a + 1e-5)).reshape(corr.shape)
    by_a = (corr.reshape(b, h1, w1, h2 * w2) / (max_over_b + 1e-5)).reshape(corr.shape)
    return corr * (by_a * by_b)


def ref_l2norm(f):
    return f.double() / torch.pow(torch.sum(f.double() ** 2, 1) + 1e-6, 0.5).unsqueeze(1)


def ref_feature_correlation(fa, fb, shape, normalization):
    fa, fb = fa.double(), fb.double()
    if shape == "3D":
        b, c, h, w = fa.shape
        a = fa.transpose(2, 3).reshape(b, c, h * w)
        bb = fb.reshape(b, c, h * w).transpose(1, 2)
        corr = torch.bmm(bb, a).reshape(b, h, w, h * w).transpose(2, 3).transpose(1, 2)
    else:
        b, c, ha, wa = fa.shape
        hb, wb = fb.shape[2:]
        corr = torch.bmm(fa.reshape(b, c, -1).transpose(1, 2), fb.reshape(b, c, -1)).reshape(b, ha, wa, hb, wb)[:, None]
    return ref_l2norm(torch.relu(corr)) if normalization else corr


def ref_maxpool4d_one(x, k):
    """lib/model.py maxpool4d for one batch item (1, 1, ...): k^4 strided slices, max, index decomposition."""
    slices = [x[:, 0, i::k, j::k, m::k, n::k] for i in range(k) for j in range(k) for m in range(k) for n in range(k)]
    vals, idx = torch.stack(slices, 1).max(1, keepdim=True)
    return vals, idx // k ** 3, (idx // k ** 2) % k, (idx // k) % k, idx % k


# ---- a checkpoint as NC-Net's train.py writes it -----------------------------------------------------------
def write_published_checkpoint(path, gen):
    sd = OrderedDict()
    sd["FeatureExtraction.model.0.weight"] = torch.randn(4, 3, 3, 3, generator=gen)
    cin = 1
    for i, (k, cout) in enumerate(zip(KS, CH)):
        sd["NeighConsensus.conv.%d.weight" % (2 * i)] = 0.3 * torch.randn(k, cout, cin, k, k, k, generator=gen)
        sd["NeighConsensus.conv.%d.bias" % (2 * i)] = 0.1 * torch.randn(cout, generator=gen)
        cin = cout
    nc_params = [v for k, v in sd.items() if k.startswith("NeighConsensus.")]
    opt = torch.optim.Adam([p.clone().requires_grad_() for p in nc_params], lr=5e-4)
    for p in opt.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    opt.step()
    args = argparse.Namespace(ncons_kernel_sizes=KS, ncons_channels=CH, lr=5e-4, num_epochs=5, batch_size=16,
                              result_model_fn="checkpoint_adam", fe_finetune_params=0)
    train_loss = np.array([-0.1, -0.2, 0.0, 0.0, 0.0])
    torch.save({"epoch": 2, "args": args, "state_dict": sd, "best_test_loss": np.min(train_loss[:2]),
                "optimizer": opt.state_dict(), "train_loss": train_loss, "test_loss": train_loss.copy()}, path)
    return sd


def test_published_checkpoint_loads_unchanged_and_the_matching_pipeline_agrees(tmp_path):
    gen = torch.Generator().manual_seed(0)
    path = tmp_path / "ncnet_pfpascal.pth.tar"
    write_published_checkpoint(path, gen)
    ckpt = load_checkpoint(path)
    args = ckpt["args"]
    nc = ncnet.NeighConsensus(use_cuda=False, kernel_sizes=args.ncons_kernel_sizes, channels=args.ncons_channels)
    # what ImMatchNet does: copy every NeighConsensus.<name> of the checkpoint, unchanged
    sd = OrderedDict((k[len("NeighConsensus."):], v) for k, v in ckpt["state_dict"].items()
                     if k.startswith("NeighConsensus."))
    nc.load_state_dict(sd, strict=True)
    assert nc.conv[0].weight.shape == (3, 4, 1, 3, 3, 3)  # [k1, Cout, Cin, k2, k3, k4]

    # ImMatchNet.forward after feature extraction (features L2-normalised by FeatureExtraction)
    fa, fb = torch.randn(1, 16, 5, 4, generator=gen), torch.randn(1, 16, 4, 5, generator=gen)
    with torch.no_grad():
        corr = ncnet.FeatureCorrelation(shape="4D", normalization=False)(ncnet.featureL2Norm(fa),
                                                                         ncnet.featureL2Norm(fb))
        out = ncnet.MutualMatching(nc(ncnet.MutualMatching(corr)))
    ref = ref_feature_correlation(ref_l2norm(fa), ref_l2norm(fb), "4D", False)
    ref = ref_mutual_matching(ref_neigh_consensus(ref_mutual_matching(ref), sd))
    assert out.shape == (1, 1, 5, 4, 4, 5) and out.dtype == torch.float32
    assert ref.abs().max() > 0.1  # the consensus output is not trivially zero
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("symmetric", [True, False])
def test_neigh_consensus_keys_and_non_symmetric_mode(symmetric):
    torch.manual_seed(1)
    nc = ncnet.NeighConsensus(use_cuda=False, kernel_sizes=[5, 3], channels=[2, 1], symmetric_mode=symmetric)
    sd = nc.state_dict()
    assert list(sd) == ["conv.0.weight", "conv.0.bias", "conv.2.weight", "conv.2.bias"]
    assert sd["conv.0.weight"].shape == (5, 2, 1, 5, 5, 5) and sd["conv.2.weight"].shape == (3, 1, 2, 3, 3, 3)
    assert isinstance(nc.conv[1], torch.nn.ReLU) and nc.conv[1].inplace
    x = torch.rand(2, 1, 5, 6, 6, 5)
    with torch.no_grad():
        out = nc(x)
    torch.testing.assert_close(out.double(), ref_neigh_consensus(x, sd, symmetric), atol=1e-5, rtol=1e-5)


def test_conv4d_layer_attributes_init_and_both_layouts():
    torch.manual_seed(2)
    layer = ncnet.Conv4d(2, 3, 3, bias=True)
    assert layer.weight.shape == (3, 3, 2, 3, 3, 3) and layer.bias.shape == (3,)
    assert layer.kernel_size == (3, 3, 3, 3) and layer.padding == (0, 0, 0, 0) and layer.stride == (1, 1, 1, 1)
    assert layer.pre_permuted_filters and not layer.use_half
    bound = 1 / (2 * 81) ** 0.5  # _ConvNd's init: Kaiming-uniform a=sqrt(5) -> U(+-1/sqrt(fan_in))
    assert layer.weight.abs().max() <= bound and layer.weight.std() > 0.4 * bound
    assert layer.bias.abs().max() <= bound

    plain = ncnet.Conv4d(2, 3, 3, bias=False, pre_permuted_filters=False)
    assert plain.weight.shape == (3, 2, 3, 3, 3, 3) and plain.bias is None
    with torch.no_grad():
        plain.weight.copy_(layer.weight.permute(1, 2, 0, 3, 4, 5))
    x = torch.randn(1, 2, 4, 3, 5, 4)
    with torch.no_grad():
        ref = ref_conv4d(x, layer.weight, layer.bias)
        torch.testing.assert_close(layer(x).double(), ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(plain(x).double(), ref - layer.bias.double().view(1, 3, 1, 1, 1, 1),
                                   atol=1e-5, rtol=1e-5)
        # the function form with either filter layout
        torch.testing.assert_close(ncnet.conv4d(x, layer.weight, layer.bias, permute_filters=False).double(), ref,
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ncnet.conv4d(x, plain.weight, layer.bias).double(), ref, atol=1e-5, rtol=1e-5)


def test_backward_works_gradcheck():
    # The published conv4d writes into a leaf created with requires_grad=True: its backward fails on current
    # PyTorch. Ours is differentiable in the input and in every weight, through the in-place ReLUs.
    torch.manual_seed(3)
    nc = ncnet.NeighConsensus(use_cuda=False, kernel_sizes=[3, 3], channels=[2, 1]).double()
    x = torch.rand(1, 1, 3, 4, 3, 4, dtype=torch.float64, requires_grad=True)
    params = [p for p in nc.parameters()]
    assert torch.autograd.gradcheck(lambda v, *ps: nc(v), (x, *params), eps=1e-6, atol=1e-5)
    layer = ncnet.Conv4d(2, 2, 3).double()
    y = torch.randn(1, 2, 3, 3, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, w, b: ncnet.conv4d(v, w, b, permute_filters=False),
                                    (y, layer.weight, layer.bias), eps=1e-6, atol=1e-5)
    # and the gradient is the one of the published computation
    sd = {k: v.detach().clone().requires_grad_() for k, v in nc.state_dict().items()}
    ref_out = ref_neigh_consensus(x, sd)
    g_ref = torch.autograd.grad(ref_out.pow(2).sum(), [x] + list(sd.values()))
    g_ours = torch.autograd.grad(nc(x).pow(2).sum(), [x] + params)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-7)


def test_mutual_matching_and_l2norm():
    corr = torch.rand(2, 1, 3, 4, 5, 2)
    torch.testing.assert_close(ncnet.MutualMatching(corr).double(), ref_mutual_matching(corr), atol=1e-6, rtol=1e-5)
    f = torch.randn(2, 7, 3, 3)
    torch.testing.assert_close(ncnet.featureL2Norm(f).double(), ref_l2norm(f), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("shape", ["3D", "4D"])
@pytest.mark.parametrize("normalization", [True, False])
def test_feature_correlation(shape, normalization):
    gen = torch.Generator().manual_seed(4)
    fa = torch.randn(2, 6, 3, 4, generator=gen)
    fb = torch.randn(2, 6, 3, 4, generator=gen) if shape == "3D" else torch.randn(2, 6, 5, 2, generator=gen)
    out = ncnet.FeatureCorrelation(shape=shape, normalization=normalization)(fa, fb)
    ref = ref_feature_correlation(fa, fb, shape, normalization)
    assert out.shape == ref.shape
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)


def test_feature_correlation_errors_name_the_argument():
    with pytest.raises(ValueError, match="shape"):
        ncnet.FeatureCorrelation(shape="2D")
    with pytest.raises(ValueError, match="feature_A and feature_B"):
        ncnet.FeatureCorrelation(shape="3D")(torch.randn(1, 4, 3, 3), torch.randn(1, 4, 2, 3))


def test_maxpool4d_batch_one_is_the_published_result_and_each_item_pools_alone():
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(2, 1, 4, 6, 4, 2, generator=gen)  # distinct values: no ties
    out = ncnet.maxpool4d(x, k_size=2)
    assert len(out) == 5 and all(t.shape == (2, 1, 2, 3, 2, 1) for t in out)
    assert all(t.dtype == torch.int64 for t in out[1:])
    for b in range(2):
        ref = ref_maxpool4d_one(x[b:b + 1], 2)
        torch.testing.assert_close(out[0][b:b + 1], ref[0])
        for got, want in zip(out[1:], ref[1:]):
            assert torch.equal(got[b:b + 1], want)
    with pytest.raises(ValueError, match="corr4d_hres"):
        ncnet.maxpool4d(torch.rand(1, 2, 4, 4, 4, 4))
