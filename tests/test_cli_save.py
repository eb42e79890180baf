"""`semcorr match --save` (.npz / .json / .flo) and `--pairs`: documented format, files that load back, coordinates
in the pixels of the image files."""
import csv
import os

import numpy as np
import pytest
import torch

from semcorr import cli
from semcorr.commands.match import load_image, load_matches


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from skimage import data, io

    d = tmp_path_factory.mktemp("imgs")
    img = data.chelsea()  # 300 x 451: matched at --size 120 (80 x 120), saved in file pixels
    io.imsave(d / "a.png", img)
    io.imsave(d / "b.png", np.ascontiguousarray(img[15:, 20:]))  # 285 x 431, a crop: true shift (-20, -15)
    io.imsave(d / "c.png", np.ascontiguousarray(img[::2, ::2]))
    return d


def test_npz_and_json_hold_the_same_matches_in_file_pixels(images, tmp_path, capsys):
    a, b = str(images / "a.png"), str(images / "b.png")
    for ext in ("npz", "json"):
        assert cli.main(["match", a, b, "--size", "120", "--no-draw", "--save", str(tmp_path / ("m." + ext))]) == 0
        assert "saved:      %s" % (tmp_path / ("m." + ext)) in capsys.readouterr().out
    z, j = load_matches(str(tmp_path / "m.npz")), load_matches(str(tmp_path / "m.json"))
    assert set(z) == set(j) == {"format", "method", "src", "tgt", "src_size", "tgt_size", "grid", "src_points",
                                "tgt_points", "confidence", "mutual", "has_mutual"}
    for k in z:
        if isinstance(z[k], np.ndarray):
            assert z[k].dtype == j[k].dtype, k
            np.testing.assert_array_equal(z[k], j[k], err_msg=k)
        else:
            assert z[k] == j[k], k
    assert z["method"] == "nn" and z["src"] == a and z["has_mutual"] is True
    assert z["src_size"].tolist() == [300, 451] and z["tgt_size"].tolist() == [285, 431]
    Hs, Ws = z["grid"].tolist()
    assert (Hs, Ws) == (10, 15) and z["src_points"].shape == (Hs * Ws, 2) and z["mutual"].dtype == bool
    # source points: the centres of the grid cells over the FILE (cell (i, j) at ((j + .5) W / Ws - .5, ...))
    jj, ii = np.meshgrid(np.arange(Ws), np.arange(Hs))
    centres = np.stack([(jj + 0.5) * 451 / Ws - 0.5, (ii + 0.5) * 300 / Hs - 0.5], -1).reshape(-1, 2)
    np.testing.assert_allclose(z["src_points"], centres, atol=1e-3)
    # the crop's true motion is a shift of (-20, -15) file pixels: most confident mutual matches find it within a
    # source cell (30 px) though the model worked at 120 px
    good = z["mutual"] & (z["confidence"] >= np.quantile(z["confidence"], 0.5))
    err = np.linalg.norm(z["tgt_points"][good] - (z["src_points"][good] - [20, 15]), axis=1)
    assert good.sum() >= 10 and np.median(err) < 30, (good.sum(), np.median(err))
    # a file from elsewhere is refused, not misread
    (tmp_path / "x.json").write_text('{"points": []}')
    with pytest.raises(ValueError, match="not a semcorr matches file"):
        load_matches(str(tmp_path / "x.json"))


def test_flo_is_the_dense_flow_of_the_same_field(images, tmp_path, capsys):
    from semcorr.data.datasets import read_flo

    a, c = str(images / "a.png"), str(images / "c.png")
    assert cli.main(["match", a, c, "--size", "64", "--no-draw", "--save", str(tmp_path / "f.flo")]) == 0
    assert cli.main(["match", a, c, "--size", "64", "--no-draw", "--save", str(tmp_path / "f.npz")]) == 0
    capsys.readouterr()
    flo, z = read_flo(str(tmp_path / "f.flo")), load_matches(str(tmp_path / "f.npz"))
    assert flo.shape == (300, 451, 2) and flo.dtype == np.float32
    # at the source cell centres the dense flow is the saved matches (bilinear between centres is exact there);
    # the centres fall between pixels, so compare against the flow read bilinearly at them
    pts = z["src_points"]
    x0, y0 = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
    fx, fy = (pts[:, 0] - x0)[:, None], (pts[:, 1] - y0)[:, None]
    f = (flo[y0, x0] * (1 - fx) * (1 - fy) + flo[y0, x0 + 1] * fx * (1 - fy) + flo[y0 + 1, x0] * (1 - fx) * fy
         + flo[y0 + 1, x0 + 1] * fx * fy)
    Hs, Ws = z["grid"].tolist()
    ii, jj = np.divmod(np.arange(Hs * Ws), Ws)
    # away from the border cells (outside the outer centres the field is held constant: a kink at those centres)
    inner = (ii > 0) & (ii < Hs - 1) & (jj > 0) & (jj < Ws - 1)
    np.testing.assert_allclose((pts + f)[inner], z["tgt_points"][inner], atol=0.05)
    np.testing.assert_allclose(pts + f, z["tgt_points"], atol=0.5)


def test_pairs_list_one_model_load_one_output_per_pair(images, tmp_path, capsys, monkeypatch):
    import semcorr.models

    (tmp_path / "list.csv").write_text("src,tgt,name\n%s,%s,crop\n%s,%s,\n" % (
        images / "a.png", images / "b.png", os.path.relpath(images / "a.png", tmp_path),
        os.path.relpath(images / "c.png", tmp_path)))
    calls = []
    build = semcorr.models.build_model
    monkeypatch.setattr(semcorr.models, "build_model", lambda *a, **k: calls.append(a) or build(*a, **k))
    out = tmp_path / "res"
    assert cli.main(["match", "--pairs", str(tmp_path / "list.csv"), "--out", str(out), "--size", "120",
                     "--save-format", "json"]) == 0
    cap = capsys.readouterr()
    assert len(calls) == 1  # one model for every pair
    assert "pairs:      2 matched" in cap.out and "match: 100%" in cap.err  # summary + progress bar
    names = sorted(os.listdir(out))
    assert names == ["0001_a_c.json", "0001_a_c.png", "crop.json", "crop.png", "summary.csv"]
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["crop", "0001_a_c"] and rows[0]["matches"] == "150"
    # the same pair alone gives the same matches
    assert cli.main(["match", str(images / "a.png"), str(images / "b.png"), "--size", "120", "--no-draw",
                     "--save", str(tmp_path / "one.json")]) == 0
    one, listed = load_matches(str(tmp_path / "one.json")), load_matches(str(out / "crop.json"))
    for k in ("src_points", "tgt_points", "confidence", "mutual"):
        np.testing.assert_array_equal(one[k], listed[k], err_msg=k)


def test_load_image_keeps_the_file_size_at_zero(images):
    assert load_image(str(images / "a.png"), 0).shape == (300, 451, 3)
    assert load_image(str(images / "a.png"), 120).shape == (80, 120, 3)
    assert torch.is_tensor(torch.from_numpy(load_image(str(images / "c.png"), 64)))


def test_hpf_search_saves_its_result(tmp_path, capsys):
    import json

    out = tmp_path / "search.json"
    # random ResNet-50 (--weights none): the search runs, the ids it finds mean nothing
    assert cli.main(["hpf-search", "--dataset", "synthetic", "--limit", "1", "--beam", "1", "--max-depth", "2",
                     "--candidates", "0-2", "--weights", "none", "--save", str(out)]) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["search"] == "published" and res["backbone"] == "resnet50" and res["dataset"] == "synthetic"
    # depth 0 scores id 0 (beam 1); depth 1 extends it by each larger candidate
    assert [[e["ids"] for e in h["scored"]] for h in res["history"]] == [[[0]], [[0, 1], [0, 2]]]
    scores = {tuple(e["ids"]): e["score"] for h in res["history"] for e in h["scored"]}
    assert res["best_score"] == max(scores.values()) and scores[tuple(res["best_ids"])] == res["best_score"]
    assert "best ids:   %s" % ",".join(map(str, res["best_ids"])) in printed and "hyperpixel_ids=" in printed


@pytest.mark.parametrize("protocol", ["uniform", "paper"])
def test_eval_records_hold_the_predicted_points(tmp_path, capsys, protocol):
    import json

    from semcorr.data.datasets import build_dataset

    out = tmp_path / "ev"
    assert cli.main(["eval", "--method", "identity", "--dataset", "synthetic", "--limit", "2", "--protocol", protocol,
                     "--size", "96", "--no-figures", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    recs = sorted((json.loads(x) for p in (out / "pairs").glob("*.jsonl") for x in p.read_text().splitlines()),
                  key=lambda r: r["index"])
    assert [r["index"] for r in recs] == [0, 1]
    if protocol == "uniform":  # both images squashed to 96 x 96: the identity keeps every source keypoint
        ds = build_dataset("synthetic", None, size=(96, 96))
        for r in recs:
            item = ds[r["index"]]
            np.testing.assert_allclose(r["pred_kps"], item["src_kps"].numpy(), atol=1e-4)
            np.testing.assert_allclose(r["gt_kps"], item["tgt_kps"].numpy(), atol=1e-4)
    for r in recs:  # the saved counts are the PCK of the saved points
        pred, gt = np.array(r["pred_kps"]), np.array(r["gt_kps"])
        valid = (gt >= 0).all(-1)
        L = r["thresh"]["img"]
        assert r["n_valid"] == valid.sum() and len(pred) == len(gt)
        err = np.linalg.norm(pred[valid] - gt[valid], axis=1)
        alphas = json.loads((out / "results.json").read_text())["curve_alphas"]
        assert r["correct"]["img"] == [int((err <= a * L).sum()) for a in alphas]
