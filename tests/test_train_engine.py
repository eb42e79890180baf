"""The training engine's parts: configs and overrides, NC-Net's pair lists, the global-batch sampler, the weak losses
against references written from the released code, resuming, and checkpoints that ``build_model`` loads."""
import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semcorr.train import _engine as E
from semcorr.train import _engine_config as C
from semcorr.train import _engine_data as D


# ------------------------------------------------------------------------------------------ configs
def test_config_files_load_and_overrides_apply():
    cfg = C.load_config("ncnet_pfpascal")
    # the published NC-Net recipe (ignacio-rocco/ncnet train.py + README)
    assert cfg["optimizer"] == {"name": "adam", "lr": 0.0005}
    assert cfg["train"]["batch_size"] == 16 and cfg["train"]["epochs"] == 5 and cfg["train"]["seed"] == 1
    assert cfg["model"]["kernel_sizes"] == [5, 5, 5] and cfg["model"]["channels"] == [16, 16, 1]
    assert cfg["freeze"] == ["backbone"] and cfg["data"]["train"]["image_size"] == 400
    sp = C.load_config("sparse_ncnet_ivd")
    assert sp["model"]["k"] == 10 and sp["model"]["channels"] == [16, 1] and sp["train"]["seed"] == 10
    out = C.apply_overrides(cfg, ["train.batch_size=4", "model.channels=[8, 1]", "data.val=null",
                                  "optimizer.lr=1e-3", "data.pck.extra.deep=true"])
    assert out["train"]["batch_size"] == 4 and out["model"]["channels"] == [8, 1] and out["data"]["val"] is None
    assert out["optimizer"]["lr"] == 1e-3 and out["data"]["pck"]["extra"] == {"deep": True}
    assert cfg["train"]["batch_size"] == 16  # the original is untouched
    with pytest.raises(C.ConfigError, match="key.sub=value"):
        C.apply_overrides(cfg, ["train.batch_size"])
    with pytest.raises(C.ConfigError, match="no_such_config"):
        C.load_config("no_such_config")


def test_json_config(tmp_path):
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"method": "ncnet", "train": {"batch_size": 2}}))
    assert C.load_config(str(p))["train"]["batch_size"] == 2


# ------------------------------------------------------------------------------------------ data
def _write_pairs(root, n=3, h=10, w=14):
    imgs = []
    for i in range(n):
        img = np.random.default_rng(i).integers(0, 256, size=(h + i, w, 3), dtype=np.uint8)
        (root / "PF-dataset-PASCAL" / "JPEGImages").mkdir(parents=True, exist_ok=True)
        iio.imwrite(root / "PF-dataset-PASCAL" / "JPEGImages" / ("%d.png" % i), img)
        imgs.append(img)
    (root / "image_pairs").mkdir(exist_ok=True)
    with open(root / "image_pairs" / "train_pairs.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["source_image", "target_image", "class", "flip"])
        wr.writerow(["PF-dataset-PASCAL/JPEGImages/0.png", "PF-dataset-PASCAL/JPEGImages/1.png", 3, 0])
        wr.writerow(["PF-dataset-PASCAL/JPEGImages/2.png", "PF-dataset-PASCAL/JPEGImages/0.png", 5, 1])
    return imgs


def _affine_tnf_reference(img_u8, size):
    """NC-Net's AffineTnf with the identity: affine_grid + grid_sample, PyTorch 0.3 semantics (corners aligned),
    on the 0-255 image that train.py divides by 255 in its normalisation."""
    t = torch.from_numpy(img_u8.astype(np.float64)).permute(2, 0, 1)[None] / 255.0
    theta = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]], dtype=torch.float64)
    grid = F.affine_grid(theta, [1, 3, size, size], align_corners=True)
    return F.grid_sample(t, grid, mode="bilinear", align_corners=True)[0]


def test_pairs_csv_reads_ncnet_layout_flips_and_resizes_like_affine_tnf(tmp_path):
    imgs = _write_pairs(tmp_path)
    ds = D.build_pair_dataset({"kind": "pairs_csv", "root": str(tmp_path), "csv": "image_pairs/train_pairs.csv",
                               "image_size": 8})
    assert len(ds) == 2
    s0, s1 = ds[0], ds[1]
    assert s0["src_img"].shape == (3, 8, 8) and s0["tgt_img"].dtype == torch.float32
    torch.testing.assert_close(s0["src_img"].double(), _affine_tnf_reference(imgs[0], 8), atol=1e-6, rtol=0)
    torch.testing.assert_close(s0["tgt_img"].double(), _affine_tnf_reference(imgs[1], 8), atol=1e-6, rtol=0)
    # flip = 1: both images mirrored before resizing
    torch.testing.assert_close(s1["src_img"].double(), _affine_tnf_reference(imgs[2][:, ::-1].copy(), 8),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(s1["tgt_img"].double(), _affine_tnf_reference(imgs[0][:, ::-1].copy(), 8),
                               atol=1e-6, rtol=0)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        D.build_pair_dataset({"kind": "pairs_csv", "root": str(tmp_path), "csv": "nope.csv"})
    with pytest.raises(ValueError, match="unknown data kind"):
        D.build_pair_dataset({"kind": "imagenet"})


@pytest.mark.parametrize("world", [2, 4])
def test_global_batches_are_split_not_changed_by_the_world_size(world):
    data = list(range(11))
    one = D.GlobalBatchSampler(data, 4, 1, 0, seed=3)
    one.set_epoch(2)
    ref = list(one)
    assert len(ref) == 2 and all(len(b) == 4 for b in ref)  # 11 // 4 global batches, the rest dropped
    shards = []
    for r in range(world):
        s = D.GlobalBatchSampler(data, 4, world, r, seed=3)
        s.set_epoch(2)
        shards.append(list(s))
    for step, batch in enumerate(ref):
        # the ranks' shares, in rank order, are the 1-process batch; partners are the next pair of that batch
        assert [ij for r in range(world) for ij in shards[r][step]] == batch
        idx = [i for i, _ in batch]
        assert [j for _, j in batch] == list(np.roll(idx, -1))
    other = D.GlobalBatchSampler(data, 4, 1, 0, seed=3)
    other.set_epoch(3)
    assert list(other) != ref  # reshuffled every epoch
    with pytest.raises(ValueError, match="divisible"):
        D.GlobalBatchSampler(data, 4, 3, 0)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        D.GlobalBatchSampler(data[:3], 4, 1, 0)


# ------------------------------------------------------------------------------------------ losses
def _tiny_ncnet():
    from semcorr.models.ncnet import NCNet

    torch.manual_seed(0)
    return NCNet(backbone="hog", kernel_sizes=[3, 3], channels=[4, 1])


def test_ncnet_partner_loss_is_the_published_rolled_batch_loss():
    from semcorr.losses.ncnet import weak_loss as rolled
    from semcorr.train.ncnet import weak_loss

    model = _tiny_ncnet()
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.rand(3, 3, 32, 32, generator=g), torch.rand(3, 3, 32, 32, generator=g)
    batch = {"src_img": src, "tgt_img": tgt, "partner_src_img": torch.roll(src, -1, 0)}
    torch.testing.assert_close(weak_loss(model, batch)["loss"], rolled(model, src, tgt))


def _get_scores_reference(coords, values, reverse, fs):
    """ignacio-rocco/sparse-ncnet lib/sparse.py get_scores, float64, with the cell's points found exactly (the
    released k-NN search finds them when a cell holds <= k points, as here): per pair, per present cell, the
    softmax over fs*fs entries (the cell's values, zeros elsewhere), its max, mean over cells; mean over pairs."""
    c = [3, 4] if reverse else [1, 2]
    out = []
    for b in range(int(coords[:, 0].max()) + 1):
        rows = coords[:, 0] == b
        cells = {}
        for (y, x), v in zip(coords[rows][:, c].tolist(), values[rows].double().tolist()):
            cells.setdefault((y, x), []).append(v)
        best = []
        for vals in cells.values():
            vec = torch.zeros(fs * fs, dtype=torch.float64)
            vec[:len(vals)] = torch.tensor(vals, dtype=torch.float64)
            best.append(torch.softmax(vec, 0).max())
        out.append(torch.stack(best).mean())
    return torch.stack(out).mean()


def test_sparse_match_score_matches_released_get_scores():
    from semcorr.losses.sparse_ncnet import sparse_match_score

    g = torch.Generator().manual_seed(0)
    fs, B = 4, 2
    # a random sparse volume: each (b, source cell) gets 1-3 random targets; some cells get none
    rows = []
    for b in range(B):
        for i in range(fs):
            for j in range(fs):
                if (i + j + b) % 5 == 0:
                    continue
                n = int(torch.randint(1, 4, (1,), generator=g))
                tg = torch.randperm(fs * fs, generator=g)[:n]
                rows += [[b, i, j, int(t) // fs, int(t) % fs] for t in tg]
    coords = torch.tensor(rows)
    values = (torch.randn(len(rows), generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    got = sparse_match_score(coords, values, B, (fs, fs), (fs, fs))
    ref = (_get_scores_reference(coords, values, False, fs) + _get_scores_reference(coords, values, True, fs)) / 2
    torch.testing.assert_close(got, ref)
    torch.autograd.gradcheck(lambda v: sparse_match_score(coords, v, B, (fs, fs), (fs, fs)), (values,))


# ------------------------------------------------------------------------------------------ engine runs
def _tiny_cfg(tmp_path, method="ncnet", epochs=2):
    cfg = C.load_config("ncnet_synthetic" if method == "ncnet" else "sparse_ncnet_synthetic")
    return C.apply_overrides(cfg, [
        "model.backbone=hog", "model.weights=null", "model.kernel_sizes=[3,3]", "model.channels=[4,1]",
        "train.epochs=%d" % epochs, "train.batch_size=2",
        "data.train={kind: synthetic, image_size: 48, repeats: 1, images: [astronaut, chelsea], warps: [affine, tps]}",
        "data.val={kind: synthetic, image_size: 48, repeats: 1, seed: 5, images: [coffee], warps: [affine, tps]}",
        "data.pck={dataset: synthetic, image_size: 48, seed: 7, stereo: false, images: [coffee], warps: [affine]}",
        "run.out=%s" % (tmp_path / "run")])


def test_resume_mid_run_gives_the_uninterrupted_result_and_build_model_loads_it(tmp_path):
    from semcorr.train.ncnet import RECIPE

    with pytest.warns(UserWarning, match="UNTRAINED"):
        full = E.train(RECIPE, _tiny_cfg(tmp_path / "a"), progress=False)
    ck_full = torch.load(full["checkpoint"], weights_only=True)
    # the same run stopped after epoch 1 (as a kill would), then resumed
    with pytest.warns(UserWarning, match="UNTRAINED"):
        E.train(RECIPE, _tiny_cfg(tmp_path / "b", epochs=1), progress=False)
    with pytest.warns(UserWarning, match="UNTRAINED"):
        res = E.train(RECIPE, _tiny_cfg(tmp_path / "b", epochs=2), resume="auto", progress=False)
    ck = torch.load(res["checkpoint"], weights_only=True)
    assert ck["epoch"] == 2 and ck["global_step"] == ck_full["global_step"] == 4
    for k, v in ck_full["state_dict"].items():
        torch.testing.assert_close(ck["state_dict"][k], v, rtol=0, atol=0, msg=k)
    assert [h["loss"] for h in ck["history"]] == [h["loss"] for h in ck_full["history"]]
    # checkpoint layout: model under state_dict, build_model kwargs under model_config
    assert ck["method"] == "ncnet" and ck["model_config"]["channels"] == [4, 1]
    assert {"optimizer", "scheduler", "rng", "config", "history", "step_in_epoch"} <= set(ck)
    log = [json.loads(x) for x in (tmp_path / "a" / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and all("val_loss" in r and "val_pck" in r for r in log)
    assert (tmp_path / "a" / "run" / "curves.png").stat().st_size > 1000
    assert (tmp_path / "a" / "run" / "best.pt").is_file()
    # the checkpoint is what build_model(..., checkpoint=...) loads
    from semcorr.models import build_model

    model = build_model("ncnet", checkpoint=full["checkpoint"], backbone="hog")
    for k, v in ck_full["state_dict"].items():
        torch.testing.assert_close(model.state_dict()[k], v, msg=k)
    assert "consensus" not in model.untrained_parts()
    again = E.build_trained(full["checkpoint"])
    torch.testing.assert_close(again.state_dict()["consensus.conv.0.weight"],
                               ck_full["state_dict"]["consensus.conv.0.weight"])


def test_cli_lists_the_engine_methods_and_prints_the_config(capsys):
    from semcorr.cli import main

    assert main(["train", "sparse-ncnet", "--print-config", "--set", "train.batch_size=8"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["method"] == "sparse-ncnet" and cfg["train"]["batch_size"] == 8
    assert main(["train", "ncnet", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["train"]["csv"] == "image_pairs/train_pairs.csv"


@pytest.mark.parametrize("path", sorted(C.config_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_every_config_file_names_a_method_and_valid_model_arguments(path):
    """Each checked-in config loads, names a trainable method, and its model / model_train arguments are
    accepted by build_model (with the backbone swapped for a weight-free one: no ImageNet file needed)."""
    import importlib

    from semcorr.models import build_model

    cfg = C.load_config(str(path))
    mod = importlib.import_module("semcorr.train.%s" % cfg["method"].replace("-", "_"))
    assert mod.RECIPE.name == cfg["method"]
    assert path.stem.startswith(cfg["method"].replace("-", "_") + "_")  # <model>_<dataset>.yaml
    assert {"model", "optimizer", "train", "data"} <= set(cfg) and cfg["data"]["train"]
    kw = {**cfg["model"], **(cfg.get("model_train") or {}), "weights": None}
    kw["backbone"] = {"scnet": "daisy", "macosnet": "tiny", "sfnet": "tiny"}.get(cfg["method"], "hog")
    kw.pop("checkpoint", None)  # an initialisation file (MaCoSNet's WeakAlign model) the test does not have
    if cfg["method"] == "scnet":
        kw["fc_dim"] = 8
    with pytest.warns(UserWarning, match="UNTRAINED"):
        build_model(cfg["method"], **kw)
