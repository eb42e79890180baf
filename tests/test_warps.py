"""semcorr.data.warps and semcorr.data.sample: warps whose point mapping is exact."""
import numpy as np
import pytest

from semcorr.data.sample import load_sample_image, sample_pair
from semcorr.data.warps import AffineWarp, ComposedWarp, TPSWarp, random_affine, random_tps, random_warp, warp_image

KINDS = ["affine", "tps", "affine+tps"]


def blob(shape, x0, y0, sigma=1.5):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))


def centroid(img):
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    return np.array([(img * xx).sum(), (img * yy).sum()]) / img.sum()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_points_land_where_the_content_went(kind, seed):
    H, W = 90, 110
    w = random_warp((H, W), seed, kind)
    for x0, y0 in [(40.3, 45.7), (70.0, 30.2)]:
        out = warp_image(blob((H, W), x0, y0), w)
        assert np.abs(centroid(out) - w.forward([x0, y0])).max() < 0.1


@pytest.mark.parametrize("kind", KINDS)
def test_forward_inverse_roundtrip(kind):
    w = random_warp((120, 100), 7, kind)
    pts = np.random.default_rng(0).uniform(0, 100, size=(50, 2))
    assert np.abs(w.inverse(w.forward(pts)) - pts).max() < 1e-5
    assert np.abs(w.forward(w.inverse(pts)) - pts).max() < 1e-5
    assert w.forward(pts.reshape(5, 10, 2)).shape == (5, 10, 2)


def test_deterministic_by_seed_and_moderate():
    a, b, c = random_affine((200, 300), 3), random_affine((200, 300), 3), random_affine((200, 300), 4)
    assert np.array_equal(a.A, b.A) and np.array_equal(a.t, b.t) and not np.array_equal(a.A, c.A)
    for seed in range(20):
        w = random_affine((200, 300), seed)
        s = np.sqrt(np.linalg.det(w.A))  # shear has det 1, so det = scale^2
        assert 0.85 <= s <= 1.15
        centre = np.array([149.5, 99.5])
        moved = w.forward(centre) - centre
        assert abs(moved[0]) <= 0.1 * 300 + 1e-9 and abs(moved[1]) <= 0.1 * 200 + 1e-9
    t1, t2 = random_tps((100, 100), 5), random_tps((100, 100), 5)
    assert np.array_equal(t1.tgt_ctrl, t2.tgt_ctrl)
    assert np.abs(t1.tgt_ctrl - t1.src_ctrl).max() <= 5.0 + 1e-9
    assert isinstance(random_warp((10, 10), 0, "affine+tps"), ComposedWarp)
    with pytest.raises(ValueError, match="kind"):
        random_warp((10, 10), 0, "homography")


def test_tps_interpolates_its_control_points():
    w = random_tps((80, 60), 11)
    assert isinstance(w, TPSWarp)
    assert np.abs(w.inverse(w.tgt_ctrl) - w.src_ctrl).max() < 1e-9
    assert np.abs(w.forward(w.src_ctrl) - w.tgt_ctrl).max() < 1e-5


def test_affine_exact_and_warp_image_dtype():
    w = AffineWarp(A=np.array([[1.0, 0.0], [0.0, 1.0]]), t=np.array([3.0, -2.0]))
    img = (np.random.default_rng(0).uniform(size=(20, 30, 3)) * 255).astype(np.uint8)
    out = warp_image(img, w)
    assert out.dtype == np.uint8 and out.shape == img.shape
    # target = source + (3, -2): out[y, x] = img[y + 2, x - 3], an exact copy for an integer translation
    assert np.array_equal(out[:-2, 3:], img[2:, :-3])
    assert (out[:, :3] == 0).all() and (out[-2:] == 0).all()  # nothing maps there
    assert np.allclose(w.matrix @ [1.0, 2.0, 1.0], [4.0, 0.0, 1.0])


def _bilinear(img, pts):
    from scipy.ndimage import map_coordinates

    return np.stack([map_coordinates(img[..., c], [pts[:, 1], pts[:, 0]], order=1) for c in range(img.shape[2])], 1)


def test_sample_pair_ground_truth():
    p = sample_pair(seed=0, size=120)
    assert p.src_img.shape == (120, 120, 3) and p.tgt_img.shape == (120, 120, 3)
    assert p.src_img.dtype == np.float32 and 0 <= p.src_img.min() and p.src_img.max() <= 1
    assert p.src_kps.shape == (36, 2) and p.tgt_kps.shape == (36, 2)
    valid = (p.tgt_kps >= 0).all(1)
    assert valid.sum() >= 30 and ((p.src_kps >= 0).all(1) == valid).all()
    assert np.allclose(p.tgt_kps[valid], p.warp.forward(p.src_kps[valid]), atol=1e-4)
    # the colour at a keypoint in the source is the colour at its target in the target image
    err = np.abs(_bilinear(p.src_img, p.src_kps[valid]) - _bilinear(p.tgt_img, p.tgt_kps[valid])).mean()
    shuffled = np.abs(_bilinear(p.src_img, p.src_kps[valid]) - _bilinear(p.tgt_img, p.tgt_kps[valid][::-1])).mean()
    assert err < 0.03 and shuffled > 5 * err
    q = sample_pair(seed=0, size=120)
    assert np.array_equal(p.tgt_img, q.tgt_img) and np.array_equal(p.tgt_kps, q.tgt_kps)
    r = sample_pair(seed=1, size=120)
    assert not np.array_equal(p.tgt_kps, r.tgt_kps)
    src_t, tgt_t = p.tensors()
    assert tuple(src_t.shape) == (1, 3, 120, 120) and np.allclose(tgt_t[0].permute(1, 2, 0).numpy(), p.tgt_img)


def test_load_sample_image():
    img = load_sample_image("chelsea", 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.float32
    with pytest.raises(ValueError, match="unknown sample image"):
        load_sample_image("nope")
