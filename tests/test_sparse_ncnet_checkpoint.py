"""Sparse NC-Net's published checkpoint (train.py layout, MinkowskiEngine kernels) -> our SparseNCNet."""
import re
import warnings

import pytest
import torch

from semcorr.checkpoints import CheckpointError
from semcorr.models import build_model, untrained_line
from semcorr.models.sparse_ncnet import SparseNCNet
from semcorr.models.sparse_ncnet_convert import (convert_sparse_ncnet_state_dict, me_kernel_offsets,
                                                 me_kernel_to_weight, read_sparse_ncnet_checkpoint,
                                                 weight_to_me_kernel)
from semcorr_ext import nn as snn
from sparse_ncnet_published import (me_consensus_params, me_conv, me_region_offsets, published_checkpoint,
                                    published_feature_extraction, published_state_dict, train_args)


@pytest.mark.parametrize("ks", [(3, 3, 3, 3), (3, 1, 5, 3), (1, 1, 1, 1), (2, 3, 1, 2)])
def test_me_kernel_offsets_follow_mes_region_iterator(ks):
    assert me_kernel_offsets(ks).tolist() == [list(o) for o in me_region_offsets(ks)]


def _random_sparse(B=2, dims=(4, 5, 4, 3), n=90, seed=0):
    g = torch.Generator().manual_seed(seed)
    allc = torch.stack(torch.meshgrid(torch.arange(B), *[torch.arange(d) for d in dims], indexing="ij"), -1).reshape(-1, 5)
    return allc[torch.randperm(allc.shape[0], generator=g)[:n]]


@pytest.mark.parametrize("ks,cin,cout", [((3, 3, 3, 3), 2, 3), ((3, 1, 5, 3), 3, 2), ((1, 1, 1, 1), 4, 2)])
def test_converted_me_kernel_gives_mes_convolution(ks, cin, cout):
    """Our SparseConv4d with the converted (K, Cin, Cout) kernel equals ME's convolution (float64 reference
    from ME's kernel map definition) on a random sparse tensor; the conversion round-trips."""
    g = torch.Generator().manual_seed(1)
    coords = _random_sparse()
    feats = torch.randn(coords.shape[0], cin, generator=g, dtype=torch.float64)
    K = ks[0] * ks[1] * ks[2] * ks[3]
    kernel = torch.randn(*((cin, cout) if K == 1 else (K, cin, cout)), generator=g, dtype=torch.float64)
    bias = torch.randn(1, cout, generator=g, dtype=torch.float64)
    layer = snn.SparseConv4d(cin, cout, ks).double()
    with torch.no_grad():
        layer.weight.copy_(me_kernel_to_weight(kernel, ks))
        layer.bias.copy_(bias.reshape(-1))
    expected = me_conv([tuple(c) for c in coords.tolist()], feats, kernel, bias, ks)
    torch.testing.assert_close(layer(feats, coords), expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(weight_to_me_kernel(layer.weight.detach()), kernel.reshape(K, cin, cout))
    # a wrong (C-order) reading of the kernel rows would not pass: the order matters on a non-symmetric kernel
    if K > 1:
        wrong = kernel.reshape(*ks, cin, cout).permute(5, 4, 0, 1, 2, 3)
        assert not torch.allclose(wrong, layer.weight.detach())


def test_me_kernel_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"expected a kernel of shape \(81, Cin, Cout\)"):
        me_kernel_to_weight(torch.zeros(27, 1, 1), 3)
    with pytest.raises(ValueError, match="even kernel sizes"):
        me_kernel_to_weight(torch.zeros(16, 1, 1), 2)


@pytest.fixture(scope="module")
def published():
    fe = published_feature_extraction(seed=0)
    consensus = me_consensus_params(seed=0)
    return fe, consensus


def test_published_checkpoint_file_loads(tmp_path, published):
    fe, consensus = published
    sd = published_state_dict(fe, consensus)
    path = tmp_path / "2020-03-01_12:00_sparsencnet.pth.tar"
    torch.save(published_checkpoint(sd, train_args()), path)
    with warnings.catch_warnings(record=True) as rec:  # nothing random: no UNTRAINED (or any) warning
        warnings.simplefilter("always")
        model = build_model("sparse-ncnet", checkpoint=str(path))
    assert [str(w.message) for w in rec] == []
    assert isinstance(model, SparseNCNet) and model.untrained_parts() == [] and untrained_line(model) is None
    assert model.backbone_name == "resnet101 (checkpoint)" and model.k == 10
    assert [l.kernel_size for l in model.consensus.layers] == [(3, 3, 3, 3)] * 2
    assert [l.out_channels for l in model.consensus.layers] == [16, 1] and model.consensus.symmetric
    # weights in place: backbone tensor by tensor, consensus through the ME conversion
    ours = model.state_dict()
    for k, v in fe.state_dict().items():
        name = {"0.": "backbone.stem_conv.0.", "1.": "backbone.stem_conv.1.", "4.": "backbone.stages.layer1.",
                "5.": "backbone.stages.layer2.", "6.": "backbone.stages.layer3."}[k[:2]] + k[2:]
        assert torch.equal(ours[name], v), name
    for i, (kernel, bias, ks) in enumerate(consensus):
        assert torch.equal(ours["consensus.layers.%d.weight" % i], me_kernel_to_weight(kernel, ks))
        assert torch.equal(ours["consensus.layers.%d.bias" % i], bias.reshape(-1))


def test_checkpoint_args_override_the_layout(tmp_path, published):
    fe, _ = published
    consensus = me_consensus_params(kernel_sizes=(5, 3, 3), channels=(8, 8, 1), seed=3)
    path = tmp_path / "c.pth.tar"
    args = train_args(ncons_kernel_sizes=[5, 3, 3], ncons_channels=[8, 8, 1], k=4, symmetric_mode=0)
    torch.save(published_checkpoint(published_state_dict(fe, consensus, with_num_batches_tracked=False), args), path)
    model = SparseNCNet(checkpoint=str(path))
    assert [l.kernel_size[0] for l in model.consensus.layers] == [5, 3, 3] and model.k == 4
    assert not model.consensus.symmetric


def test_bare_and_our_state_dicts_load(tmp_path, published):
    fe, consensus = published
    sd = published_state_dict(fe, consensus)
    torch.save(sd, tmp_path / "bare.pt")  # the published state dict without train.py's wrapper
    m1 = SparseNCNet(checkpoint=str(tmp_path / "bare.pt"))
    torch.save(m1.state_dict(), tmp_path / "ours.pt")  # our own layout round-trips
    m2 = SparseNCNet(checkpoint=str(tmp_path / "ours.pt"))
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    # consensus tensors only (not what train.py writes): the backbone keeps its (here random) weights and says so
    m3 = SparseNCNet(weights=None, checkpoint={k: v for k, v in sd.items() if k.startswith("NeighConsensus.")})
    assert m3.untrained_parts() == ["backbone"]
    assert torch.equal(m3.consensus.layers[0].bias, m1.consensus.layers[0].bias)


def test_wrong_checkpoints_are_clear_errors(tmp_path, published):
    fe, consensus = published
    sd = published_state_dict(fe, consensus)
    partial = {k: v for k, v in sd.items() if k != "NeighConsensus.conv.3.bias"}
    torch.save(published_checkpoint(partial, train_args()), tmp_path / "partial.pth.tar")
    with pytest.raises(CheckpointError, match=re.escape("missing keys: consensus.layers.1.bias")):
        SparseNCNet(checkpoint=str(tmp_path / "partial.pth.tar"))
    extra = dict(sd, **{"NeighConsensus.conv.5.kernel": torch.zeros(81, 1, 1)})
    torch.save(published_checkpoint(extra, train_args()), tmp_path / "extra.pth.tar")
    with pytest.raises(CheckpointError, match="unexpected keys: consensus.layers.2.weight"):
        SparseNCNet(checkpoint=str(tmp_path / "extra.pth.tar"))
    bn = published_checkpoint(sd, train_args(bn=1))
    torch.save(bn, tmp_path / "bn.pth.tar")
    with pytest.raises(CheckpointError, match="bn=1"):
        SparseNCNet(checkpoint=str(tmp_path / "bn.pth.tar"))
    with pytest.raises(CheckpointError, match="backbone=daisy"):
        SparseNCNet(backbone="daisy", checkpoint=sd)  # a state dict object loads like a file


def test_convert_keeps_unknown_keys_for_the_loader_to_report():
    sd = {"NeighConsensus.conv.1.kernel": torch.zeros(81, 1, 16), "NeighConsensus.conv.1.bias": torch.zeros(1, 16),
          "FeatureExtraction.model.6.0.conv1.weight": torch.zeros(1), "something.else": torch.zeros(1)}
    out = convert_sparse_ncnet_state_dict(sd)
    assert set(out) == {"consensus.layers.0.weight", "consensus.layers.0.bias", "backbone.stages.layer3.0.conv1.weight",
                        "something.else"}
    assert out["consensus.layers.0.weight"].shape == (16, 1, 3, 3, 3, 3)
    cfg, _ = read_sparse_ncnet_checkpoint({"state_dict": sd, "args": train_args()})
    assert cfg == {"kernel_sizes": [3, 3], "channels": [16, 1], "symmetric": True, "k": 10}
