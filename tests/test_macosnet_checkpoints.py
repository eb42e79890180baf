"""MaCoSNet loads the checkpoints of the released code in the exact layouts their scripts write:

* MaCoSNet-pytorch ``util/util.py save_model``: ``torch.save(model.state_dict())`` of ``WeakMatchNet`` (PyTorch 1.1,
  BatchNorm ``num_batches_tracked`` included);
* WeakAlign ``train_weak.py`` / CNNGeometric ``train_strong.py`` ``save_checkpoint``: ``{epoch, args (argparse
  Namespace), state_dict, best_test_loss (numpy scalar), optimizer, train_loss, test_loss (numpy arrays)}`` of a
  two-stage model (the released train.sh's ``--model weakalign.pth.tar``), written before PyTorch 0.4.1 (no
  ``num_batches_tracked``), and the single-stage affine / TPS pair (WeakAlign's ``--model-aff`` / ``--model-tps``);

and refuses wrong or partial ones with errors naming the keys."""
import argparse
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision

from semcorr.checkpoints import CheckpointError
from semcorr.models import build_model
from semcorr.models.macosnet import MaCoSNet, tps_identity_parameters

from test_macosnet_published import released_regressor_state


@pytest.fixture(scope="module")
def feature_extraction():
    """FeatureExtraction.model of the released ResNet-101: nn.Sequential(conv1, bn1, relu, maxpool, layer1..3)."""
    torch.manual_seed(0)
    net = torchvision.models.resnet101(weights=None)
    seq = torch.nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
    with torch.no_grad():
        for m in seq.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # trained-looking statistics
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return OrderedDict(("FeatureExtraction.model." + k, v) for k, v in seq.state_dict().items())


def regressors(seed=0, tps_prefix="FeatureRegression2."):
    g = torch.Generator().manual_seed(seed)
    sd = released_regressor_state("FeatureRegression.", 6, torch.tensor([1.0, 0, 0, 0, 1.0, 0]), g)
    sd.update(released_regressor_state(tps_prefix, 18, tps_identity_parameters(3), g))
    return sd


def assert_loaded(model, sd):
    own = model.state_dict()
    names = {"FeatureRegression.": "affine_regressor.", "FeatureRegression2.": "tps_regressor.",
             "FeatureExtraction.model.0.": "backbone.stem_conv.0.",
             "FeatureExtraction.model.1.": "backbone.stem_conv.1.",
             "FeatureExtraction.model.4.": "backbone.stages.layer1.",
             "FeatureExtraction.model.5.": "backbone.stages.layer2.",
             "FeatureExtraction.model.6.": "backbone.stages.layer3."}
    n = 0
    for k, v in sd.items():
        p = next(p for p in names if k.startswith(p))
        assert torch.equal(own[names[p] + k[len(p):]], v), k
        n += 1
    assert n == len(sd)


def test_macosnet_released_state_dict_loads(tmp_path, feature_extraction):
    sd = OrderedDict(feature_extraction)
    sd.update(regressors())
    path = tmp_path / "match_1.0_cycle_1.0_trans_0.0_coseg_0.0_task_0.0.pth.tar"
    torch.save(sd, path)
    model = build_model("macosnet", checkpoint=str(path))
    assert model.backbone_name == "resnet101" and model.grid == (15, 15)
    assert_loaded(model, sd)
    assert model.untrained_parts() == ["decoder"]  # the released checkpoint has no co-segmentation decoder


def test_weakalign_checkpoint_loads(tmp_path, feature_extraction):
    # written before PyTorch 0.4.1: BatchNorm layers have no num_batches_tracked
    sd = OrderedDict((k, v) for k, v in feature_extraction.items() if not k.endswith("num_batches_tracked"))
    sd.update((k, v) for k, v in regressors(1).items() if not k.endswith("num_batches_tracked"))
    param = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.Adam([param], lr=5e-8)
    param.grad = torch.ones(3)
    opt.step()
    args = argparse.Namespace(feature_extraction_cnn="resnet101", lr=5e-8, num_epochs=5, tps_reg_factor=0.2,
                              result_model_fn="weakalign")
    ckpt = {"epoch": 4, "args": args, "state_dict": sd, "best_test_loss": np.float64(-0.71),
            "optimizer": opt.state_dict(), "train_loss": np.zeros(5), "test_loss": np.array([-0.6, -0.7, -0.71, 0, 0])}
    path = tmp_path / "weakalign_resnet101_affine_tps.pth.tar"
    torch.save(ckpt, path)
    model = MaCoSNet(checkpoint=str(path))
    assert_loaded(model, sd)
    assert int(model.affine_regressor.conv[1].num_batches_tracked) == 0
    assert model.untrained_parts() == ["decoder"]


def test_cnngeometric_affine_and_tps_pair_loads(tmp_path, feature_extraction):
    aff = OrderedDict(feature_extraction)
    aff.update((k, v) for k, v in regressors(2).items() if k.startswith("FeatureRegression."))
    tps_reg = {k: v for k, v in regressors(3, tps_prefix="TPS.").items() if k.startswith("TPS.")}
    tps = OrderedDict(feature_extraction)
    tps.update(("FeatureRegression." + k[len("TPS."):], v) for k, v in tps_reg.items())
    paths = []
    for name, sd in (("cnngeo_resnet101_affine.pth.tar", aff), ("cnngeo_resnet101_tps.pth.tar", tps)):
        torch.save({"epoch": 1, "args": argparse.Namespace(), "state_dict": sd, "best_test_loss": 0.1}, tmp_path / name)
        paths.append(str(tmp_path / name))
    model = MaCoSNet(checkpoint=tuple(paths))
    assert_loaded(model, aff)
    for k, v in tps_reg.items():
        assert torch.equal(model.tps_regressor.state_dict()[k[len("TPS."):]], v), k


def test_wrong_or_partial_checkpoints_are_clear_errors(tmp_path, feature_extraction):
    ncnet = {"state_dict": {"NeighConsensus.conv.0.weight": torch.zeros(5, 16, 1, 5, 5, 5)}}
    with pytest.raises(CheckpointError, match="not a CNNGeometric / WeakAlign / MaCoSNet state dict.*NeighConsensus"):
        MaCoSNet(checkpoint=ncnet_path(tmp_path, ncnet))
    sd = OrderedDict(feature_extraction)
    sd.update(regressors())
    partial = OrderedDict((k, v) for k, v in sd.items() if k != "FeatureRegression2.linear.bias")
    torch.save(partial, tmp_path / "partial.pth.tar")
    with pytest.raises(CheckpointError, match=r"missing keys: tps_regressor\.linear\.bias"):
        MaCoSNet(checkpoint=str(tmp_path / "partial.pth.tar"))
    narrow = OrderedDict(feature_extraction)
    g = torch.Generator().manual_seed(0)
    narrow.update(released_regressor_state("FeatureRegression.", 6, torch.zeros(6), g, channels=(128, 32)))
    narrow.update(released_regressor_state("FeatureRegression2.", 18, torch.zeros(18), g))
    torch.save(narrow, tmp_path / "narrow.pth.tar")
    with pytest.raises(CheckpointError, match=r"shape mismatches: affine_regressor\.conv\.3\.weight: checkpoint \(32"):
        MaCoSNet(checkpoint=str(tmp_path / "narrow.pth.tar"))
    # a released layout into a model with another backbone: the backbone keys do not fit
    torch.save(sd, tmp_path / "full.pth.tar")
    with pytest.raises(CheckpointError,
                       match=r"missing keys: backbone\.net\.0\.weight.*unexpected keys: backbone\.stem"):
        MaCoSNet(backbone="tiny", checkpoint=str(tmp_path / "full.pth.tar"))


def ncnet_path(tmp_path, obj):
    path = tmp_path / "ncnet.pth.tar"
    torch.save(obj, path)
    return str(path)


def test_own_checkpoint_is_strict(tmp_path):
    model = MaCoSNet(backbone="tiny", image_size=64)
    sd = model.state_dict()
    del sd["decoder.net.0.weight"]
    torch.save({"model": sd, "config": model.config, "step": 1}, tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"missing keys: decoder\.net\.0\.weight"):
        MaCoSNet(checkpoint=str(tmp_path / "last.pt"))
