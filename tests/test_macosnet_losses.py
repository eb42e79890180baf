"""semcorr.losses.macosnet: every MaCoSNet loss on a case with a known answer."""
import math

import numpy as np
import pytest
import torch

from semcorr.losses import macosnet as L
from semcorr_ext import flow

D = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny CPU graphs: one intra-op thread avoids oversubscription on a busy machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def identity(p):
    return p


def translate(dx, dy):
    return lambda p: p + torch.tensor([dx, dy], dtype=p.dtype)


def scale(s):
    return lambda p: p * s


# --------------------------------------------------------------------------------------------------------
# foreground-guided matching


def _diag_corr(B, H, W):
    """S(p, q) = 1 if q == p else 0: (B, H, W, H, W)."""
    eye = torch.eye(H * W, dtype=D).reshape(H, W, H, W)
    return eye[None].expand(B, -1, -1, -1, -1).clone()


def test_consistency_mask_hard_is_the_phi_ball():
    H, W = 4, 5
    pts = flow.grid_coords(H, W, dtype=D)[None]  # identity: T(p) = p, grid = image
    m = L.consistency_mask(pts, (H, W), None, phi=1.0, soft=False).reshape(H, W, H, W)
    # p = (row 1, col 2): q within distance 1 cell are itself and its 4 neighbours
    expect = torch.zeros(H, W, dtype=D)
    for r, c in [(1, 2), (0, 2), (2, 2), (1, 1), (1, 3)]:
        expect[r, c] = 1
    assert torch.equal(m[1, 2], expect)
    # a corner has 3
    assert m[0, 0].sum() == 3
    # phi = 1.5 adds the diagonals (distance sqrt 2)
    m15 = L.consistency_mask(pts, (H, W), None, phi=1.5, soft=False).reshape(H, W, H, W)
    assert m15[1, 2].sum() == 9


def test_consistency_mask_soft_is_bilinear_weights():
    H, W = 3, 5
    step = 2.0 / (W - 1)  # one cell in normalised x
    pts = flow.grid_coords(H, W, dtype=D)[None].clone()
    pts[..., 0] += 0.5 * step  # half a cell to the right
    m = L.consistency_mask(pts, (H, W), None, phi=1.0, soft=True).reshape(H, W, H, W)
    assert m[1, 1, 1, 1].item() == pytest.approx(0.5)
    assert m[1, 1, 1, 2].item() == pytest.approx(0.5)
    assert m[1, 1].sum().item() == pytest.approx(1.0)
    exact = L.consistency_mask(flow.grid_coords(H, W, dtype=D)[None], (H, W), None, soft=True)
    assert torch.allclose(exact[0], torch.eye(H * W, dtype=D))


def test_matching_loss_known_values():
    B, H, W = 2, 4, 4
    corr = _diag_corr(B, H, W)
    ident = flow.grid_coords(H, W, dtype=D)[None].expand(B, -1, -1, -1)
    ones = torch.ones(B, H, W, dtype=D)
    # perfect matches, all foreground: s = 1 everywhere -> -(1 + 1)
    for soft in (True, False):
        v = L.matching_loss(corr, ident, ones, corr, ident, ones, soft=soft)
        assert v.item() == pytest.approx(-2.0)
    # half of A is background: -(0.5 + 1)
    half = ones.clone()
    half[:, :, 2:] = 0
    assert L.matching_loss(corr, ident, half, corr, ident, ones).item() == pytest.approx(-1.5)
    # full-resolution masks are area-averaged to the grid: same answer
    half_img = half.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, None]
    assert L.matching_loss(corr, ident, half_img, corr, ident, ones).item() == pytest.approx(-1.5)
    # a transform one cell off: with the hard mask (phi = 0.5) no consistent correspondence -> 0
    shifted = ident.clone()
    shifted[..., 0] += 2.0 / (W - 1)
    assert L.matching_loss(corr, shifted, ones, corr, shifted, ones, phi=0.5, soft=False).item() == 0.0
    # half a cell off, soft: every s is 0.5 except the last column (its neighbour is outside) -> 0.5 * 3/4
    shifted = ident.clone()
    shifted[..., 0] += 1.0 / (W - 1)
    s = L.matching_score(corr, shifted, soft=True)
    assert torch.allclose(s[:, :, :3], torch.full_like(s[:, :, :3], 0.5))
    assert torch.allclose(s[:, :, 3], torch.full_like(s[:, :, 3], 0.5))  # its own cell still gets weight 0.5
    v = L.matching_loss(corr, shifted, ones, corr, ident, ones, soft=True)
    assert v.item() == pytest.approx(-(0.5 + 1.0))


def test_matching_loss_is_differentiable_in_transform_and_masks():
    B, H, W = 1, 3, 3
    corr = torch.rand(B, H, W, H, W, dtype=D)
    pts = (flow.grid_coords(H, W, dtype=D)[None] + 0.1 * torch.rand(B, H, W, 2, dtype=D)).requires_grad_(True)
    mask = torch.rand(B, H, W, dtype=D, requires_grad=True)
    v = L.matching_loss(corr, pts, mask, corr, pts, mask)
    v.backward()
    assert pts.grad.abs().sum() > 0 and mask.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------------------
# consistency


def test_cycle_loss_known_values():
    B = 3
    # inverse pair: 0
    assert L.cycle_consistency_loss(scale(2.0), scale(0.5), B, ref=torch.zeros((), dtype=D)).item() \
        == pytest.approx(0.0, abs=1e-5)
    # a translation by (0.3, 0.4) not undone: every point is off by 0.5 in both directions -> 1.0
    v = L.cycle_consistency_loss(translate(0.3, 0.4), identity, B, ref=torch.zeros((), dtype=D))
    assert v.item() == pytest.approx(1.0, abs=1e-6)
    # scale 2 vs identity: |2p - p| = |p|, both directions -> 2 * mean |p| over the 10 x 10 grid
    lin = np.linspace(-1, 1, 10)
    mean_norm = np.mean([math.hypot(x, y) for x in lin for y in lin])
    v = L.cycle_consistency_loss(scale(2.0), identity, B, ref=torch.zeros((), dtype=D))
    assert v.item() == pytest.approx(2 * mean_norm, abs=1e-6)
    # the paper's 10 x 10 = 100 points over [-1, 1]^2
    pts = L.sample_points(10)
    assert pts.shape == (100, 2) and pts.min() == -1 and pts.max() == 1


def test_transitivity_loss_known_values():
    B = 2
    ref = torch.zeros((), dtype=D)
    zero = L.transitivity_loss(translate(0.1, 0.0), translate(0.0, 0.2), translate(-0.1, -0.2), B, ref=ref)
    assert zero.item() == pytest.approx(0.0, abs=1e-5)
    v = L.transitivity_loss(translate(0.1, 0.0), translate(0.0, 0.2), identity, B, ref=ref)
    assert v.item() == pytest.approx(math.sqrt(0.1 ** 2 + 0.2 ** 2), abs=1e-6)
    # custom points: 2 points, T = scale 3 -> |3p - p| = 2|p|
    pts = torch.tensor([[1.0, 0.0], [0.0, -0.5]], dtype=D)
    v = L.transitivity_loss(scale(3.0), identity, identity, B, points=pts)
    assert v.item() == pytest.approx((2.0 + 1.0) / 2, abs=1e-6)


# --------------------------------------------------------------------------------------------------------
# co-segmentation losses


def _const_img(B, color, H=4, W=6):
    return torch.tensor(color, dtype=D).view(1, 3, 1, 1).expand(B, 3, H, W).clone()


def test_perceptual_contrastive_loss_known_values():
    B = 2
    feat = lambda x: x.mean((2, 3))  # noqa: E731  (c = 3)
    img_a, img_b = _const_img(B, [1.0, 1.0, 1.0]), _const_img(B, [0.5, 0.5, 0.5])
    ones = torch.ones(B, 1, 4, 6, dtype=D)
    # F(A^o) = (1,1,1), F(A^b) = 0, F(B^o) = (.5,.5,.5), F(B^b) = 0
    # d+ = 3 * 0.25 / 3 = 0.25; d- = max(0, 2 - (3 + 0.75) / 6) = 1.375
    v = L.perceptual_contrastive_loss(img_a, ones, img_b, ones, feat, margin=2.0)
    assert v.item() == pytest.approx(0.25 + 1.375)
    # margin below the separation: only d+
    v = L.perceptual_contrastive_loss(img_a, ones, img_b, ones, feat, margin=0.5)
    assert v.item() == pytest.approx(0.25)
    # masks of 0.5 everywhere: object and background images are equal -> d- = m; d+ = 3 * 0.25^2 / 3
    half = torch.full((B, 1, 2, 3), 0.5, dtype=D)  # resized to the image size
    v = L.perceptual_contrastive_loss(img_a, half, img_b, half, feat, margin=2.0)
    assert v.item() == pytest.approx(0.0625 + 2.0)


def test_perceptual_contrastive_loss_gradient_reaches_masks():
    feat = lambda x: x.mean((2, 3))  # noqa: E731
    img = torch.rand(1, 3, 4, 4, dtype=D)
    m = torch.full((1, 1, 4, 4), 0.5, dtype=D, requires_grad=True)
    L.perceptual_contrastive_loss(img, m, img.flip(-1), m, feat, margin=2.0).backward()
    assert m.grad.abs().sum() > 0


def test_binary_cross_entropy_values():
    t = torch.tensor([[1.0, 0.0, 0.5]], dtype=D)
    p = torch.tensor([[0.8, 0.3, 0.5]], dtype=D)
    expect = -(math.log(0.8) + math.log(0.7) + math.log(0.5)) / 3
    assert L.binary_cross_entropy(t, p).item() == pytest.approx(expect)


def test_task_consistency_loss_known_values():
    B, H, W = 2, 4, 6
    ident = flow.grid_coords(H, W, dtype=D)[None].expand(B, -1, -1, -1)
    half = torch.full((B, 1, H, W), 0.5, dtype=D)
    assert L.task_consistency_loss(half, half, ident, ident).item() == pytest.approx(2 * math.log(2))
    # left half 0.9, right half 0.1; identical masks, identity transforms: 2 * entropy(0.9)
    m = torch.full((B, 1, H, W), 0.1, dtype=D)
    m[..., : W // 2] = 0.9
    h09 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    assert L.task_consistency_loss(m, m, ident, ident).item() == pytest.approx(2 * h09)
    # mirrored transform (x -> -x) both ways: warped masks are flipped, cross-entropy with the opposite value
    mirror = ident.clone()
    mirror[..., 0] = -mirror[..., 0]
    ce = -(0.1 * math.log(0.9) + 0.9 * math.log(0.1))
    assert L.task_consistency_loss(m, m, mirror, mirror).item() == pytest.approx(2 * ce)
    # ... which the flipped masks satisfy as well as identity did
    assert L.task_consistency_loss(m, m.flip(-1), mirror, mirror).item() == pytest.approx(2 * h09)


# --------------------------------------------------------------------------------------------------------
# full objective


def test_full_loss_weights_and_terms():
    from semcorr.models.macosnet import MaCoSNet

    torch.manual_seed(0)
    model = MaCoSNet(image_size=64).train()
    a, b, c = torch.rand(3, 2, 3, 64, 64).unbind(0)
    out = model.training_outputs(a, b, c, torch.tensor([True, False]))
    assert out["triplet"][0].batch == 1
    perceptual = L.PerceptualFeatures("tiny")
    total, parts = L.MaCoSNetLoss(perceptual)(out)
    assert set(parts) == {"matching", "cycle", "trans", "contrast", "task"}
    assert total.item() == pytest.approx(sum(parts.values()), rel=1e-5)
    w = {"cycle": 2.0, "trans": 0.0, "contrast": 0.5, "task": 3.0}
    total2, parts2 = L.MaCoSNetLoss(perceptual, weights=w)(out)
    assert "trans" not in parts2
    expect = parts2["matching"] + 2 * parts2["cycle"] + 0.5 * parts2["contrast"] + 3 * parts2["task"]
    assert total2.item() == pytest.approx(expect, rel=1e-5)
    assert L.DEFAULT_WEIGHTS == {"matching": 1.0, "cycle": 1.0, "trans": 1.0, "contrast": 1.0, "task": 1.0}
    assert L.DEFAULT_MARGIN == 2.0
    with pytest.raises(ValueError, match="unknown loss weights"):
        L.MaCoSNetLoss(perceptual, weights={"grid": 1.0})
    with pytest.raises(ValueError, match="perceptual"):
        L.MaCoSNetLoss(None)


def test_perceptual_network_is_frozen():
    net = L.PerceptualFeatures("tiny").train()
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(2, 3, 32, 32)
    assert net(x).shape == (2, 64)
    with pytest.raises(ValueError, match="perceptual network"):
        L.PerceptualFeatures("vgg")
