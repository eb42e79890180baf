"""semcorr_ext.compat.sfnet against SFNet's published model.py (cvlab-yonsei/SFNet): matching_layer and
find_correspondence re-written here in float64 from reading that code, compared with ours."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semcorr_ext.compat import sfnet

H, W = 4, 5  # feature_H != feature_W catches any transposed axis


# ---- float64 references of the published computation --------------------------------------------------------
def ref_l2normalize(x, d=1):
    return x / ((x ** 2).sum(dim=d, keepdim=True) + 1e-6) ** 0.5


def ref_matching_layer(f1, f2):
    f1, f2 = ref_l2normalize(f1.double()), ref_l2normalize(f2.double())
    b, c, h1, w1 = f1.shape
    h2, w2 = f2.shape[2:]
    corr = torch.bmm(f2.reshape(b, c, h2 * w2).transpose(1, 2), f1.reshape(b, c, h1 * w1))
    return torch.relu(corr.reshape(b, h2 * w2, h1, w1))


def ref_find_correspondence(corr, beta, sigma, gt_mask=None):
    corr = corr.double()
    b, hw, h, w = corr.shape
    grid_x0, grid_y0 = np.meshgrid(np.linspace(-1, 1, w), np.linspace(-1, 1, h))
    grid_x0 = torch.tensor(grid_x0, dtype=torch.float64).expand(b, h, w).unsqueeze(1)
    grid_y0 = torch.tensor(grid_y0, dtype=torch.float64).expand(b, h, w).unsqueeze(1)
    if beta is not None:
        # apply_gaussian_kernel: Gaussian over target positions around each source position's best target
        idx = corr.max(dim=1)[1]
        idx_y = (idx // w).view(b, 1, 1, h, w).double()
        idx_x = (idx % w).view(b, 1, 1, h, w).double()
        x = torch.arange(w, dtype=torch.float64).view(1, 1, w, 1, 1).expand(b, 1, w, h, w)
        y = torch.arange(h, dtype=torch.float64).view(1, h, 1, 1, 1).expand(b, h, 1, h, w)
        g = torch.exp(-((x - idx_x) ** 2 + (y - idx_y) ** 2) / (2 * sigma ** 2)).reshape(b, hw, h, w)
        c = g * corr
        # softmax_with_temperature over the targets
        e = torch.exp(beta * (c - c.max(dim=1, keepdim=True)[0]))
        p = (e / e.sum(dim=1, keepdim=True)).view(b, h, w, h, w)
        x_normal = torch.tensor(np.linspace(-1, 1, w), dtype=torch.float64).view(1, w, 1, 1)
        y_normal = torch.tensor(np.linspace(-1, 1, h), dtype=torch.float64).view(1, h, 1, 1)
        grid_x = (p.sum(dim=1) * x_normal).sum(dim=1, keepdim=True)
        grid_y = (p.sum(dim=2) * y_normal).sum(dim=1, keepdim=True)
    else:  # discrete argmax, with the channel dim the published branch forgets
        idx = corr.max(dim=1, keepdim=True)[1]
        grid_x = ((idx % w).double() / (w - 1) - 0.5) * 2
        grid_y = ((idx // w).double() / (h - 1) - 0.5) * 2
    grid = torch.cat((grid_x.permute(0, 2, 3, 1), grid_y.permute(0, 2, 3, 1)), 3)
    flow = torch.cat((grid_x - grid_x0, grid_y - grid_y0), 1)
    if gt_mask is None:
        return grid, flow
    dxk = torch.tensor([-1.0, 0, 1], dtype=torch.float64).view(1, 1, 1, 3).expand(1, 2, 1, 3)
    dyk = torch.tensor([-1.0, 0, 1], dtype=torch.float64).view(1, 1, 3, 1).expand(1, 2, 3, 1)
    fdx = F.conv2d(F.pad(flow, (1, 1, 0, 0)), dxk) / 2
    fdy = F.conv2d(F.pad(flow, (0, 0, 1, 1)), dyk) / 2
    return grid, flow, torch.cat((fdx.abs() * gt_mask, fdy.abs() * gt_mask), 1)


def sfnet_volumes(gen):
    """SFNet.forward's S2T volume: two feature levels, matched, multiplied, L2-normalised over targets."""
    src3, tgt3 = torch.randn(2, 16, H, W, generator=gen), torch.randn(2, 16, H, W, generator=gen)
    src4, tgt4 = torch.randn(2, 24, H, W, generator=gen), torch.randn(2, 24, H, W, generator=gen)
    return (src3, tgt3), (src4, tgt4)


def test_matching_layer_and_the_s2t_correspondence_agree_with_the_published_computation():
    gen = torch.Generator().manual_seed(0)
    (s3, t3), (s4, t4) = sfnet_volumes(gen)
    match = sfnet.matching_layer()
    c3, c4 = match(s3, t3), match(s4, t4)
    assert c3.shape == (2, H * W, H, W)
    torch.testing.assert_close(c3.double(), ref_matching_layer(s3, t3), atol=1e-6, rtol=1e-5)
    corr = match.L2normalize(c3 * c4)
    corr_ref = ref_l2normalize(ref_matching_layer(s3, t3) * ref_matching_layer(s4, t4))
    torch.testing.assert_close(corr.double(), corr_ref, atol=1e-6, rtol=1e-5)

    fc = sfnet.find_correspondence(H, W, beta=50, kernel_sigma=5)
    assert fc.state_dict() == {} and fc.beta == 50 and fc.kernel_sigma == 5
    assert fc.grid_X.shape == (H, W) and fc.x_normal.shape == (W,) and fc.dx_kernel.shape == (1, 2, 1, 3)
    mask = (torch.rand(2, 1, H, W, generator=gen) > 0.3).float()
    grid, flow = fc(corr)
    grid_m, flow_m, smooth = fc(corr, mask)
    g_ref, f_ref, s_ref = ref_find_correspondence(corr_ref, 50, 5, mask.double())
    assert grid.shape == (2, H, W, 2) and flow.shape == (2, 2, H, W) and smooth.shape == (2, 2, H, W)
    for got, want in ((grid, g_ref), (flow, f_ref), (grid_m, g_ref), (flow_m, f_ref), (smooth, s_ref)):
        torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)
    # the soft-argmax is not a plain argmax here (beta * kernel makes it sub-cell)
    assert (grid.double() - ref_find_correspondence(corr_ref, None, 5)[0]).abs().max() > 1e-3


def test_kernel_soft_argmax_method_and_the_t2s_layout():
    gen = torch.Generator().manual_seed(1)
    corr = ref_l2normalize(torch.rand(1, H * W, H, W, generator=gen) ** 4).float()
    fc = sfnet.find_correspondence(H, W, beta=30, kernel_sigma=2)
    gx, gy = fc.kernel_soft_argmax(corr)
    assert gx.shape == gy.shape == (1, 1, H, W)
    g_ref = ref_find_correspondence(corr, 30, 2)[0]
    torch.testing.assert_close(torch.cat((gx, gy), 1).permute(0, 2, 3, 1).double(), g_ref, atol=1e-5, rtol=1e-5)


def test_discrete_argmax_branch():
    gen = torch.Generator().manual_seed(2)
    corr = torch.rand(2, H * W, H, W, generator=gen)
    grid, flow = sfnet.find_correspondence(H, W, beta=None, kernel_sigma=5)(corr)
    g_ref, f_ref = ref_find_correspondence(corr, None, 5)
    torch.testing.assert_close(grid.double(), g_ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(flow.double(), f_ref, atol=1e-6, rtol=1e-6)


def test_gradients_and_dtype_moves():
    gen = torch.Generator().manual_seed(3)
    fc = sfnet.find_correspondence(3, 4, beta=5, kernel_sigma=2).double()
    assert fc.grid_X.dtype == torch.float64
    corr = ref_l2normalize(torch.rand(1, 12, 3, 4, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda c: fc(c)[1], (corr,), eps=1e-6, atol=1e-5)


def test_errors_name_the_argument():
    fc = sfnet.find_correspondence(H, W, beta=50, kernel_sigma=5)
    with pytest.raises(ValueError, match="corr"):
        fc(torch.rand(1, H * W, W, H))
    with pytest.raises(ValueError, match="feature_H"):
        sfnet.find_correspondence(1, W, beta=50, kernel_sigma=5)
