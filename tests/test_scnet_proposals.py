"""SCNet's proposal pipeline (Randomized Prim's through SCNet's RP.m) and the substitutes."""
import math

import numpy as np
import pytest

from semcorr.models.scnet import proposals as pr


def test_superpixel_similarity_by_hand():
    # two superpixels, left / right halves of a uniform 4x4 image: interior pixels see 3 of the other side each,
    # co-occurrence 6 both ways -> border term max(6/6, 6/6) = 1, identical colour histograms -> 1, size 1-.5-.5
    seg = np.zeros((4, 4), dtype=np.int64)
    seg[:, 2:] = 1
    lab = np.full((4, 4, 3), 120, dtype=np.uint8)
    area, bbox, i, j, s = pr._superpixel_graph(seg, lab)
    assert area.tolist() == [0.5, 0.5] and bbox.tolist() == [[0, 0, 1, 3], [2, 0, 3, 3]]
    assert (i.tolist(), j.tolist()) == ([1], [0])
    assert s[0] == pytest.approx(1 / (1 + math.exp(3.0017 - 1.0029 - 2.6864)))


def test_randomized_prim_grows_connected_groups():
    # a chain of 3 superpixels 0 - 1 - 2: a group is a connected run, its box the union of the members' boxes
    area = np.array([0.2, 0.3, 0.5])
    bbox = np.array([[0, 0, 9, 9], [10, 0, 19, 9], [20, 0, 39, 9]])
    ei, ej, e = np.array([1, 2]), np.array([0, 1]), np.array([0.9, 0.6])
    boxes = pr._randomized_prim(area, bbox, ei, ej, e, 400, np.zeros(65536), np.random.default_rng(0))
    got = {tuple(b) for b in boxes.astype(int).tolist()}
    allowed = {(0, 0, 9, 9), (10, 0, 19, 9), (20, 0, 39, 9), (0, 0, 19, 9), (10, 0, 39, 9), (0, 0, 39, 9)}
    assert got <= allowed and len(got) >= 4  # never 0 + 2 without 1
    # alpha = 1 everywhere: E = 2 - s > E0 almost always, so almost every group stays one superpixel
    single = pr._randomized_prim(area, bbox, ei, ej, e, 400, np.ones(65536), np.random.default_rng(0))
    assert np.mean([tuple(b) in {tuple(x) for x in bbox.tolist()} for b in single.astype(int).tolist()]) > 0.6


def test_remove_boundary_boxes():
    boxes = np.array([[5.0, 5.0, 50.0, 50.0], [0.0, 5.0, 50.0, 50.0], [0.0, 0.0, 199.0, 149.0],
                      [5.0, 5.0, 199.0, 50.0]])
    # 1-based: x1 > 2, x2 < 198 (W 200), y1 > 1.5, y2 < 148.5 (H 150); or x1 < 2, x2 > 198, ... (whole image)
    assert pr.remove_boundary_boxes(boxes, (150, 200)).tolist() == [True, False, True, False]
    # with W <= 100 the whole-image box fails "x1 < 0.01 W" (x1 = 1) and is dropped too, as released
    assert not pr.remove_boundary_boxes(np.array([[0.0, 0.0, 99.0, 149.0]]), (150, 100))[0]


def test_rp_boxes_on_an_image():
    from skimage import data, transform

    img = transform.resize(data.astronaut(), (64, 72), anti_aliasing=True)
    boxes = pr.randomized_prim_boxes(img, n_proposals=50)
    assert boxes.shape == (50, 4)  # more unique boxes than asked: drawn with replacement, as released
    b = boxes.numpy()
    assert (b == np.round(b)).all() and (b[:, 0] <= b[:, 2]).all() and (b[:, 1] <= b[:, 3]).all()
    assert (b[:, :2] >= 0).all() and (b[:, 2] <= 71).all() and (b[:, 3] <= 63).all()
    assert pr.remove_boundary_boxes(b, (64, 72)).all()
    # the same image gives the same boxes (seeded from the image, as RP.m)
    np.testing.assert_array_equal(pr.randomized_prim_boxes(img, n_proposals=50).numpy(), b)
    with pytest.raises(ValueError, match="65536"):
        pr.randomized_prim_boxes(img, n_proposals=5, alpha=np.zeros(10))


def test_alpha_file(tmp_path, monkeypatch):
    path = tmp_path / "alpha.dat"
    path.write_text(",".join("%g" % v for v in np.linspace(0, 1, 65536)))
    np.testing.assert_allclose(pr.load_rp_alpha(path), np.linspace(0, 1, 65536), atol=1e-5)
    assert pr.rp_alpha_is_published(str(path))
    monkeypatch.setenv("SEMCORR_RP_ALPHA", str(path))
    assert pr.rp_alpha_is_published(None)
    np.testing.assert_allclose(pr._resolve_alpha(None), np.linspace(0, 1, 65536), atol=1e-5)
    monkeypatch.delenv("SEMCORR_RP_ALPHA")
    assert not pr.rp_alpha_is_published(None)
    np.testing.assert_array_equal(pr._resolve_alpha(None), pr.default_alpha())
    (tmp_path / "short.dat").write_text("0,1")
    with pytest.raises(ValueError, match="65536"):
        pr.load_rp_alpha(tmp_path / "short.dat")


def test_substitutes_inside_image():
    b = pr.sliding_window_boxes(120, 160)
    assert b.shape[1] == 4 and len(b) > 20
    assert (b[:, 0] >= -1e-4).all() and (b[:, 2] <= 159 + 1e-4).all() and (b[:, 3] <= 119 + 1e-4).all()
    from skimage import data

    f = pr.felzenszwalb_boxes(data.astronaut()[:64, :64])
    assert len(f) > 0 and (f[:, 2] <= 63).all()
