"""PMNC's published defaults (paper readout, ResNet-101 layer 4, 800 px) and strict checkpoint loading: the file
`semcorr train pmnc` writes loads; unrelated, partial or mismatched checkpoints are clear errors."""
import pytest
import torch

from semcorr import cli
from semcorr.checkpoints import CheckpointError
from semcorr.models import build_model, untrained_line
from semcorr.models.pmnc import PMNC


def test_defaults_are_the_papers():
    model = PMNC(weights=None)
    assert model.readout == "search"
    assert model.backbone_kind == "resnet101" and model.image_size == 800
    assert tuple(model.backbone.layers) == ("layer4",)
    assert model.untrained_parts() == ["backbone", "scorer"]
    assert "UNTRAINED" in untrained_line(model)
    # the 25x25 grid of the paper's headline row: 800 px / stride 32 (checked on a shape probe, not a full run)
    assert model._resized_size(torch.zeros(1, 3, 480, 640)) == (600, 800)


def test_resnet_wiring_on_a_small_image():
    model = PMNC(backbone="resnet50", weights=None, image_size=64, iterations=1)
    out = model.match(torch.rand(1, 3, 48, 64), torch.rand(1, 3, 64, 48))
    assert out.field.shape == (1, 2, 2, 2) and out.extras["tgt_grid"] == (2, 2)  # layer 4: stride 32


def _train(tmp_path, backbone="daisy"):
    """`semcorr train pmnc` (the training engine) on two tiny synthetic pairs with a frozen hand-crafted backbone."""
    assert cli.main(["train", "pmnc", "--config", "pmnc_synthetic", "--no-progress", "--out", str(tmp_path),
                     "--set", "model.backbone=%s" % backbone, "--set", "model.weights=null",
                     "--set", "model.image_size=null", "--set", "train.epochs=1",
                     "--set", "train.batch_size=1", "--set", "optimizer.lr=0.05", "--set", "data.val=null",
                     "--set", "data.pck=null", "--set", "data.train={dataset: synthetic, image_size: 48, repeats: 1, "
                     "images: [astronaut, chelsea], warps: [affine], stereo: false}"]) == 0
    return tmp_path / "last.pt"


def test_checkpoint_of_semcorr_train_pmnc_loads(tmp_path, capsys):
    path = _train(tmp_path)
    capsys.readouterr()
    saved = torch.load(path, weights_only=True)
    assert saved["method"] == "pmnc" and saved["model_config"]["backbone"] == "daisy"
    model = build_model("pmnc", checkpoint=str(path))
    for k, v in model.scorer.state_dict().items():
        assert torch.equal(v, saved["state_dict"]["scorer." + k]), k
    # training moved the weights away from the hand-set init: the load is not a no-op
    fresh = PMNC(backbone="daisy").scorer.state_dict()
    assert not torch.equal(fresh["weights.0"], model.scorer.state_dict()["weights.0"])
    assert model.untrained_parts() == [] and untrained_line(model) is None
    # the scorer alone under DataParallel names and as an in-memory dict
    scorer = {k: v for k, v in saved["state_dict"].items() if k.startswith("scorer.")}
    wrapped = {"state_dict": {"module." + k: v for k, v in scorer.items()}}
    PMNC(backbone="daisy", checkpoint=wrapped)


def test_unrelated_checkpoint_is_a_clear_error(tmp_path):
    ncnet_like = {"epoch": 3, "state_dict": {"NeighConsensus.conv.0.conv.weight": torch.zeros(16, 1, 5, 5, 5),
                                             "FeatureExtraction.model.0.weight": torch.zeros(64, 3, 7, 7)}}
    path = tmp_path / "other.pth.tar"
    torch.save(ncnet_like, path)
    with pytest.raises(CheckpointError,
                       match=r"missing keys: scorer\.logit_scale, scorer\.weights\.0.*unexpected keys: NeighConsensus"):
        PMNC(backbone="daisy", checkpoint=str(path))


def test_partial_or_misshapen_checkpoint_is_a_clear_error():
    sd = {"scorer." + k: v for k, v in PMNC(backbone="daisy").scorer.state_dict().items()}
    partial = dict(sd)
    del partial["scorer.biases.2"]
    with pytest.raises(CheckpointError, match=r"missing keys: scorer\.biases\.2"):
        PMNC(backbone="daisy", checkpoint={"state_dict": partial})
    other = {"scorer." + k: v for k, v in PMNC(backbone="daisy", channels=(8, 8, 1)).scorer.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"shape mismatches: scorer\.weights\.0: checkpoint \(8, 1"):
        PMNC(backbone="daisy", checkpoint={"state_dict": other})
    # some backbone keys but not all: a partial backbone is not silently mixed with the current one
    model = PMNC(backbone="resnet50", weights=None)
    full = model.state_dict()
    some = dict(sd)
    some.update({k: full[k] for k in [k for k in full if k.startswith("backbone.")][:3]})
    with pytest.raises(CheckpointError, match="missing keys: backbone"):
        model.load_checkpoint({"state_dict": some})
    model.load_checkpoint({"state_dict": full})  # every key: backbone and scorer loaded
    assert model.untrained_parts() == []


def test_scorer_trained_on_other_features_is_refused(tmp_path):
    path = tmp_path / "scorer.pt"
    # the scorer-only layout earlier releases of `semcorr train pmnc` wrote, recording the backbone's name
    scorer = {"scorer." + k: v for k, v in PMNC(backbone="daisy").scorer.state_dict().items()}
    torch.save({"state_dict": scorer, "backbone": "daisy"}, path)
    with pytest.raises(CheckpointError, match="trained on daisy features.*backbone='resnet50'"):
        PMNC(backbone="resnet50", weights=None, checkpoint=str(path))
