"""semcorr_ext.flow parametric transforms: affine / TPS point maps and sampling grids."""
import math

import pytest
import torch
import torch.nn.functional as F

from semcorr_ext import flow

D = torch.float64
IDENTITY = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=D)


def known_affine(angle=0.3, scale=1.2, tx=0.1, ty=-0.2):
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return torch.tensor([[[c, -s, tx], [s, c, ty]]], dtype=D)


@pytest.mark.parametrize("size,image_size", [((5, 7), None), ((4, 6), (64, 96)), ((1, 3), None)])
def test_identity_parameters_give_identity_grid(size, image_size):
    ref = flow.grid_coords(*size, image_size, dtype=D)[None].expand(2, -1, -1, -1)
    assert torch.allclose(flow.affine_grid(IDENTITY.expand(2, -1, -1), size, image_size), ref, atol=1e-12)
    assert torch.allclose(flow.tps_grid(torch.zeros(2, 9, 2, dtype=D), size, image_size), ref, atol=1e-12)
    assert torch.allclose(flow.tps_grid(torch.zeros(2, 16, 2, dtype=D), size, image_size), ref, atol=1e-12)


def test_identity_grid_warp_is_identity():
    img = torch.rand(1, 3, 6, 9, dtype=D)
    out = F.grid_sample(img, flow.affine_grid(IDENTITY, (6, 9)), align_corners=True)
    assert torch.allclose(out, img, atol=1e-12)
    out = F.grid_sample(img, flow.tps_grid(torch.zeros(1, 9, 2, dtype=D), (6, 9)), align_corners=True)
    assert torch.allclose(out, img, atol=1e-12)


def test_affine_grid_values_by_hand_and_torch_agreement():
    theta = torch.tensor([[[2.0, 0.0, 0.5], [0.0, -1.0, 0.25]]], dtype=D)
    g = flow.affine_grid(theta, (3, 3))  # points -1, 0, 1 per axis
    # p = (x, y) = (1, -1) (row 0, col 2) -> (2 * 1 + 0.5, -1 * -1 + 0.25) = (2.5, 1.25)
    assert torch.allclose(g[0, 0, 2], torch.tensor([2.5, 1.25], dtype=D))
    assert torch.allclose(g[0, 1, 1], torch.tensor([0.5, 0.25], dtype=D))
    th = torch.randn(3, 2, 3, dtype=D)
    assert torch.allclose(flow.affine_grid(th, (5, 4)), F.affine_grid(th, (3, 1, 5, 4), align_corners=True),
                          atol=1e-12)
    # flat (B, 6) parameters are accepted
    assert torch.allclose(flow.affine_grid(th.reshape(3, 6), (5, 4)), flow.affine_grid(th, (5, 4)))


def test_known_affine_recovered_by_least_squares():
    theta = known_affine()
    grid = flow.affine_grid(theta, (8, 10))
    src = flow.grid_coords(8, 10, dtype=D).reshape(1, -1, 2)
    fit = flow.fit_affine(src, grid.reshape(1, -1, 2))
    assert torch.allclose(fit, theta, atol=1e-10)


def test_known_affine_recovered_by_gradient_steps():
    target = flow.affine_grid(known_affine(0.2, 0.9, -0.1, 0.15), (6, 6))
    theta = IDENTITY.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        loss = ((flow.affine_grid(theta, (6, 6)) - target) ** 2).mean()
        loss.backward()
        opt.step()
    assert torch.allclose(theta.detach(), known_affine(0.2, 0.9, -0.1, 0.15), atol=1e-3)


def test_invert_affine():
    th = known_affine()
    p = torch.rand(1, 20, 2, dtype=D) * 2 - 1
    back = flow.affine_points(flow.invert_affine(th), flow.affine_points(th, p))
    assert torch.allclose(back, p, atol=1e-12)


def test_tps_interpolates_control_points():
    torch.manual_seed(0)
    d = torch.randn(2, 9, 2, dtype=D) * 0.1
    ctrl = flow.tps_control_points(3, dtype=D)
    assert torch.allclose(ctrl[1], torch.tensor([0.0, -1.0], dtype=D))  # row-major: x varies fastest
    assert torch.allclose(flow.tps_points(d, ctrl), ctrl + d, atol=1e-12)
    # flat (B, 2K) layout (x_1..x_K, y_1..y_K)
    flat = torch.cat([d[..., 0], d[..., 1]], 1)
    assert torch.allclose(flow.tps_points(flat, ctrl), ctrl + d, atol=1e-12)
    # the 3x3 grid includes the image centre and the corners of the grid
    g = flow.tps_grid(d, (5, 5))
    assert torch.allclose(g[:, 2, 2], ctrl[4] + d[:, 4], atol=1e-12)
    assert torch.allclose(g[:, 0, 0], ctrl[0] + d[:, 0], atol=1e-12)


def test_tps_reproduces_affine_maps_exactly():
    theta = known_affine(-0.25, 1.1, 0.05, 0.1)
    ctrl = flow.tps_control_points(3, dtype=D)
    d = flow.affine_points(theta, ctrl) - ctrl
    assert torch.allclose(flow.tps_grid(d, (7, 9)), flow.affine_grid(theta, (7, 9)), atol=1e-10)


def test_tps_is_smooth_and_nonaffine():
    # moving only the centre control point bends the grid: the centre moves fully, the corners do not
    d = torch.zeros(1, 9, 2, dtype=D)
    d[0, 4, 0] = 0.2
    g = flow.tps_grid(d, (5, 5))
    ident = flow.grid_coords(5, 5, dtype=D)
    moved = (g[0] - ident)[..., 0]
    assert moved[2, 2] == pytest.approx(0.2)
    assert moved[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert 0 < moved[1, 1] < 0.2


def test_transforms_are_differentiable():
    th = (IDENTITY + 0.1 * torch.randn(1, 2, 3, dtype=D)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: flow.affine_grid(t, (3, 4)), (th,))
    d = (0.1 * torch.randn(1, 9, 2, dtype=D)).requires_grad_(True)
    p = (torch.rand(1, 5, 2, dtype=D) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: flow.tps_points(a, b), (d, p))


def test_bad_inputs():
    with pytest.raises(ValueError, match="theta"):
        flow.affine_grid(torch.zeros(1, 3, 3), (2, 2))
    with pytest.raises(ValueError, match="square"):
        flow.tps_points(torch.zeros(1, 5, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="grid_size"):
        flow.tps_control_points(1)
