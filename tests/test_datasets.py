"""Dataset loaders read tiny fixture trees written in each benchmark's published layout
(PF-PASCAL in HPF's and NC-Net's layouts, PF-WILLOW, SPair-71k, Caltech-101, TSS), and
``semcorr data check`` reports what is missing. Images are a few pixels wide."""
import csv
import json
import math

import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import torch

from semcorr.data.datasets import (TSS, Caltech101, PFPascal, PFWillow, SPair, build_dataset, read_flo,
                                   write_flo)
from semcorr.data.datasets.base import read_image, resolve_path
from semcorr.eval.runner import collate_samples


def _png(path, h, w, seed=0, gray=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(h, w) if gray else (h, w, 3), dtype=np.uint8)
    iio.imwrite(path, img)
    return img


def _jpg(path, h, w, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((h, w, 3), 40 + 10 * seed, dtype=np.uint8)
    iio.imwrite(path, img, extension=".jpg")
    return img


def _csv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# ------------------------------------------------------------------------------ PF-PASCAL
def make_pfpascal_hpf(root):
    """HPF layout: JPEGImages/, Annotations/<class>/*.mat ('kps' with NaN rows, 'bbox'), test_pairs.csv."""
    _jpg(root / "JPEGImages" / "2009_000001.jpg", 20, 30, 1)
    _jpg(root / "JPEGImages" / "2009_000002.jpg", 40, 10, 2)
    _jpg(root / "JPEGImages" / "2010_000003.jpg", 16, 16, 3)
    nan = np.nan
    ann = root / "Annotations" / "bicycle"
    ann.mkdir(parents=True)
    scipy.io.savemat(ann / "2009_000001.mat", {
        "kps": np.array([[2.0, 3.0], [nan, nan], [10.0, 12.0], [25.0, 5.0]]),
        "bbox": np.array([[1, 2, 28, 18]], dtype=np.uint16)})
    scipy.io.savemat(ann / "2009_000002.mat", {
        "kps": np.array([[4.0, 30.0], [5.0, 5.0], [nan, nan], [8.0, 1.0]]),
        "bbox": np.array([[0, 1, 9, 39]], dtype=np.uint16)})
    ann3 = root / "Annotations" / "cat"
    ann3.mkdir(parents=True)
    scipy.io.savemat(ann3 / "2010_000003.mat", {"kps": np.array([[1.0, 1.0], [2.0, 2.0]]),
                                               "bbox": np.array([[0, 0, 15, 15]])})
    scipy.io.savemat(ann3 / "2009_000001.mat", {"kps": np.array([[3.0, 3.0], [nan, nan]]),
                                               "bbox": np.array([[0, 0, 29, 19]])})
    _csv(root / "test_pairs.csv", ["source_image", "target_image", "class", "flip"],
         [["JPEGImages/2009_000001.jpg", "JPEGImages/2009_000002.jpg", 2, 0],
          ["JPEGImages/2010_000003.jpg", "JPEGImages/2009_000001.jpg", 8, 0]])


def test_pfpascal_hpf_layout_original_size(tmp_path):
    make_pfpascal_hpf(tmp_path)
    ds = PFPascal(tmp_path, split="test", size=None)
    assert len(ds) == 2
    s = ds[0]
    assert s["category"] == "bicycle"                              # class 2 of the VOC list, 1-based
    assert s["pair_id"] == "2009_000001-2009_000002:bicycle"
    assert s["src_img"].shape == (3, 20, 30) and s["tgt_img"].shape == (3, 40, 10)
    assert s["src_img"].dtype == torch.float32 and 0 <= s["src_img"].min() and s["src_img"].max() <= 1
    # keypoints annotated in both images only (rows 0 and 3), padded with -1 to 20
    assert s["n_kps"] == 2 and s["src_kps"].shape == (20, 2)
    assert s["src_kps"][:2].tolist() == [[2, 3], [25, 5]]
    assert s["tgt_kps"][:2].tolist() == [[4, 30], [8, 1]]
    assert (s["tgt_kps"][2:] == -1).all()
    assert s["tgt_bbox"].tolist() == [0, 1, 9, 39]
    assert s["thresh_img"] == 40 and s["thresh_bbox"] == 38
    assert s["thresh_kpbox"] == 29                                 # max(8-4, 30-1)
    assert s["tgt_size"].tolist() == [40, 10]
    assert ds[1]["category"] == "cat" and ds[1]["n_kps"] == 1


def test_pfpascal_resized_scales_keypoints_boxes_thresholds(tmp_path):
    make_pfpascal_hpf(tmp_path)
    ds = PFPascal(tmp_path, size=(10, 20))                           # (H, W)
    s = ds[0]
    assert s["src_img"].shape == (3, 10, 20) and s["tgt_img"].shape == (3, 10, 20)
    # source 20x30 -> 10x20: x * 20/30, y * 10/20 ; target 40x10 -> x * 2, y / 4
    assert torch.allclose(s["src_kps"][:2], torch.tensor([[2 * 2 / 3, 1.5], [25 * 2 / 3, 2.5]]))
    assert torch.allclose(s["tgt_kps"][:2], torch.tensor([[8.0, 7.5], [16.0, 0.25]]))
    assert torch.allclose(s["tgt_bbox"], torch.tensor([0.0, 0.25, 18.0, 9.75]))
    assert s["thresh_img"] == 20 and s["thresh_bbox"] == pytest.approx(18.0)
    # JPEG is lossy, but a flat image stays flat after resizing
    assert s["src_img"].std() < 0.02
    batch = collate_samples([ds[0], ds[1]])
    assert batch["src_img"].shape == (2, 3, 10, 20) and batch["category"] == ["bicycle", "cat"]
    assert batch["thresh_img"].tolist() == [20, 20]


def make_pfpascal_ncnet(root):
    """WeakAlign/NC-Net layout: PF-dataset-PASCAL/JPEGImages + test_pairs_pf_pascal.csv with XA;YA;..."""
    _png(root / "PF-dataset-PASCAL" / "JPEGImages" / "2008_000010.jpg", 12, 14, 4)  # PNG bytes, .jpg name
    _png(root / "PF-dataset-PASCAL" / "JPEGImages" / "2008_000020.jpg", 12, 14, 5)
    _csv(root / "test_pairs_pf_pascal.csv", ["source_image", "target_image", "class", "XA", "YA", "XB", "YB"],
         [["PF-dataset-PASCAL/JPEGImages/2008_000010.jpg", "PF-dataset-PASCAL/JPEGImages/2008_000020.jpg", 1,
           "1;2;3;-1", "4;5;6;-1", "7;8;-1;-1", "9;10;-1;-1"]])


def test_pfpascal_ncnet_layout_csv_keypoints(tmp_path):
    make_pfpascal_ncnet(tmp_path)
    ds = build_dataset("pf-pascal", tmp_path, size=None)
    s = ds[0]
    assert s["category"] == "aeroplane"
    # the third point is missing in the target: only two correspondences remain
    assert s["n_kps"] == 2
    assert s["src_kps"][:2].tolist() == [[1, 4], [2, 5]] and s["tgt_kps"][:2].tolist() == [[7, 9], [8, 10]]
    assert math.isnan(s["thresh_bbox"]) and (s["tgt_bbox"] == -1).all()   # no Annotations/: no boxes
    assert s["thresh_img"] == 14
    rep = PFPascal.check(tmp_path)
    assert rep.ok and rep.n_pairs == 1 and any("alpha_bbox unavailable" in n for n in rep.notes)


def test_pfpascal_check_reports_missing(tmp_path):
    make_pfpascal_hpf(tmp_path)
    (tmp_path / "JPEGImages" / "2009_000002.jpg").unlink()
    (tmp_path / "Annotations" / "cat" / "2010_000003.mat").unlink()
    rep = PFPascal.check(tmp_path)
    assert not rep.ok and rep.n_pairs == 2
    assert rep.pairs_missing_images == 1 and rep.pairs_missing_annotations == 1
    assert any("2009_000002.jpg" in e for e in rep.examples)
    empty = tmp_path / "empty"
    empty.mkdir()
    rep = PFPascal.check(empty)
    assert any("JPEGImages" in m for m in rep.missing) and any("test_pairs.csv" in m for m in rep.missing)
    with pytest.raises(FileNotFoundError, match="semcorr data check"):
        PFPascal(empty)


# ------------------------------------------------------------------------------ PF-WILLOW
def make_pfwillow(root):
    _png(root / "car(G)" / "Cars_001a.png", 30, 40, 1)
    _png(root / "car(G)" / "Cars_002a.png", 20, 20, 2)
    _png(root / "duck(S)" / "duck_001.png", 10, 10, 3, gray=True)
    xa, ya = list(range(1, 11)), [2 * i for i in range(1, 11)]
    xb, yb = [v + 3 for v in xa], [v - 1 for v in ya]
    header = ["imageA", "imageB"] + [f"XA{i}" for i in range(1, 11)] + [f"YA{i}" for i in range(1, 11)] \
        + [f"XB{i}" for i in range(1, 11)] + [f"YB{i}" for i in range(1, 11)]
    yb2 = list(yb)
    yb2[9] = -1                                            # a missing target point
    _csv(root / "test_pairs_pf.csv", header,
         [["PF-dataset/car(G)/Cars_001a.png", "PF-dataset/car(G)/Cars_002a.png"] + xa + ya + xb + yb,
          ["PF-dataset/duck(S)/duck_001.png", "PF-dataset/duck(S)/duck_001.png"] + xa + ya + xb + yb2])


def test_pfwillow_reads_columns_and_keypoint_box(tmp_path):
    make_pfwillow(tmp_path)
    ds = PFWillow(tmp_path, size=None)
    assert len(ds) == 2
    s = ds[0]
    assert s["category"] == "car(G)"
    assert s["n_kps"] == 10
    assert s["src_kps"][:3].tolist() == [[1, 2], [2, 4], [3, 6]]
    assert s["tgt_kps"][9].tolist() == [13, 19]
    assert s["thresh_kpbox"] == 18 and s["thresh_bbox"] == 18      # max(13-4, 19-1)
    s2 = ds[1]
    assert s2["category"] == "duck(S)" and s2["n_kps"] == 9
    assert s2["src_img"].shape == (3, 10, 10)                       # grey image -> 3 channels
    assert s2["thresh_kpbox"] == 16                                 # max(12-4, 17-1): point 10 excluded
    rep = PFWillow.check(tmp_path)
    assert rep.ok and rep.n_pairs == 2
    (tmp_path / "duck(S)" / "duck_001.png").unlink()
    rep = PFWillow.check(tmp_path)
    assert rep.pairs_missing_images == 1 and not rep.ok


# ------------------------------------------------------------------------------ SPair-71k
def make_spair(root):
    names = ["000001-2008_000001-2008_000002:cat", "000002-2008_000003-2008_000001:dog"]
    (root / "Layout" / "large").mkdir(parents=True)
    (root / "Layout" / "large" / "test.txt").write_text("\n".join(names) + "\n")
    pa = root / "PairAnnotation" / "test"
    pa.mkdir(parents=True)
    _jpg(root / "JPEGImages" / "cat" / "2008_000001.jpg", 20, 24, 1)
    _jpg(root / "JPEGImages" / "cat" / "2008_000002.jpg", 30, 16, 2)
    _jpg(root / "JPEGImages" / "dog" / "2008_000003.jpg", 10, 10, 3)
    _jpg(root / "JPEGImages" / "dog" / "2008_000001.jpg", 10, 10, 4)
    anns = [
        {"filename": names[0], "src_imname": "2008_000001.jpg", "trg_imname": "2008_000002.jpg",
         "src_imsize": [24, 20, 3], "trg_imsize": [16, 30, 3], "category": "cat",
         "src_bndbox": [2, 3, 20, 18], "trg_bndbox": [1, 2, 15, 28],
         "src_kps": [[3, 4], [10, 11], [19, 17]], "trg_kps": [[2, 5], [8, 20], [14, 27]], "kps_ids": ["0", "3", "7"],
         "viewpoint_variation": 2, "scale_variation": 0, "truncation": 3, "occlusion": 1, "mirror": 0},
        {"filename": names[1], "src_imname": "2008_000003.jpg", "trg_imname": "2008_000001.jpg",
         "src_imsize": [10, 10, 3], "trg_imsize": [10, 10, 3], "category": "dog",
         "src_bndbox": [0, 0, 9, 9], "trg_bndbox": [2, 2, 6, 8],
         "src_kps": [[1, 1]], "trg_kps": [[2, 2]], "kps_ids": ["1"],
         "viewpoint_variation": 0, "scale_variation": 1, "truncation": 0, "occlusion": 0, "mirror": 0}]
    for name, a in zip(names, anns):
        (pa / f"{name}.json").write_text(json.dumps(a))


def test_spair_reads_json_boxes_and_variation_groups(tmp_path):
    make_spair(tmp_path)
    ds = SPair(tmp_path, split="test", size=None)
    assert len(ds) == 2
    s = ds[0]
    assert s["pair_id"] == "000001-2008_000001-2008_000002:cat" and s["category"] == "cat"
    assert s["n_kps"] == 3 and s["src_kps"].shape == (40, 2)
    assert s["tgt_kps"][:3].tolist() == [[2, 5], [8, 20], [14, 27]]
    assert s["tgt_bbox"].tolist() == [1, 2, 15, 28] and s["thresh_bbox"] == 26
    assert s["groups"] == ["viewpoint/hard", "scale/easy", "truncation/both", "occlusion/src"]
    assert ds[1]["groups"] == ["viewpoint/easy", "scale/medium", "truncation/none", "occlusion/none"]
    assert ds[1]["thresh_bbox"] == 6
    one = SPair(tmp_path, size=None, category="dog")
    assert len(one) == 1 and one[0]["category"] == "dog"


def test_spair_root_may_be_the_parent_folder(tmp_path):
    make_spair(tmp_path / "SPair-71k")
    ds = SPair(tmp_path, size=8)
    assert len(ds) == 2 and ds[0]["src_img"].shape == (3, 8, 8)
    assert SPair.check(tmp_path).ok


def test_spair_check(tmp_path):
    make_spair(tmp_path)
    assert SPair.check(tmp_path).ok
    (tmp_path / "JPEGImages" / "dog" / "2008_000003.jpg").unlink()
    (tmp_path / "PairAnnotation" / "test" / "000001-2008_000001-2008_000002:cat.json").unlink()
    rep = SPair.check(tmp_path)
    assert rep.n_pairs == 2 and rep.pairs_missing_images == 1 and rep.pairs_missing_annotations == 1
    rep = SPair.check(tmp_path, split="val")
    assert "PairAnnotation/val/" in rep.missing and "Layout/large/val.txt" in rep.missing


# ------------------------------------------------------------------------------ Caltech-101
def make_caltech(root):
    _png(root / "101_ObjectCategories" / "Faces" / "image_0001.jpg", 10, 12, 1)
    _png(root / "101_ObjectCategories" / "Faces" / "image_0002.jpg", 20, 20, 2, gray=True)
    _csv(root / "test_pairs_caltech_with_category.csv",
         ["source_image", "target_image", "class", "XA", "YA", "XB", "YB"],
         [["caltech-101/101_ObjectCategories/Faces/image_0001.jpg",
           "caltech-101/101_ObjectCategories/Faces/image_0002.jpg", 1,
           "2,7,7,2", "1,1,5,5", "0,10,10,0", "0,0,10,10"]])


def test_caltech_polygons_become_masks(tmp_path):
    make_caltech(tmp_path)
    ds = Caltech101(tmp_path, size=None)
    s = ds[0]
    assert s["category"] == "Faces" and s["n_kps"] == 0 and s["src_kps"].shape == (0, 2)
    # the rectangle with corners (2, 1) and (7, 5), borders included -> 6 x 5 pixels
    assert s["src_mask"].shape == (10, 12) and int(s["src_mask"].sum()) == 30
    assert s["src_mask"][1, 2] and s["src_mask"][5, 7] and not s["src_mask"][0, 2] and not s["src_mask"][1, 8]
    assert int(s["tgt_mask"].sum()) == 121
    r = Caltech101(tmp_path, size=20)[0]
    assert r["src_mask"].shape == (20, 20) and r["tgt_mask"].shape == (20, 20)
    assert int(r["tgt_mask"].sum()) == 121                           # target was already 20x20
    assert Caltech101.check(tmp_path).ok
    (tmp_path / "101_ObjectCategories" / "Faces" / "image_0002.jpg").unlink()
    assert Caltech101.check(tmp_path).pairs_missing_images == 1


# ------------------------------------------------------------------------------ TSS
def make_tss(root):
    """Two pair folders; flow1 is a constant (3, -2) with one unknown pixel; the second pair is flipped."""
    for k, (group, name, flip) in enumerate([("FG3DCar", "car01", 0), ("JODS", "pair02", 1)]):
        d = root / group / name
        _png(d / "image1.png", 8, 10, 2 * k)
        _png(d / "image2.png", 8, 10, 2 * k + 1)
        m1 = np.zeros((8, 10), np.uint8)
        m1[2:6, 1:5] = 255
        m2 = np.zeros((8, 10), np.uint8)
        m2[1:3, 4:7] = 255
        iio.imwrite(d / "mask1.png", m1)
        iio.imwrite(d / "mask2.png", m2)
        f1 = np.zeros((8, 10, 2), np.float32)
        f1[..., 0], f1[..., 1] = 3.0, -2.0
        f1[2, 1] = [1e10, 1e10]                                    # unknown
        f2 = np.zeros((8, 10, 2), np.float32)
        f2[..., 0] = -1.0
        write_flo(d / "flow1.flo", f1)
        write_flo(d / "flow2.flo", f2)
        (d / "flip_gt.txt").write_text(f"{flip}\n")


def test_flo_roundtrip_and_header(tmp_path):
    f = np.arange(2 * 3 * 4, dtype=np.float32).reshape(3, 4, 2)
    write_flo(tmp_path / "a.flo", f)
    raw = (tmp_path / "a.flo").read_bytes()
    assert raw[:4] == b"PIEH" and np.frombuffer(raw[4:12], np.int32).tolist() == [4, 3]
    assert len(raw) == 12 + 4 * f.size
    assert np.array_equal(read_flo(tmp_path / "a.flo"), f)
    (tmp_path / "bad.flo").write_bytes(b"XXXX" + raw[4:])
    with pytest.raises(ValueError, match="magic"):
        read_flo(tmp_path / "bad.flo")


def test_tss_flow_to_keypoints_both_directions_and_flip(tmp_path):
    make_tss(tmp_path)
    ds = TSS(tmp_path, size=None, max_kps=100)
    assert len(ds) == 4
    assert [ds.pair_id(i) for i in range(4)] == ["FG3DCar/car01/1to2", "FG3DCar/car01/2to1",
                                                 "JODS/pair02/1to2", "JODS/pair02/2to1"]
    s = ds[0]
    assert s["category"] == "FG3DCar" and s["flip"] == 0
    # mask1 has 16 pixels, one with unknown flow -> 15 keypoints, each moved by (3, -2)
    assert s["n_kps"] == 15
    n = s["n_kps"]
    assert torch.equal(s["tgt_kps"][:n], s["src_kps"][:n] + torch.tensor([3.0, -2.0]))
    assert [1.0, 2.0] not in s["src_kps"][:n].tolist()
    assert s["src_kps"][0].tolist() == [2.0, 2.0]                   # row-major order
    assert s["thresh_img"] == 10
    r = ds[1]                                                         # 2to1 uses mask2 / flow2
    assert r["n_kps"] == 6 and torch.equal(r["tgt_kps"][:6], r["src_kps"][:6] - torch.tensor([1.0, 0.0]))
    # flipped pair: the target image is mirrored and so is the ground truth, x -> (W - 1) - x
    f = ds[2]
    assert f["flip"] == 1
    raw_t = read_image(tmp_path / "JODS" / "pair02" / "image2.png")
    assert torch.allclose(f["tgt_img"], torch.from_numpy(raw_t[:, ::-1].copy()).permute(2, 0, 1))
    expect = f["src_kps"][:15] + torch.tensor([3.0, -2.0])
    expect[:, 0] = 9 - expect[:, 0]
    assert torch.equal(f["tgt_kps"][:15], expect)
    nf = TSS(tmp_path, size=None, max_kps=100, use_flip=False)[2]
    assert torch.equal(nf["tgt_kps"][:15], nf["src_kps"][:15] + torch.tensor([3.0, -2.0]))
    # grid subsampling keeps at most max_kps points
    sub = TSS(tmp_path, size=None, max_kps=4)[0]
    assert 1 <= sub["n_kps"] <= 4 and sub["src_kps"].shape == (4, 2)


def test_tss_check(tmp_path):
    make_tss(tmp_path)
    rep = TSS.check(tmp_path)
    assert rep.n_pairs == 4 and "PASCAL/" in rep.missing and rep.pairs_missing_images == 0
    (tmp_path / "JODS" / "pair02" / "flow2.flo").unlink()
    rep = TSS.check(tmp_path)
    assert rep.pairs_missing_annotations == 2 and any("flow2.flo" in e for e in rep.examples)


# ------------------------------------------------------------------------------ misc
def test_resolve_path_strips_author_prefixes(tmp_path):
    _png(tmp_path / "car(G)" / "a.png", 4, 4)
    assert resolve_path(tmp_path, "PF-dataset/car(G)/a.png") == tmp_path / "car(G)" / "a.png"
    assert resolve_path(tmp_path, "x/y/car(G)/a.png") == tmp_path / "car(G)" / "a.png"
    assert resolve_path(tmp_path, "nope/b.png") == tmp_path / "nope" / "b.png"


def test_read_image_dtypes(tmp_path):
    iio.imwrite(tmp_path / "a16.png", np.full((3, 4), 65535, np.uint16))
    assert np.allclose(read_image(tmp_path / "a16.png"), 1.0)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 255
    iio.imwrite(tmp_path / "rgba.png", rgba)
    img = read_image(tmp_path / "rgba.png")
    assert img.shape == (2, 2, 3) and np.allclose(img[..., 0], 1.0) and np.allclose(img[..., 1:], 0.0)


def test_build_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        build_dataset("nope", tmp_path)
    with pytest.raises(ValueError, match="--root"):
        build_dataset("spair", None)


def test_data_check_command(tmp_path, capsys):
    from semcorr.cli import main

    make_spair(tmp_path)
    assert main(["data", "check", "spair", str(tmp_path)]) == 0
    assert "OK: ready to evaluate" in capsys.readouterr().out
    (tmp_path / "JPEGImages" / "cat" / "2008_000002.jpg").unlink()
    assert main(["data", "check", "spair", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "pairs referencing missing images: 1" in out and "expected layout" in out
    assert main(["data", "layout", "tss"]) == 0 and "flow1.flo" in capsys.readouterr().out
