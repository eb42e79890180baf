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


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
    sd[prefix + "linear.weight"] = 0.05 * torch.randn(out_dim, cin * side * side, generator=g) / (cin * side * side) ** 0.5
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


def tps_points_ref(theta, pts, g=3):
    """geotnf TpsGridGen.apply_transformation of (B, 2N) control targets at points (B, M, 2), reg_factor 0."""
    lin = torch.linspace(-1, 1, g, dtype=D)
    p_y, p_x = torch.meshgrid(lin, lin, indexing="xy")  # numpy meshgrid(axis, axis) -> (P_Y, P_X)
    px, py = p_x.reshape(-1, 1), p_y.reshape(-1, 1)
    n = g * g
    d2 = (px - px.T) ** 2 + (py - py.T) ** 2
    d2[d2 == 0] = 1
    K = d2 * torch.log(d2)
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
