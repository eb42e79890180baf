"""NC-Net against its released code (ignacio-rocco/ncnet): the checkpoint file ``train.py`` writes, and the
filtered volume / readout of ``ImMatchNet.forward`` + ``corr_to_matches`` as a float64 reference written here
from reading ``lib/model.py``, ``lib/conv4d.py`` and ``lib/point_tnf.py``.

The published network is ResNet-101 up to layer3; the tests use ResNet-50 (same ``FeatureExtraction.model``
wiring: conv1, bn1, relu, maxpool, layer1, layer2, layer3 as an ``nn.Sequential``) and a small consensus so
that they run in seconds on a CPU.
"""
import argparse
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from semcorr.checkpoints import CheckpointError
from semcorr.models import build_model, untrained_line
from semcorr.models.ncnet import NCNet
from test_checkpoints import _as_numpy1
from conftest import resnet50_with_random_bn

KERNELS, CHANNELS = [3, 5], [4, 1]
_RESNET_NAMES = {0: "conv1", 1: "bn1", 4: "layer1", 5: "layer2", 6: "layer3"}


def _published_backbone(seed=0):
    """NC-Net's FeatureExtraction.model for a torchvision ResNet-50, with random weights and random BN
    statistics (so that a wrong BN mapping shows)."""
    net = resnet50_with_random_bn(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.num_batches_tracked.fill_(123)
    names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"]
    return nn.Sequential(*[getattr(net, n) for n in names]).eval()


def published_state_dict(seed=0, kernels=KERNELS, channels=CHANNELS, batches_tracked=True):
    """``ImMatchNet.state_dict()``: FeatureExtraction.model.<i>.* then NeighConsensus.conv.<2i>.{weight, bias},
    the Conv4d weight pre-permuted to [k1, Cout, Cin, k2, k3, k4] as the published constructor leaves it."""
    sd = OrderedDict()
    for k, v in _published_backbone(seed).state_dict().items():
        if batches_tracked or not k.endswith("num_batches_tracked"):
            sd["FeatureExtraction.model." + k] = v
    g = torch.Generator().manual_seed(seed + 1)
    cin = 1
    for i, (k, cout) in enumerate(zip(kernels, channels)):
        bound = 1.0 / (cin * k ** 4) ** 0.5
        sd["NeighConsensus.conv.%d.weight" % (2 * i)] = (torch.rand(k, cout, cin, k, k, k, generator=g) * 2 - 1) * bound
        sd["NeighConsensus.conv.%d.bias" % (2 * i)] = (torch.rand(cout, generator=g) * 2 - 1) * bound
        cin = cout
    return sd


def train_py_checkpoint(sd, kernels=KERNELS, channels=CHANNELS, epoch=5):
    """The dict NC-Net's train.py passes to save_checkpoint: argparse args, numpy losses, Adam's state."""
    args = argparse.Namespace(checkpoint="", image_size=400, dataset_image_path="datasets/pf-pascal/",
                              dataset_csv_path="datasets/pf-pascal/image_pairs/", num_epochs=epoch, batch_size=16,
                              lr=0.0005, ncons_kernel_sizes=list(kernels), ncons_channels=list(channels),
                              result_model_fn="checkpoint_adam", result_model_dir="trained_models",
                              fe_finetune_params=0)
    params = [nn.Parameter(v.clone()) for k, v in sd.items() if k.startswith("NeighConsensus.")]
    opt = torch.optim.Adam(params, lr=args.lr)
    sum(p.sum() for p in params).backward()
    opt.step()
    train_loss = np.linspace(-0.1, -0.5, epoch)
    test_loss = np.linspace(-0.05, -0.4, epoch)
    best_test_loss = float("inf")
    for e in range(epoch):  # train.py: best_test_loss = min(test_loss[epoch - 1], best_test_loss) -> numpy scalar
        best_test_loss = min(test_loss[e], best_test_loss)
    assert isinstance(best_test_loss, np.floating)
    return {"epoch": epoch, "args": args, "state_dict": sd, "best_test_loss": best_test_loss,
            "optimizer": opt.state_dict(), "train_loss": train_loss, "test_loss": test_loss}


@pytest.fixture(scope="module")
def ckpt_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ncnet") / "2018-06-01_12:00_checkpoint_adam.pth.tar"
    torch.save(train_py_checkpoint(published_state_dict()), path)
    return path


def _images(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, 80, 96, generator=g), torch.rand(1, 3, 64, 80, generator=g)


# ---- float64 reference of the published forward ---------------------------------------------------------------

def ref_feature_l2norm(f):
    return f / torch.pow(torch.sum(torch.pow(f, 2), 1) + 1e-6, 0.5).unsqueeze(1)


def ref_correlation_4d(fa, fb):
    b, c, ha, wa = fa.shape
    hb, wb = fb.shape[2:]
    return torch.bmm(fa.view(b, c, ha * wa).transpose(1, 2), fb.view(b, c, hb * wb)).view(b, ha, wa, hb, wb).unsqueeze(1)


def ref_mutual_matching(c):
    b, _, s1, s2, s3, s4 = c.shape
    cb = c.view(b, s1 * s2, s3, s4)
    ca = c.view(b, s1, s2, s3 * s4)
    cb = cb / (cb.max(dim=1, keepdim=True)[0] + 1e-5)
    ca = ca / (ca.max(dim=3, keepdim=True)[0] + 1e-5)
    return c * (ca.view(c.shape) * cb.view(c.shape))


def ref_conv4d(x, filters, bias):
    """lib/conv4d.py: filters pre-permuted [k1, Cout, Cin, k2, k3, k4]; the first dim zero-padded by
    k1 // 2 and looped over, each tap a conv3d with padding k1 // 2 on the other three dims."""
    b, c, h = x.shape[:3]
    data = x.permute(2, 0, 1, 3, 4, 5)
    pad = filters.shape[0] // 2
    z = data.new_zeros((pad,) + tuple(data.shape[1:]))
    data = torch.cat((z, data, z), 0)
    out = []
    for i in range(h):
        acc = F.conv3d(data[i + pad], filters[pad], bias=bias, padding=pad)
        for p in range(1, pad + 1):
            acc = acc + F.conv3d(data[i + pad - p], filters[pad - p], padding=pad)
            acc = acc + F.conv3d(data[i + pad + p], filters[pad + p], padding=pad)
        out.append(acc)
    return torch.stack(out, 0).permute(1, 2, 0, 3, 4, 5)


def ref_neigh_consensus(x, sd):
    layers = [(sd["NeighConsensus.conv.%d.weight" % (2 * i)].double(), sd["NeighConsensus.conv.%d.bias" % (2 * i)].double())
              for i in range(len(KERNELS))]

    def conv(v):
        for w, bias in layers:
            v = F.relu(ref_conv4d(v, w, bias))
        return v

    return conv(x) + conv(x.permute(0, 1, 4, 5, 2, 3)).permute(0, 1, 4, 5, 2, 3)  # symmetric_mode=True


def ref_maxpool4d(corr, k):
    """lib/model.py maxpool4d: the k^4 strided sub-volumes stacked in (i, j, k, l) order, max over them, and the
    offsets of the maximum recovered from its index."""
    slices = [corr[:, 0, i::k, j::k, kk::k, ll::k].unsqueeze(0)
              for i in range(k) for j in range(k) for kk in range(k) for ll in range(k)]
    val, idx = torch.max(torch.cat(slices, dim=1), dim=1, keepdim=True)
    ml = torch.fmod(idx, k)
    mk = torch.fmod((idx - ml) // k, k)
    mj = torch.fmod(((idx - ml) // k - mk) // k, k)
    mi = (((idx - ml) // k - mk) // k - mj) // k
    return val, (mi, mj, mk, ml)


def ref_immatchnet(sd, src, tgt, relocalization_k=0):
    """ImMatchNet.forward in float64 from the published-layout state dict; images in [0, 1] go through the
    published NormalizeImageDict (ImageNet mean / std)."""
    net = torchvision.models.resnet50(weights=None)
    for k, v in sd.items():
        if k.startswith("FeatureExtraction.model."):
            idx, rest = k[len("FeatureExtraction.model."):].split(".", 1)
            name = _RESNET_NAMES[int(idx)] + "." + rest
            net.state_dict()[name].copy_(v)
    fe = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3).double().eval()
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        fa = ref_feature_l2norm(fe((src.double() - mean) / std))
        fb = ref_feature_l2norm(fe((tgt.double() - mean) / std))
        corr = ref_correlation_4d(fa, fb)
        delta = None
        if relocalization_k > 1:
            corr, delta = ref_maxpool4d(corr, relocalization_k)
        corr = ref_mutual_matching(corr)
        corr = ref_neigh_consensus(corr, sd)
        corr = ref_mutual_matching(corr)
        return corr if delta is None else (corr, delta)


# ---- tests ------------------------------------------------------------------------------------------------------

def test_train_py_file_loads_and_rebuilds_from_args(ckpt_file):
    model = build_model("ncnet", backbone="resnet50", checkpoint=str(ckpt_file))
    assert model.consensus.kernel_sizes == KERNELS and model.consensus.channels == CHANNELS
    assert model.untrained_parts() == [] and untrained_line(model) is None
    sd = published_state_dict()
    own = model.state_dict()
    torch.testing.assert_close(own["backbone.stages.layer3.5.bn3.running_var"],
                               sd["FeatureExtraction.model.6.5.bn3.running_var"], rtol=0, atol=0)
    torch.testing.assert_close(own["backbone.stem_conv.0.weight"], sd["FeatureExtraction.model.0.weight"], rtol=0, atol=0)
    # [k1, Cout, Cin, k2, k3, k4] -> (Cout, Cin, k1, k2, k3, k4)
    torch.testing.assert_close(own["consensus.conv.2.weight"],
                               sd["NeighConsensus.conv.2.weight"].permute(1, 2, 0, 3, 4, 5), rtol=0, atol=0)


def test_numpy1_written_file_loads(ckpt_file, tmp_path):
    path = _as_numpy1(ckpt_file, tmp_path / "numpy1.pth.tar")
    model = NCNet(backbone="resnet50", checkpoint=str(path))
    assert model.consensus.channels == CHANNELS and model.untrained_parts() == []


def test_legacy_serialization_with_numpy1_names_loads(tmp_path):
    """The released ncnet_pfpascal.pth.tar predates the zip format (PyTorch 0.3, numpy 1.x): a legacy pickle
    stream (protocol 2, so module names are plain text lines and can be rewritten in place)."""
    path = tmp_path / "legacy.pth.tar"
    torch.save(train_py_checkpoint(published_state_dict(batches_tracked=False)), path,
               _use_new_zipfile_serialization=False)
    blob = path.read_bytes()
    assert not blob.startswith(b"PK") and b"numpy._core.multiarray" in blob
    path.write_bytes(blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    model = NCNet(backbone="resnet50", checkpoint=str(path))
    assert model.consensus.kernel_sizes == KERNELS and model.untrained_parts() == []


def test_end_to_end_equals_published_forward(ckpt_file):
    """The filtered volume and the softmax readout of the model loaded from the train.py file equal the float64
    reference of ImMatchNet.forward + corr_to_matches(do_softmax=True) to 1e-5."""
    model = NCNet(backbone="resnet50", checkpoint=str(ckpt_file))
    src, tgt = _images()
    with torch.no_grad():
        ours, delta, _ = model.correlation(src, tgt)
        m = model.match(src, tgt)
    ref = ref_immatchnet(published_state_dict(), src, tgt)
    assert delta is None and ours.shape == ref.shape == (1, 1, 5, 6, 4, 5)
    assert float(ref.abs().max()) > 1e-3  # not a vanishing volume: the comparison means something
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-5)
    # corr_to_matches(invert_matching_direction=True, do_softmax=True): per source cell, softmax over the target
    prob = torch.softmax(ref.view(1, 5, 6, 20), dim=3)
    score, idx = prob.max(dim=3)
    torch.testing.assert_close(m.confidence.double(), score, rtol=1e-5, atol=1e-5)
    assert torch.equal(m.extras["index"], idx)


def test_relocalization_equals_published(ckpt_file):
    """relocalization_k_size=2 (the InLoc setting): maxpool4d before the filtering, and corr_to_matches(delta4d,
    k_size=2, invert_matching_direction=True) refines the target cell of each match to iB * k + delta_iB."""
    model = NCNet(backbone="resnet50", checkpoint=str(ckpt_file), relocalization_k=2)
    g = torch.Generator().manual_seed(5)
    src, tgt = torch.rand(1, 3, 64, 96, generator=g), torch.rand(1, 3, 64, 64, generator=g)
    with torch.no_grad():
        ours, _, full = model.correlation(src, tgt)
        m = model.match(src, tgt)
    # di, dj refine the source cell too (iA * k + di); Matches keeps a regular source grid, so that part is
    # a documented deviation and only the target refinement is compared
    ref, (_di, _dj, dk, dl) = ref_immatchnet(published_state_dict(), src, tgt, relocalization_k=2)
    assert ours.shape == ref.shape == (1, 1, 2, 3, 2, 2) and full == (4, 4)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-5)
    prob = torch.softmax(ref.view(1, 2, 3, 4), dim=3)
    idx = prob.max(dim=3)[1][0]  # (2, 3) pooled target cell of each pooled source cell
    iA, jA = torch.meshgrid(torch.arange(2), torch.arange(3), indexing="ij")
    iB, jB = idx // 2, idx % 2
    iB_ref = iB * 2 + dk[0, 0][iA, jA, iB, jB]
    jB_ref = jB * 2 + dl[0, 0][iA, jA, iB, jB]
    from semcorr_ext import flow
    centres = flow.grid_coords(4, 4, (64, 64)).reshape(4, 4, 2)
    torch.testing.assert_close(m.field[0], centres[iB_ref, jB_ref], rtol=0, atol=0)


def test_old_pytorch_and_vgg_named_checkpoints_load(tmp_path):
    sd = published_state_dict(batches_tracked=False)  # PyTorch < 0.4.1 wrote no num_batches_tracked
    old = OrderedDict((k.replace("FeatureExtraction.model.", "FeatureExtraction.vgg."), v) for k, v in sd.items())
    path = tmp_path / "old.pth.tar"
    torch.save(train_py_checkpoint(old), path)
    model = NCNet(backbone="resnet50", checkpoint=str(path))
    torch.testing.assert_close(model.state_dict()["backbone.stages.layer2.0.conv1.weight"],
                               sd["FeatureExtraction.model.5.0.conv1.weight"], rtol=0, atol=0)
    assert model.untrained_parts() == []


def test_wrong_or_partial_checkpoints_name_the_keys(tmp_path):
    sd = published_state_dict()
    partial = OrderedDict((k, v) for k, v in sd.items() if not k.startswith("FeatureExtraction.model.6.5."))
    partial["FeatureExtraction.model.7.0.conv1.weight"] = torch.zeros(1)  # layer4: not NC-Net's backbone
    path = tmp_path / "partial.pth.tar"
    torch.save(train_py_checkpoint(partial), path)
    with pytest.raises(CheckpointError) as e:
        NCNet(backbone="resnet50", checkpoint=str(path))
    msg = str(e.value)
    assert "missing keys: backbone.stages.layer3.5.conv1.weight" in msg
    assert "unexpected keys: FeatureExtraction.model.7.0.conv1.weight" in msg
    # args that disagree with the stored weights: ImMatchNet would fail copying; we name the shapes
    path2 = tmp_path / "args.pth.tar"
    torch.save(train_py_checkpoint(sd, kernels=[3, 3]), path2)
    with pytest.raises(CheckpointError, match=r"consensus.conv.2.weight: checkpoint \(1, 4, 5, 5, 5, 5\), "
                                              r"model \(1, 4, 3, 3, 3, 3\)"):
        NCNet(backbone="resnet50", checkpoint=str(path2))
    # a consensus-only state dict is refused unless asked for; the daisy backbone has no backbone keys
    cons = OrderedDict((k, v) for k, v in sd.items() if k.startswith("NeighConsensus."))
    with pytest.raises(CheckpointError, match="missing keys: backbone.stem_conv.0.weight"):
        NCNet(backbone="resnet50", weights=None, checkpoint={"state_dict": cons})
    model = NCNet(backbone="resnet50", weights=None, checkpoint={"state_dict": cons}, checkpoint_backbone=False)
    assert model.untrained_parts() == ["backbone"]
    model = NCNet(backbone="daisy", checkpoint={"state_dict": cons}, checkpoint_backbone=False)
    assert model.untrained_parts() == []
    with pytest.raises(CheckpointError, match="unexpected keys: backbone.stem_conv.0.weight"):
        NCNet(backbone="daisy", checkpoint=str(tmp_path / "args.pth.tar"), checkpoint_backbone=False)


def test_untrained_parts_and_warning():
    with pytest.warns(UserWarning, match="UNTRAINED: ncnet has random weights in backbone, consensus"):
        model = build_model("ncnet", backbone="resnet50", weights=None, kernel_sizes=[3], channels=[1])
    assert model.untrained_parts() == ["backbone", "consensus"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model("ncnet", backbone="daisy", kernel_sizes=[3], channels=[1])
    assert model.untrained_parts() == ["consensus"]
