"""`semcorr train pmnc` on the training engine: the keypoint ground truth (hand-computed), features and scorer
trained jointly (both move, gradients reach the backbone), the loss falls, the checkpoint comes back exactly
through build_model, the recipe's config, resume."""
import numpy as np
import pytest
import torch

from semcorr import cli
from semcorr.models import build_model
from semcorr.train import _engine as E
from semcorr.train import _engine_config as C
from semcorr.train import pmnc as T

TINY = ["model.backbone=resnet50", "model.weights=null", "model.layers=[layer3]", "model.image_size=null",
        "train.batch_size=2", "train.backbone_lr=0.001", "data.val=null",
        "data.train={dataset: synthetic, image_size: 64, repeats: 1, images: [astronaut, chelsea], "
        "warps: [affine], stereo: false}",
        "data.pck={dataset: synthetic, image_size: 64, images: [astronaut], warps: [affine], stereo: false}"]


def test_keypoint_probability_map_by_hand():
    # images 80 x 40 (H x W) on a 4 x 2 source grid and a 2 x 4 target grid (cells 20 x 20 and 40 x 10 px)
    src = np.array([[25.0, 5.0], [35.0, 15.0], [5.0, 70.0], [-1, -1]])  # last row: padding
    tgt = np.array([[14.5, 19.5], [4.5, 39.5], [100.0, 79.0], [3.0, 3.0]])
    prob, mask = T.keypoint_probability_map(src, tgt, (80, 40), (80, 40), (4, 2), (2, 4))
    assert prob.shape == (4, 2, 2, 4) and mask.dtype == torch.bool
    # keypoints 0 and 1 both lie in source cell (0, 1) (centre x 29.5, y 9.5); keypoint 2 in cell (3, 0)
    assert mask.tolist() == [[False, True], [False, False], [False, False], [True, False]]
    # kp 0: target x 14.5 -> grid (14.5 + .5) * 4 / 40 - .5 = 1.0, y 19.5 -> (20) * 2 / 80 - .5 = 0.0: cell (0, 1)
    # kp 1: x 4.5 -> 0.0, y 39.5 -> 0.5: half (0, 0), half (1, 0); the cell's map is the mean of the two
    want = torch.zeros(2, 4)
    want[0, 1] += 0.5
    want[0, 0] += 0.25
    want[1, 0] += 0.25
    torch.testing.assert_close(prob[0, 1], want)
    # kp 2: target outside the cell-centre rectangle is clamped onto it: x -> 3, y 79 -> 1.475 -> 1: cell (1, 3)
    want2 = torch.zeros(2, 4)
    want2[1, 3] = 1.0
    torch.testing.assert_close(prob[3, 0], want2)
    assert float(prob[~mask].abs().sum()) == 0.0


def test_keypoint_loss_is_the_mean_over_pairs_of_the_cross_entropy():
    torch.manual_seed(0)
    model = build_model("pmnc", backbone="hog", image_size=None, init="random")
    imgs = torch.rand(2, 3, 48, 48)
    kps = torch.tensor([[[10.0, 12.0], [30.0, 40.0]], [[20.0, 20.0], [-1.0, -1.0]]])
    batch = {"index": torch.arange(2), "src_img": imgs, "tgt_img": imgs.flip(0), "src_kps": kps, "tgt_kps": kps + 3}
    got = T.keypoint_ce_loss(model, batch, {})["loss"]
    # float64 reference: softmax over target cells of exp(logit_scale) * dense scores, CE with the map, per pair
    ref = []
    for b in range(2):
        corr = model.correlation(model.features(imgs[b:b + 1]), model.features(imgs.flip(0)[b:b + 1]))
        s = model.scorer.dense(corr).double()[0]
        Hs, Ws, Ht, Wt = s.shape
        prob, mask = T.keypoint_probability_map(kps[b].numpy(), (kps[b] + 3).numpy(), (48, 48), (48, 48),
                                                (Hs, Ws), (Ht, Wt))
        logp = torch.log_softmax(model.scorer.logit_scale.double().exp() * s.reshape(Hs, Ws, -1), -1)
        ce = -(prob.double().reshape(Hs, Ws, -1) * logp).sum(-1)
        ref.append(ce[mask].mean())
    torch.testing.assert_close(got.double(), torch.stack(ref).mean(), rtol=1e-5, atol=1e-6)


def test_features_and_scorer_train_jointly_and_the_checkpoint_comes_back(tmp_path):
    cfg = C.apply_overrides(C.load_config("pmnc_synthetic"), TINY + ["train.epochs=2", "run.out=%s" % tmp_path])
    torch.manual_seed(int(cfg["train"]["seed"]))
    start = build_model("pmnc", **cfg["model"])  # the engine seeds with train.seed before building: same init
    res = E.train(T.RECIPE, cfg, progress=False)
    h = res["history"]
    assert len(h) == 2 and h[-1]["loss"] < h[0]["loss"] - 0.3, h  # measured 3.10 -> 2.16 after one step
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ck["method"] == "pmnc" and ck["untrained_parts"] == []  # random backbone, but trained here
    sd0 = start.state_dict()
    moved = {k for k, v in ck["state_dict"].items() if not torch.equal(v, sd0[k])}
    assert any(k.startswith("backbone.") and k.endswith("conv1.weight") for k in moved)  # features trained
    assert "scorer.weights.0" in moved and "scorer.logit_scale" in moved
    assert not any("running_mean" in k for k in moved)  # batch-norm statistics kept (train.batchnorm: eval)
    model = build_model("pmnc", checkpoint=str(tmp_path / "last.pt"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, ck["state_dict"][k]), k
    assert model.untrained_parts() == []


def test_frozen_backbone_trains_the_scorer_only(tmp_path):
    cfg = C.apply_overrides(C.load_config("pmnc_synthetic"), TINY + ["train.epochs=1", "freeze=[backbone]",
                                                                      "run.out=%s" % tmp_path])
    E.train(T.RECIPE, cfg, progress=False)
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ck["untrained_parts"] == ["backbone"]  # still random, and said so
    assert len(ck["optimizer"]["param_groups"]) == 1


def test_cli_default_config_and_resume(tmp_path, capsys):
    assert cli.main(["train", "pmnc", "--print-config"]) == 0
    cfg = __import__("json").loads(capsys.readouterr().out)
    assert cfg["method"] == "pmnc" and cfg["data"]["train"]["dataset"] == "pfpascal"
    assert cfg["data"]["train"]["split"] == "trn" and cfg["freeze"] == []
    assert cfg["model"]["backbone"] == "resnet101" and "layers" not in cfg["model"]  # the model default: layer 4
    argv = ["train", "pmnc", "--config", "pmnc_synthetic", "--no-progress", "--out", str(tmp_path)]
    sets = [a for s in TINY for a in ("--set", s)]
    assert cli.main(argv + sets + ["--set", "train.epochs=1"]) == 0
    first = torch.load(tmp_path / "last.pt", weights_only=True)
    assert first["epoch"] == 1
    assert cli.main(argv + sets + ["--set", "train.epochs=2", "--resume", "auto"]) == 0
    second = torch.load(tmp_path / "last.pt", weights_only=True)
    assert second["epoch"] == 2 and second["history"][0] == first["history"][0]


@pytest.mark.parametrize("bad", ["data.train={dataset: pfpascal, root: /nonexistent/pf, split: trn}"])
def test_missing_dataset_is_a_clear_error(tmp_path, bad):
    cfg = C.apply_overrides(C.load_config("pmnc_synthetic"), TINY + [bad, "run.out=%s" % tmp_path])
    with pytest.raises((FileNotFoundError, ValueError), match="pf"):
        E.train(T.RECIPE, cfg, progress=False)
