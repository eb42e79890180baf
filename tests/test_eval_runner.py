"""The evaluation runner: numbers against hand computation (identity baseline on tiny
PF-PASCAL and Caltech trees), resume, batching of mixed sizes, the CLI with figures."""
import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io

import torch

from semcorr.eval.runner import EvalConfig, IdentityBaseline, evaluate, read_records
from semcorr.models.base import CorrespondenceModel, Matches, untrained_line
from semcorr_ext import flow


def _png(path, h, w, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def make_pascal(root, tgt_size=(20, 20)):
    """Pair 0 (bicycle): target keypoints at distances 1, 5, 0 from the source ones; target box 10 wide.
    Pair 1 (cat): identical keypoints."""
    _png(root / "JPEGImages" / "a.jpg", 20, 20, 1)
    _png(root / "JPEGImages" / "b.jpg", *tgt_size, 2)
    _png(root / "JPEGImages" / "c.jpg", 20, 20, 3)
    for cls, name, kps, box in [("bicycle", "a", [[2, 3], [10, 10], [15, 4]], [0, 0, 19, 19]),
                                ("bicycle", "b", [[2, 4], [13, 14], [15, 4]], [0, 0, 10, 10]),
                                ("cat", "c", [[5, 5], [6, 6]], [0, 0, 19, 19]),
                                ("cat", "a", [[5, 5], [6, 6]], [0, 0, 19, 19])]:
        (root / "Annotations" / cls).mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(root / "Annotations" / cls / f"{name}.mat",
                         {"kps": np.array(kps, float), "bbox": np.array([box])})
    with open(root / "test_pairs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source_image", "target_image", "class"])
        w.writerow(["JPEGImages/a.jpg", "JPEGImages/b.jpg", 2])
        w.writerow(["JPEGImages/c.jpg", "JPEGImages/a.jpg", 8])


def _at(d, *alphas):
    """The entries of a per-alpha dict (which also holds the curve's alphas) at ``alphas``."""
    return {a: d[a] for a in alphas}


def _cfg(**kw):
    base = dict(method="identity", progress=False, figures=False, print_table=False, device="cpu")
    base.update(kw)
    return EvalConfig(**base)


def test_identity_on_pfpascal_matches_hand_computation(tmp_path):
    make_pascal(tmp_path / "data")
    res = evaluate(_cfg(dataset="pfpascal", root=str(tmp_path / "data"), size=None,
                        alphas=(0.05, 0.1, 0.25), out=str(tmp_path / "out")))
    g = res["groups"]
    # pair 0: distances 1, 5, 0 with L_img = 20 -> limits 1, 2, 5 -> 2/3, 2/3, 3/3 ; pair 1: all correct
    assert _at(g["category/bicycle"]["pck"]["img"], "0.05", "0.1", "0.25") == pytest.approx(
        {"0.05": 2 / 3, "0.1": 2 / 3, "0.25": 1.0})
    assert g["category/cat"]["pck"]["img"]["0.05"] == pytest.approx(1.0)
    assert g["all"]["pck"]["img"]["0.05"] == pytest.approx((2 / 3 + 1) / 2)
    assert g["all"]["pck_per_keypoint"]["img"]["0.05"] == pytest.approx(4 / 5)
    # alpha_bbox with the target box of side 10: limits 0.5, 1, 2.5 -> 1/3, 2/3, 2/3
    assert _at(g["category/bicycle"]["pck"]["bbox"], "0.05", "0.1", "0.25") == pytest.approx(
        {"0.05": 1 / 3, "0.1": 2 / 3, "0.25": 2 / 3})
    assert res["primary_thresh"] == "img" and res["pairs"] == 2
    out = json.loads((tmp_path / "out" / "results.json").read_text())
    assert out["groups"]["all"]["pck"]["img"]["0.05"] == pytest.approx((2 / 3 + 1) / 2)
    recs = read_records(tmp_path / "out")
    assert sorted(recs) == [0, 1] and recs[0]["n_valid"] == 3


def test_mixed_image_sizes_without_resizing_are_evaluated_pair_by_pair(tmp_path):
    make_pascal(tmp_path / "data", tgt_size=(40, 20))       # target twice as tall
    res = evaluate(_cfg(dataset="pfpascal", root=str(tmp_path / "data"), size=None, batch_size=2,
                        alphas=(0.1,)))
    # identity scales y by 2: source (2,3),(10,10),(15,4) -> (2,6),(10,20),(15,8); gt (2,4),(13,14),(15,4)
    # distances 2, sqrt(45), 4 vs limit 0.1 * 40 = 4 -> 2 of 3
    assert res["groups"]["category/bicycle"]["pck"]["img"]["0.1"] == pytest.approx(2 / 3)


class CountingIdentity(IdentityBaseline):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def match(self, src, tgt):
        self.calls += src.shape[0]
        return super().match(src, tgt)


def test_resume_skips_recorded_pairs_and_reproduces_a_fresh_run(tmp_path):
    fresh = evaluate(_cfg(dataset="synthetic", limit=6, batch_size=4, out=str(tmp_path / "fresh")))
    part = CountingIdentity()
    evaluate(_cfg(dataset="synthetic", limit=3, batch_size=2, out=str(tmp_path / "run")), model=part)
    assert part.calls == 3
    # an interrupted write leaves a cut line behind: it is ignored
    with open(tmp_path / "run" / "pairs" / "pairs-rank0.jsonl", "a") as f:
        f.write('{"index": 4, "pair_id": "chel')
    rest = CountingIdentity()
    resumed = evaluate(_cfg(dataset="synthetic", limit=6, batch_size=4, out=str(tmp_path / "run"), resume=True),
                       model=rest)
    assert rest.calls == 3                                   # only pairs 3, 4, 5
    assert resumed["groups"] == fresh["groups"]
    assert sorted(read_records(tmp_path / "run")) == list(range(6))
    # without --resume the records are started afresh
    again = CountingIdentity()
    evaluate(_cfg(dataset="synthetic", limit=2, out=str(tmp_path / "run")), model=again)
    assert again.calls == 2 and sorted(read_records(tmp_path / "run")) == [0, 1]


def test_figures_draw_the_loop_s_predictions_without_running_the_model_again(tmp_path):
    model = CountingIdentity()
    evaluate(_cfg(dataset="synthetic", limit=3, batch_size=2, out=str(tmp_path / "run"), figures=True,
                  n_qualitative=2), model=model)
    assert model.calls == 3                                  # each pair once, the two drawn ones included
    assert (tmp_path / "run" / "qualitative.png").is_file()
    # resumed: pairs 0-2 were predicted by the earlier run, so only the drawn ones among them run again
    more = CountingIdentity()
    evaluate(_cfg(dataset="synthetic", limit=5, batch_size=2, out=str(tmp_path / "run"), figures=True,
                  n_qualitative=2, resume=True), model=more)
    assert more.calls == 2 + 2


def test_resume_refuses_a_different_configuration(tmp_path):
    evaluate(_cfg(dataset="synthetic", limit=1, out=str(tmp_path / "run")))
    with pytest.raises(SystemExit, match="size"):
        evaluate(_cfg(dataset="synthetic", limit=1, size=128, out=str(tmp_path / "run"), resume=True))


def test_caltech_mask_transfer_through_the_runner(tmp_path):
    root = tmp_path / "Caltech-101"
    _png(root / "101_ObjectCategories" / "Faces" / "image_0001.jpg", 10, 12, 1)
    _png(root / "101_ObjectCategories" / "Faces" / "image_0002.jpg", 10, 12, 2)
    _png(root / "101_ObjectCategories" / "ant" / "image_0001.jpg", 10, 12, 3)
    with open(root / "test_pairs_caltech_with_category.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source_image", "target_image", "class", "XA", "YA", "XB", "YB"])
        # Faces: the object moved 2 px right -> masks of 30 px overlapping on 20
        w.writerow(["Caltech-101/101_ObjectCategories/Faces/image_0001.jpg",
                    "Caltech-101/101_ObjectCategories/Faces/image_0002.jpg", 1,
                    "2,7,7,2", "1,1,5,5", "4,9,9,4", "1,1,5,5"])
        # ant: the same polygon in both images
        w.writerow(["Caltech-101/101_ObjectCategories/ant/image_0001.jpg",
                    "Caltech-101/101_ObjectCategories/ant/image_0001.jpg", 8,
                    "2,7,7,2", "1,1,5,5", "2,7,7,2", "1,1,5,5"])
    res = evaluate(_cfg(dataset="caltech", root=str(root), size=None, out=str(tmp_path / "out"),
                        figures=True, n_qualitative=2))
    g = res["groups"]
    assert g["category/ant"]["ltacc"] == pytest.approx(1.0) and g["category/ant"]["iou"] == pytest.approx(1.0)
    assert g["category/ant"]["locerr"] == pytest.approx(0.0)
    assert g["category/Faces"]["iou"] == pytest.approx(20 / 40)
    assert g["category/Faces"]["ltacc"] == pytest.approx(1 - 20 / 120)
    # identity: relative x differs by 2/6 inside the boxes, everywhere
    assert g["category/Faces"]["locerr"] == pytest.approx(2 / 6)
    assert g["all"]["iou"] == pytest.approx((0.5 + 1.0) / 2)
    assert (tmp_path / "out" / "mask_metrics.png").is_file() and (tmp_path / "out" / "qualitative.png").is_file()


def test_cli_eval_nn_synthetic_prints_table_and_writes_figures(tmp_path, capsys):
    # the compiled ops are part of the package (not an optional dependency): no skip when they are missing
    from semcorr.cli import main

    out = tmp_path / "out"
    rc = main(["eval", "--method", "nn", "--dataset", "synthetic", "--limit", "3", "--batch-size", "2",
               "--out", str(out), "--no-progress", "--device", "cpu"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "astronaut" in text and "PCK@0.1" in text and "\nall " in text
    res = json.loads((out / "results.json").read_text())
    assert res["pairs"] == 3 and res["image_size"] == [240, 240]
    # no published protocol for nn on the synthetic benchmark: the uniform setting, said so
    assert res["protocol"]["key"] == "uniform" and "no published protocol" in res["protocol_note"]
    assert res["untrained"] is None and "UNTRAINED" not in text
    # nearest neighbour on DAISY must beat chance by far on mild warps of the same photo
    assert res["groups"]["all"]["pck"]["img"]["0.1"] > 0.5
    for name in ("pck_curve.png", "qualitative.png"):
        img = iio.imread(out / name)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300
        assert img[..., :3].std() > 10                          # not a blank canvas


def test_tss_and_spair_groups_through_the_runner(tmp_path, capsys):
    from test_datasets import make_spair, make_tss  # fixture trees in the published layouts

    make_tss(tmp_path / "tss")
    res = evaluate(_cfg(dataset="tss", root=str(tmp_path / "tss"), size=None, alphas=(0.35, 0.37),
                        dataset_kwargs={"use_flip": False}, limit=2))
    g = res["groups"]["category/FG3DCar"]
    # 1to2: flow (3, -2), identity error sqrt(13) = 3.606 vs L = 10 -> wrong at 0.35, right at 0.37
    # 2to1: flow (-1, 0), error 1 -> right at both
    assert g["pck"]["img"]["0.35"] == pytest.approx(0.5) and g["pck"]["img"]["0.37"] == pytest.approx(1.0)
    make_spair(tmp_path / "spair")
    res = evaluate(_cfg(dataset="spair", root=str(tmp_path / "spair"), size=None, alphas=(0.1,),
                        print_table=True))
    assert res["primary_thresh"] == "bbox"
    groups = res["groups"]
    assert {"viewpoint/hard", "viewpoint/easy", "truncation/both", "occlusion/src"} <= set(groups)
    # dog pair: source (1,1) vs target (2,2), box side 6 -> error 1.41 > 0.6
    assert groups["category/dog"]["pck"]["bbox"]["0.1"] == 0.0
    table = capsys.readouterr().out
    assert "alpha_bbox" in table and "viewpoint/hard" in table and "dog" in table


class UntrainedModel(CorrespondenceModel):
    """Every point to the same relative position; declares a random part, as models with random weights do."""

    def __init__(self):
        super().__init__()
        self.mark_untrained("backbone", "consensus")

    def forward(self, src_img, tgt_img):
        field = flow.grid_coords(4, 4, tuple(tgt_img.shape[-2:]))[None].expand(src_img.shape[0], -1, -1, -1)
        return Matches(field=field.contiguous(), confidence=torch.ones(src_img.shape[0], 4, 4),
                       src_size=tuple(src_img.shape[-2:]), tgt_size=tuple(tgt_img.shape[-2:]))


def test_untrained_line_is_printed_and_written_into_the_results(tmp_path, capsys):
    model = UntrainedModel()
    res = evaluate(_cfg(dataset="synthetic", limit=2, out=str(tmp_path / "out"), print_table=True), model=model)
    line = untrained_line(model)
    assert line.startswith("UNTRAINED: ") and "backbone, consensus" in line
    assert res["untrained"] == line and res["table"].startswith(line)
    assert line in capsys.readouterr().out
    for name in ("results.json", "config.json"):
        assert json.loads((tmp_path / "out" / name).read_text())["untrained"] == line


def test_cli_eval_of_a_random_model_prints_untrained(tmp_path, capsys):
    from semcorr.cli import main

    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="UNTRAINED"):
        rc = main(["eval", "--method", "macosnet", "--dataset", "synthetic", "--limit", "1", "--out", str(out),
                   "--no-progress", "--no-figures", "--device", "cpu", "--size", "96"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "UNTRAINED: macosnet has random weights" in text
    assert json.loads((out / "results.json").read_text())["untrained"].startswith("UNTRAINED: macosnet")
