"""`semcorr train sfnet` on the training engine, on masked affine pairs as published: the PASCAL VOC layout loader
(a fixture written here: synthetic JPEGs + palette PNG labels), the released pair pipeline (flip, jitter, two
affine warps, masks of the foreground both images see, on the feature grid), the recipe's config, the loss falls,
checkpoints come back through build_model and resume."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from semcorr import cli
from semcorr.data import masked_affine_pairs as P
from semcorr.data.datasets.voc import VOCMasks, foreground_mask
from semcorr.models import build_model
from semcorr.train import _engine as E
from semcorr.train import _engine_config as C
from semcorr.train import sfnet as T

VOC_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (252 * 3) + [224, 224, 192]  # 0, 1, 2 ... 255 = void


def _voc(root, n=4, size=(48, 64), folder="SegmentationObject"):
    """A VOC-layout folder: JPEGImages/<id>.jpg, <folder>/<id>.png (palette), ImageSets/Segmentation/*.txt.
    Image k has a rectangle of label 1 (plus a void outline) and, for odd k, a second object of label 2."""
    rng = np.random.default_rng(0)
    ids = ["2008_%06d" % k for k in range(n)]
    for d in ("JPEGImages", folder, "ImageSets/Segmentation"):
        (root / d).mkdir(parents=True, exist_ok=True)
    masks = {}
    for k, key in enumerate(ids):
        H, W = size
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(root / "JPEGImages" / (key + ".jpg"))
        lab = np.zeros((H, W), np.uint8)
        lab[8:30, 10:40] = 255          # void outline
        lab[9:29, 11:39] = 1
        if k % 2:
            lab[35:45, 45:60] = 2
        im = Image.fromarray(lab, mode="P")
        im.putpalette(VOC_PALETTE)
        im.save(root / folder / (key + ".png"))
        masks[key] = lab
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(ids[:3]) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text(ids[3] + "\n")
    return ids, masks


def test_voc_layout_reads_images_and_foreground_masks(tmp_path):
    ids, labels = _voc(tmp_path)
    ds = VOCMasks(tmp_path, split="train")
    assert len(ds) == 3 and ds.ids == ids[:3]
    it = ds[1]
    assert it["image"].shape == (48, 64, 3) and it["image"].dtype == np.uint8 and it["id"] == ids[1]
    np.testing.assert_array_equal(it["mask"], (labels[ids[1]] != 0).astype(np.uint8))  # objects + void band
    assert it["mask"][8, 10] == 1 and it["mask"][40, 50] == 1 and it["mask"][0, 0] == 0
    assert len(VOCMasks(tmp_path, split=None)) == 4  # every labelled image
    assert VOCMasks(tmp_path, split="train", exclude=[ids[0]]).ids == ids[1:3]
    (tmp_path / "drop.txt").write_text(ids[2] + "\n")
    assert VOCMasks(tmp_path, split="train", exclude=tmp_path / "drop.txt").ids == ids[:2]
    np.testing.assert_array_equal(foreground_mask(np.array([[0, 1, 255], [20, 0, 0]])), [[0, 1, 1], [1, 0, 0]])


def test_voc_class_masks_and_clear_errors(tmp_path):
    _voc(tmp_path / "cls", folder="SegmentationClass")
    assert len(VOCMasks(tmp_path / "cls", split="val", masks="auto")) == 1
    with pytest.raises(FileNotFoundError, match="no SegmentationObject/"):
        VOCMasks(tmp_path / "cls", masks="object")
    with pytest.raises(FileNotFoundError, match="no JPEGImages/"):
        VOCMasks(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="split 'test'"):
        VOCMasks(tmp_path / "cls", split="test")


def test_warp_samples_the_affine_grid_with_corners_aligned():
    # a ramp 0..W-1 along x; A = [[1, 0, t], [0, 1, 0]] samples input x_norm + t: pixel j shows j + t (W - 1) / 2
    W = 9
    x = torch.arange(W, dtype=torch.float32).repeat(1, 5, 1)
    a = torch.eye(3, dtype=torch.float64)
    a[0, 2] = 0.5
    out = P.warp(x, a)
    torch.testing.assert_close(out[0, 2, :6], torch.arange(6, dtype=torch.float32) + 2.0)
    assert float(out[0, 2, -1]) == 0.0  # outside: zeros
    torch.testing.assert_close(P.warp(x, torch.eye(3, dtype=torch.float64)), x)


def test_released_pair_pipeline_on_the_voc_fixture(tmp_path, monkeypatch):
    ids, labels = _voc(tmp_path, size=(64, 64))
    pairs = T.build_data({"kind": "voc", "root": str(tmp_path), "split": "train", "image_size": 64})
    assert isinstance(pairs, P.MaskedAffinePairs) and pairs.feature_size == 4  # 64 / 16
    torch.manual_seed(0)
    s = pairs[0]
    assert s["src_img"].shape == s["tgt_img"].shape == (3, 64, 64) and s["src_mask"].shape == (1, 4, 4)
    assert set(s["src_mask"].unique().tolist()) <= {0.0, 1.0}
    # identity warps and no jitter / flip: both images are the resized image, both masks the resized mask
    monkeypatch.setattr(P, "released_affine", lambda generator=None: torch.eye(3, dtype=torch.float64))
    monkeypatch.setattr(P, "JITTER", (0, 0, 0, 0))
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.tensor(0.9))  # no flip
    s = pairs[0]
    want = torch.from_numpy(np.asarray(Image.open(tmp_path / "JPEGImages" / (ids[0] + ".jpg")))).permute(2, 0, 1)
    torch.testing.assert_close(s["src_img"], want.float() / 255, atol=1e-5, rtol=0)  # grid_sample rounding
    torch.testing.assert_close(s["tgt_img"], s["src_img"])
    fg = torch.from_numpy((labels[ids[0]] != 0).astype(np.float32))
    # PIL's bilinear 64 -> 4 of the 0/255 mask, > 0.1: cells with more than ~10 % foreground (one cell's worth)
    cell = fg.reshape(4, 16, 4, 16).mean((1, 3))
    assert torch.equal(s["src_mask"][0] > 0, s["tgt_mask"][0] > 0)
    assert bool((s["src_mask"][0][cell > 0.5] == 1).all()) and bool((s["src_mask"][0][cell == 0] == 0).all())


def test_masks_keep_only_the_foreground_both_images_see(monkeypatch):
    # A_1 = identity, A_2 = a shift by half the image: the source mask loses what the target cut off
    src = [{"image": np.full((64, 64, 3), 128, np.uint8), "mask": np.ones((64, 64), np.uint8)}]
    shift = torch.eye(3, dtype=torch.float64)
    shift[0, 2] = 1.0  # target pixel x samples source x + (W - 1) / 2: the right half of the source
    draws = iter([torch.eye(3, dtype=torch.float64), shift])
    monkeypatch.setattr(P, "released_affine", lambda generator=None: next(draws))
    s = P.MaskedAffinePairs(src, image_size=64, feature_size=8)[0]
    assert float(s["tgt_mask"][0, :, :3].mean()) == 1.0 and float(s["tgt_mask"][0, :, 5:].mean()) == 0.0
    # in the source only the right half (what the target shows) is foreground (a flip would mirror it)
    right = float(s["src_mask"][0, :, 5:].mean())
    left = float(s["src_mask"][0, :, :3].mean())
    assert {left, right} == {0.0, 1.0}


def test_default_config_is_the_released_train_py(capsys):
    assert cli.main(["train", "sfnet", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["optimizer"] == {"name": "adam", "lr": 3e-5}
    assert cfg["scheduler"] == {"name": "multistep", "milestones": [30], "gamma": 0.2}
    assert cfg["train"]["epochs"] == 40 and cfg["train"]["batch_size"] == 16
    assert cfg["loss"] == {"mask": 3.0, "flow": 16.0, "smooth": 0.5} and cfg["freeze"] == ["features"]
    assert cfg["model"]["backbone"] == "resnet101" and cfg["model"]["image_size"] == 320
    assert cfg["data"]["train"]["kind"] == "voc" and cfg["data"]["pck"]["thresh"] == "bbox"


def _tiny(tmp_path, *extra):
    return C.apply_overrides(C.load_config("sfnet_synthetic"), [
        "model.image_size=64", "train.batch_size=2", "optimizer.lr=0.001", "data.val=null", "data.pck=null",
        "data.train={kind: synthetic_masks, n: 2, image_size: 64, seed: 0}", "run.out=%s" % tmp_path, *extra])


def test_training_lowers_the_loss_and_the_checkpoint_comes_back(tmp_path):
    cfg = _tiny(tmp_path, "train.epochs=6")
    torch.manual_seed(int(cfg["train"]["seed"]))
    with pytest.warns(UserWarning, match="UNTRAINED"):
        start = build_model("sfnet", **cfg["model"]).state_dict()  # the engine's model: same seed, same build
    h = [r["loss"] for r in E.train(T.RECIPE, cfg, progress=False)["history"]]
    assert h[-1] < 0.9 * h[0], h
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    # only the adaptation layers train: the frozen backbone (BN statistics included) is unchanged
    assert all(torch.equal(v, start[k]) for k, v in ck["state_dict"].items() if k.startswith("features."))
    assert not torch.equal(ck["state_dict"]["adapt3.blocks.0.conv.weight"], start["adapt3.blocks.0.conv.weight"])
    assert ck["method"] == "sfnet" and ck["untrained_parts"] == ["backbone"]  # the frozen random tiny CNN
    model = build_model("sfnet", checkpoint=str(tmp_path / "last.pt"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, ck["state_dict"][k]), k
    assert model.untrained_parts() == ["backbone"]


def test_cli_on_the_voc_fixture_resumes(tmp_path):
    _voc(tmp_path / "voc")
    argv = ["train", "sfnet", "--config", "sfnet_synthetic", "--no-progress", "--out", str(tmp_path / "run")]
    sets = [a for s in ["model.image_size=64", "train.batch_size=2", "data.val=null", "data.pck=null",
                        "data.train={kind: voc, root: %s, split: train, image_size: 64}" % (tmp_path / "voc")]
            for a in ("--set", s)]
    assert cli.main(argv + sets + ["--set", "train.epochs=1"]) == 0
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert first["config"]["data"]["train"]["kind"] == "voc" and first["global_step"] == 1  # 3 images, batch 2
    assert cli.main(argv + sets + ["--set", "train.epochs=2", "--resume", "auto"]) == 0
    second = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert second["epoch"] == 2 and second["history"][0] == first["history"][0]
