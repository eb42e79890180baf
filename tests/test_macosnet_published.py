"""MaCoSNet's transform predictor equals the released computation (YunChunChen/MaCoSNet-pytorch
model/network.py: FeatureExtraction(normalization) -> FeatureCorrelation('3D') -> FeatureRegression, the image warp
of WeakMatchNet.warp_image, FeatureRegression2 on the warped image, geotnf TpsGridGen then the affine) to 1e-5.

The reference below is written here in float64 from reading that code (never copied): it takes the regressors'
weights as the released state dict holds them (``FeatureRegression.*``, ``FeatureRegression2.*``)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from semcorr.models.macosnet import MaCoSNet, TransformRegressor, tps_identity_parameters
from semcorr_ext import flow

D = torch.float64
MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=D).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=D).view(1, 3, 1, 1)


pytestmark = pytest.mark.usefixtures("one_thread")


def released_regressor_state(prefix, out_dim, identity, g, feature_size=15, kernel_sizes=(7, 5), channels=(128, 64)):
    """A state dict in the released FeatureRegression layout (conv.0 Conv2d, conv.1 BatchNorm2d, conv.2 ReLU,
    conv.3 Conv2d, conv.4 BatchNorm2d, conv.5 ReLU, linear), trained-looking values (BN statistics not 0/1)."""
    sd, cin, side = {}, feature_size * feature_size, feature_size
    for i, (k, c) in enumerate(zip(kernel_sizes, channels)):
        conv, bn = "%sconv.%d." % (prefix, 3 * i), "%sconv.%d." % (prefix, 3 * i + 1)
        sd[conv + "weight"] = torch.randn(c, cin, k, k, generator=g) / (cin * k * k) ** 0.5
        sd[conv + "bias"] = 0.1 * torch.randn(c, generator=g)
        sd[bn + "weight"] = 1 + 0.1 * torch.randn(c, generator=g)
        sd[bn + "bias"] = 0.1 * torch.randn(c, generator=g)
        sd[bn + "running_mean"] = 0.05 * torch.randn(c, generator=g)
        sd[bn + "running_var"] = 0.5 + torch.rand(c, generator=g)
        sd[bn + "num_batches_tracked"] = torch.tensor(1000)
        cin, side = c, side - k + 1
    n_in = cin * side * side
    sd[prefix + "linear.weight"] = 0.05 * torch.randn(out_dim, n_in, generator=g) / n_in ** 0.5
    sd[prefix + "linear.bias"] = identity + 0.05 * torch.randn(out_dim, generator=g)
    return sd


# ---------------------------------------------------------------------------------------------- reference
def feature_l2norm_ref(x):
    return x / torch.sqrt((x ** 2).sum(1) + 1e-6).unsqueeze(1)


def correlation_3d_ref(fa, fb):
    """FeatureCorrelation(shape='3D', normalization=True)(fa, fb): (b, h*w of A in column-major order, h, w of B)."""
    b, c, h, w = fa.shape
    a = fa.transpose(2, 3).reshape(b, c, h * w)
    bb = fb.reshape(b, c, h * w).transpose(1, 2)
    mul = torch.bmm(bb, a)
    corr = mul.view(b, h, w, h * w).transpose(2, 3).transpose(1, 2)
    return feature_l2norm_ref(F.relu(corr))


def regression_ref(x, sd, prefix, n_layers=2):
    for i in range(n_layers):
        conv, bn = "%sconv.%d." % (prefix, 3 * i), "%sconv.%d." % (prefix, 3 * i + 1)
        x = F.conv2d(x, sd[conv + "weight"].double(), sd[conv + "bias"].double())
        x = (x - sd[bn + "running_mean"].double().view(1, -1, 1, 1)) / torch.sqrt(
            sd[bn + "running_var"].double().view(1, -1, 1, 1) + 1e-5)
        x = F.relu(x * sd[bn + "weight"].double().view(1, -1, 1, 1) + sd[bn + "bias"].double().view(1, -1, 1, 1))
    return x.reshape(x.shape[0], -1) @ sd[prefix + "linear.weight"].double().T + sd[prefix + "linear.bias"].double()


def tps_points_ref(theta, pts, g=3, reg=0.0):
    """geotnf TpsGridGen.apply_transformation of (B, 2N) control targets at points (B, M, 2) (``reg_factor``)."""
    lin = torch.linspace(-1, 1, g, dtype=D)
    p_y, p_x = torch.meshgrid(lin, lin, indexing="xy")  # numpy meshgrid(axis, axis) -> (P_Y, P_X)
    px, py = p_x.reshape(-1, 1), p_y.reshape(-1, 1)
    n = g * g
    d2 = (px - px.T) ** 2 + (py - py.T) ** 2
    d2[d2 == 0] = 1
    K = d2 * torch.log(d2)
    if reg != 0:
        K = K + torch.eye(n, dtype=D) * reg
    P = torch.cat([torch.ones(n, 1, dtype=D), px, py], 1)
    L = torch.cat([torch.cat([K, P], 1), torch.cat([P.T, torch.zeros(3, 3, dtype=D)], 1)], 0)
    Li = torch.inverse(L)
    qx, qy = theta[:, :n].unsqueeze(2), theta[:, n:].unsqueeze(2)
    wx, wy = Li[:n, :n] @ qx, Li[:n, :n] @ qy            # (B, N, 1)
    ax, ay = Li[n:, :n] @ qx, Li[n:, :n] @ qy            # (B, 3, 1)
    x, y = pts[..., 0], pts[..., 1]                      # (B, M)
    dist = (x.unsqueeze(2) - px.view(1, 1, n)) ** 2 + (y.unsqueeze(2) - py.view(1, 1, n)) ** 2
    dist = torch.where(dist == 0, torch.ones_like(dist), dist)
    U = dist * torch.log(dist)
    xp = ax[:, 0] + ax[:, 1] * x + ax[:, 2] * y + (U * wx.transpose(1, 2)).sum(2)
    yp = ay[:, 0] + ay[:, 1] * x + ay[:, 2] * y + (U * wy.transpose(1, 2)).sum(2)
    return torch.stack([xp, yp], -1)


def released_transform_ref(net, sd, img_a, img_b, pts):
    """The released cascade for the transform of our T_ab (A -> B): WeakMatchNet regresses from
    FeatureCorrelation(f_B, f_A), warps B with it, regresses the TPS from FeatureCorrelation(f_Bwrp, f_A); a point
    p of A goes to aff(tps(p)). ``net`` maps ImageNet-normalised images to features (FeatureExtraction.model)."""
    a, b = (img_a.double() - MEAN) / STD, (img_b.double() - MEAN) / STD  # NormalizeImage
    fa, fb = feature_l2norm_ref(net(a)), feature_l2norm_ref(net(b))
    theta = regression_ref(correlation_3d_ref(fb, fa), sd, "FeatureRegression.")
    grid = F.affine_grid(theta.view(-1, 2, 3), list(b.shape), align_corners=True)  # PyTorch 1.1 semantics
    b_wrp = F.grid_sample(b, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    tps = regression_ref(correlation_3d_ref(feature_l2norm_ref(net(b_wrp)), fa), sd, "FeatureRegression2.")
    q = tps_points_ref(tps, pts)
    th = theta.view(-1, 2, 3)
    return theta, q @ th[:, :, :2].transpose(1, 2) + th[:, :, 2].unsqueeze(1)


# ---------------------------------------------------------------------------------------------- tests
def test_regressor_in_the_released_layout_equals_feature_regression():
    g = torch.Generator().manual_seed(0)
    sd = released_regressor_state("", 6, torch.tensor([1.0, 0, 0, 0, 1.0, 0]), g)
    reg = TransformRegressor(225, (15, 15), torch.zeros(6))
    reg.load_state_dict(sd)  # strict: the same keys and shapes as the released FeatureRegression
    reg.eval()
    x = torch.rand(2, 225, 15, 15, generator=g)
    torch.testing.assert_close(reg(x).double(), regression_ref(x.double(), sd, ""), rtol=1e-5, atol=1e-5)


def test_transform_equals_the_released_cascade():
    g = torch.Generator().manual_seed(1)
    model = MaCoSNet(backbone="tiny", image_size=240)  # stride 16: the released 15 x 15 grid
    assert model.grid == (15, 15)
    sd = {}
    sd.update(released_regressor_state("FeatureRegression.", 6, torch.tensor([1.0, 0, 0, 0, 1.0, 0]), g))
    sd.update(released_regressor_state("FeatureRegression2.", 18, tps_identity_parameters(3), g))
    model.affine_regressor.load_state_dict({k[len("FeatureRegression."):]: v for k, v in sd.items()
                                            if k.startswith("FeatureRegression.")})
    model.tps_regressor.load_state_dict({k[len("FeatureRegression2."):]: v for k, v in sd.items()
                                         if k.startswith("FeatureRegression2.")})
    model.eval()
    src, tgt = torch.rand(2, 3, 240, 240, generator=g), torch.rand(2, 3, 240, 240, generator=g)
    with torch.no_grad():
        out = model(src, tgt)
    # the features of the released FeatureExtraction.model: the same encoder on normalised images, in float64
    net = copy.deepcopy(model.backbone.net).double().eval()
    centres = flow.grid_coords(15, 15, (240, 240), dtype=D).reshape(1, -1, 2).expand(2, -1, -1)
    with torch.no_grad():
        theta_ref, field_ref = released_transform_ref(net, sd, src, tgt, centres)
    assert (theta_ref.view(-1, 6) - torch.tensor([1.0, 0, 0, 0, 1, 0], dtype=D)).abs().max() > 0.02  # not identity
    torch.testing.assert_close(out.extras["theta_affine"].double().reshape(-1, 6), theta_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.field.double().reshape(2, -1, 2), field_ref, rtol=1e-5, atol=1e-5)
    # the TPS stage moves the points beyond the affine (the cascade is exercised)
    aff_only = flow.affine_points(theta_ref.view(-1, 2, 3), centres)
    assert (field_ref - aff_only).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------- matching loss
OF = 227.0 / 210.0


def identity_mask_ref(h, w):
    """AffMatchScore's mask_id: (1, h*w, h, w), channel k is 1 at the cell (y, x) with k = x * h + y."""
    n = h * w
    m = torch.zeros(w, h, n, dtype=D)
    m.view(-1)[torch.arange(0, m.numel(), n + 1)] = 1
    return m.transpose(0, 1).transpose(1, 2).transpose(0, 1).unsqueeze(0)


def affine_grid_v2_ref(theta, h, w):
    """AffineGridGenV2 on linspace grids divided by offset_factor, then GeometricTnf's * offset_factor."""
    gy, gx = torch.meshgrid(torch.linspace(-1, 1, h, dtype=D), torch.linspace(-1, 1, w, dtype=D), indexing="ij")
    X, Y = (gx / OF)[None], (gy / OF)[None]
    t = theta.view(-1, 6)[:, :, None, None]
    return torch.stack([X * t[:, 0] + Y * t[:, 1] + t[:, 2], X * t[:, 3] + Y * t[:, 4] + t[:, 5]], -1) * OF


def match_score_ref(grid, matches, seg):
    """AffMatchScore / TpsMatchScore.forward with seg_mask, normalize_inlier_count: one score per pair (the
    intended per-pair seg weighting)."""
    B, n, h, w = matches.shape
    mask = F.grid_sample(identity_mask_ref(h, w).expand(B, -1, -1, -1), grid, align_corners=True)
    mask = mask / (mask + 1e-5).sum((1, 2, 3)).view(B, 1, 1, 1)
    return ((mask * matches).sum(1) * seg[:, 0]).sum((1, 2))


def composed_grid_ref(theta_aff, theta_tps, h, w, reg=0.2):
    """ComposedGeometricTnf (TpsMatchScore's: tps_reg_factor 0.2 from the train parser): the affine sampling grid, sampled at the TPS grid (both with the offset
    factor), out-of-bound values of either set to 1e10."""
    aff = affine_grid_v2_ref(theta_aff, h, w)
    gy, gx = torch.meshgrid(torch.linspace(-1, 1, h, dtype=D), torch.linspace(-1, 1, w, dtype=D), indexing="ij")
    pts = (torch.stack([gx, gy], -1) / OF).reshape(1, -1, 2).expand(theta_tps.shape[0], -1, -1)
    tps = tps_points_ref(theta_tps, pts, reg=reg).reshape(-1, h, w, 2) * OF
    inb = ((aff > -1) & (aff < 1)).all(-1, keepdim=True).to(D)
    aff = inb * aff + (inb - 1) * 1e10
    comp = F.grid_sample(aff.permute(0, 3, 1, 2), tps, align_corners=True).permute(0, 2, 3, 1)
    inb = ((tps > -1) & (tps < 1)).all(-1, keepdim=True).to(D)
    return inb * comp + (inb - 1) * 1e10


def test_matching_scores_equal_the_released_aff_and_tps_match_scores():
    from semcorr.losses import macosnet as L
    from semcorr.models.macosnet import GeometricTransform, tps_parameters_to_displacement

    g = torch.Generator().manual_seed(2)
    B, h, w = 2, 15, 15
    corr = torch.rand(B, h, w, h * w, dtype=D, generator=g) ** 8  # peaky, like a ReLU'd correlation
    corr = (corr / corr.norm(dim=-1, keepdim=True)).reshape(B, h, w, h, w)  # normalised over the other image
    theta = torch.tensor([[0.9, 0.05, 0.03, -0.04, 0.85, -0.02], [0.8, -0.1, -0.05, 0.1, 0.9, 0.04]], dtype=D)
    theta_tps = tps_identity_parameters(3).double()[None] + 0.05 * torch.randn(B, 18, dtype=D, generator=g)
    matches, seg = MaCoSNet.as_channels(corr), L.correlation_foreground(corr)[:, None]
    p = L.released_cell_points((h, w), dtype=D).reshape(-1, 2)
    fg = L.correlation_foreground(corr)
    aff_pts = flow.affine_points(theta.view(-1, 2, 3), p).reshape(B, h, w, 2)
    ours = L.inlier_score(corr, aff_pts, foreground=fg, offset_factor=L.RELEASED_OFFSET_FACTOR)
    ref = match_score_ref(affine_grid_v2_ref(theta, h, w), matches, seg)
    assert ref.min() > 1e-3
    torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-9)
    t = GeometricTransform(theta.view(-1, 2, 3), tps_parameters_to_displacement(theta_tps))
    comp = composed_grid_ref(theta, theta_tps, h, w)
    valid = L.released_tps_stage_valid(t.theta, t.tps, (h, w))
    # the cells the released composition keeps near the grid (1e10 times a stencil weight lands far away)
    assert torch.equal(valid, comp.abs().max(-1).values < 10)
    assert 0 < int((~valid).sum()) < valid.numel() // 4  # some TPS positions leave the grid: exercised
    pts = torch.where(valid[..., None], L.released_tps_stage(t.theta, t.tps, p).reshape(B, h, w, 2), 1e10)
    ours = L.inlier_score(corr, pts, foreground=fg, offset_factor=L.RELEASED_OFFSET_FACTOR)
    ref = match_score_ref(comp, matches, seg)
    torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-9)
    # and the loss is the released loss_match: -(mean over pairs of (aff_AB + aff_BA) / 2 + (tps_AB + tps_BA) / 2)
    corr_ba = corr.permute(0, 3, 4, 1, 2)
    corr_ba = (corr_ba / corr_ba.flatten(3).norm(dim=-1)[..., None, None])
    t_ba = GeometricTransform(theta.flip(0).view(-1, 2, 3), tps_parameters_to_displacement(theta_tps.flip(0)))
    out = {"corr_ab": corr, "corr_ba": corr_ba, "t_ab": t, "t_ba": t_ba}
    got = L.MaCoSNetLoss()._matching(out)
    m_ba, seg_ba = MaCoSNet.as_channels(corr_ba), L.correlation_foreground(corr_ba)[:, None]
    aff = (match_score_ref(affine_grid_v2_ref(theta, h, w), matches, seg)
           + match_score_ref(affine_grid_v2_ref(theta.flip(0), h, w), m_ba, seg_ba)) / 2
    tps = (match_score_ref(composed_grid_ref(theta, theta_tps, h, w), matches, seg)
           + match_score_ref(composed_grid_ref(theta.flip(0), theta_tps.flip(0), h, w), m_ba, seg_ba)) / 2
    torch.testing.assert_close(got, -(aff + tps).mean(), rtol=1e-7, atol=1e-9)
