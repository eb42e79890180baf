"""semcorr.losses.macosnet: every MaCoSNet loss on a case with a known answer."""
import math

import numpy as np
import pytest
import torch

from semcorr.losses import macosnet as L
from semcorr_ext import flow

D = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


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
    # the released loss: per direction and stage sum_p M(p) sum_q m(p, q) S(p, q) / (sum m + eps N^2), M = max_q S
    B, H, W = 2, 4, 4
    N, eps = H * W, 1e-5
    corr = _diag_corr(B, H, W)
    ident = flow.grid_coords(H, W, dtype=D)[None].expand(B, -1, -1, -1)
    # perfect matches: every cell scores 1, the mask mass is N -> -(N / (N + eps N^2)) per stage
    perfect = N / (N + eps * N * N)
    assert L.matching_loss(corr, ident, corr, ident).item() == pytest.approx(-perfect)
    assert L.matching_loss(corr, [ident, ident], corr, [ident, ident]).item() == pytest.approx(-2 * perfect)
    assert L.matching_loss(corr, ident, corr, ident, normalize=False).item() == pytest.approx(-N)
    # weaker correlation in A's right half (0.5 instead of 1): foreground 0.5 times inliers 0.5 there
    weak = corr.clone()
    weak[:, :, 2:] *= 0.5
    s_a = (8 * 1.0 + 8 * 0.25) / (N + eps * N * N)
    assert L.matching_loss(weak, ident, corr, ident).item() == pytest.approx(-(s_a + perfect) / 2)
    assert L.matching_loss(weak, ident, corr, ident, foreground="none").item() == pytest.approx(
        -((8 * 1.0 + 8 * 0.5) / (N + eps * N * N) + perfect) / 2)
    # one cell off: no correlation where the transform points -> 0
    shifted = ident.clone()
    shifted[..., 0] += 2.0 / (W - 1)
    assert L.matching_loss(corr, shifted, corr, shifted).item() == pytest.approx(0.0, abs=1e-12)
    # half a cell off: weight 0.5 on the own cell everywhere; the last column keeps half of its mass inside
    shifted = ident.clone()
    shifted[..., 0] += 1.0 / (W - 1)
    half = (N * 0.5) / (12 * 1.0 + 4 * 0.5 + eps * N * N)
    assert L.inlier_score(corr, shifted, foreground=L.correlation_foreground(corr)).tolist() == pytest.approx(
        [half, half])
    assert L.matching_loss(corr, shifted, corr, ident).item() == pytest.approx(-(half + perfect) / 2)
    with pytest.raises(ValueError, match="foreground must be 'correlation' or 'none'"):
        L.matching_loss(corr, ident, corr, ident, foreground="decoder")


def test_matching_loss_gradient_reaches_the_transform_and_never_the_decoder_mask():
    from semcorr.models.macosnet import MaCoSNet

    B, H, W = 1, 3, 3
    corr = torch.rand(B, H, W, H, W, dtype=D)
    pts = (flow.grid_coords(H, W, dtype=D)[None] + 0.1 * torch.rand(B, H, W, 2, dtype=D)).requires_grad_(True)
    v = L.matching_loss(corr, pts, corr, pts)
    v.backward()
    assert pts.grad.abs().sum() > 0
    # the full objective at the released weights: the co-segmentation decoder gets no gradient at all (the old
    # loss weighted by the decoder mask pushed every mask pixel to foreground: d loss / d mask < 0 everywhere)
    torch.manual_seed(0)
    model = MaCoSNet(backbone="tiny", image_size=64).train()
    out = model.training_outputs(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
    out["mask_a"].retain_grad()
    total, parts = L.MaCoSNetLoss()(out)
    assert set(parts) == {"matching", "cycle"}
    total.backward()
    assert out["mask_a"].grad is None or not out["mask_a"].grad.any()
    assert all(p.grad is None or not p.grad.any() for p in model.decoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.affine_regressor.parameters())
    # the value does not depend on the masks
    out2 = dict(out, mask_a=torch.ones_like(out["mask_a"]), mask_b=torch.zeros_like(out["mask_b"]))
    assert L.MaCoSNetLoss()(out2)[0].item() == pytest.approx(total.item())


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


def test_released_affine_cycle_loss_known_values():
    B = 2
    ident = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=D).expand(B, -1, -1)
    scale2 = torch.tensor([[2.0, 0, 0], [0, 2.0, 0]], dtype=D).expand(B, -1, -1)
    half = torch.tensor([[0.5, 0, 0], [0, 0.5, 0]], dtype=D).expand(B, -1, -1)
    assert L.affine_cycle_loss(scale2, half).item() == pytest.approx(0.0, abs=1e-9)  # inverse pair
    shift = torch.tensor([[1.0, 0, 0.1], [0, 1.0, 0]], dtype=D).expand(B, -1, -1)
    # 0.1 unit in x not undone, both ways: (0.1 * (240 - 1) / 2)^2 pixels^2
    assert L.affine_cycle_loss(shift, ident).item() == pytest.approx((0.1 * 119.5) ** 2)
    # scale 2 vs identity: the error is |u| at the released points, u = (2.4 i - 1 - 119.5) / 119.5
    u = (np.arange(100) * 2.4 - 1 - 119.5) / 119.5
    mean_sq = 2 * np.mean(u ** 2)  # x and y contribute alike on the square grid
    assert L.affine_cycle_loss(scale2, ident).item() == pytest.approx(119.5 ** 2 * mean_sq, rel=1e-9)


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
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 4, 4, dtype=D, generator=g)
    # not 0.5: there object and background images coincide and d- has a zero gradient (the test then passed on
    # rounding noise only)
    m = (0.2 + 0.6 * torch.rand(1, 1, 4, 4, dtype=D, generator=g)).requires_grad_(True)
    L.perceptual_contrastive_loss(img, m, img.flip(-1), m, feat, margin=2.0).backward()
    assert m.grad.abs().sum() > 1e-3


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
    model = MaCoSNet(backbone="tiny", image_size=64).train()
    with torch.no_grad():  # off the identity, so that the matching geometry matters
        model.affine_regressor.linear.bias.copy_(torch.tensor([0.9, 0.1, 0.05, -0.1, 0.8, 0.0]))
        model.tps_regressor.linear.bias.add_(0.05 * torch.randn(18))
    a, b, c = torch.rand(3, 2, 3, 64, 64).unbind(0)
    out = model.training_outputs(a, b, c, torch.tensor([True, False]))
    assert out["triplet"][0].batch == 1
    perceptual = L.PerceptualFeatures("tiny")
    # the released train.sh: matching + cycle at weight 1
    assert L.DEFAULT_WEIGHTS == {"matching": 1.0, "cycle": 1.0, "trans": 0.0, "contrast": 0.0, "task": 0.0}
    assert L.DEFAULT_MARGIN == 2.0
    total, parts = L.MaCoSNetLoss()(out)
    assert set(parts) == {"matching", "cycle"} and total.item() == pytest.approx(sum(parts.values()), rel=1e-5)
    # the released grid geometry (default): T at linspace(-1, 1) / (227 / 210), placed back with * 227 / 210
    p = L.released_cell_points((4, 4), dtype=out["corr_ab"].dtype).reshape(-1, 2)
    t_ab, t_ba = out["t_ab"], out["t_ba"]

    def tps_stage(t):  # cells the released composition sends out of bounds score nothing
        ok = L.released_tps_stage_valid(t.theta, t.tps, (4, 4))
        return torch.where(ok[..., None], L.released_tps_stage(t.theta, t.tps, p).reshape(2, 4, 4, 2), 1e10)

    stages = ([flow.affine_points(t_ab.theta, p).reshape(2, 4, 4, 2), tps_stage(t_ab)],
              [flow.affine_points(t_ba.theta, p).reshape(2, 4, 4, 2), tps_stage(t_ba)])
    expect = L.matching_loss(out["corr_ab"], stages[0], out["corr_ba"], stages[1],
                             offset_factor=L.RELEASED_OFFSET_FACTOR)
    assert parts["matching"] == pytest.approx(expect.item())
    # the exact cell centres of the working image (offset_factor=None): the points of training_outputs
    keys = (["points_ab_affine", "points_ab"], ["points_ba_affine", "points_ba"])
    exact = L.matching_loss(out["corr_ab"], [out[k] for k in keys[0]], out["corr_ba"], [out[k] for k in keys[1]],
                            image_size_a=(64, 64), image_size_b=(64, 64))
    assert L.MaCoSNetLoss(offset_factor=None)(out)[1]["matching"] == pytest.approx(exact.item())
    assert abs(exact.item() - expect.item()) > 1e-4  # the two geometries differ off the identity
    assert parts["cycle"] == pytest.approx(L.affine_cycle_loss(out["t_ab"].theta, out["t_ba"].theta).item())
    every = {k: 1.0 for k in L.DEFAULT_WEIGHTS}
    _, parts_all = L.MaCoSNetLoss(perceptual, weights=every)(out)
    assert set(parts_all) == {"matching", "cycle", "trans", "contrast", "task"}
    _, paper = L.MaCoSNetLoss(cycle="paper")(out)
    assert paper["cycle"] == pytest.approx(L.cycle_consistency_loss(out["t_ab"], out["t_ba"], 2).item())
    w = {"cycle": 2.0, "trans": 0.0, "contrast": 0.5, "task": 3.0}
    total2, parts2 = L.MaCoSNetLoss(perceptual, weights=w)(out)
    assert "trans" not in parts2
    expect = parts2["matching"] + 2 * parts2["cycle"] + 0.5 * parts2["contrast"] + 3 * parts2["task"]
    assert total2.item() == pytest.approx(expect, rel=1e-5)
    with pytest.raises(ValueError, match="unknown loss weights"):
        L.MaCoSNetLoss(perceptual, weights={"grid": 1.0})
    with pytest.raises(ValueError, match="perceptual"):
        L.MaCoSNetLoss(None, weights={"contrast": 1.0})
    with pytest.raises(ValueError, match="cycle must be"):
        L.MaCoSNetLoss(cycle="both")


def test_perceptual_network_is_frozen():
    net = L.PerceptualFeatures("tiny").train()
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(2, 3, 32, 32)
    assert net(x).shape == (2, 64)
    with pytest.raises(ValueError, match="perceptual network"):
        L.PerceptualFeatures("vgg")
