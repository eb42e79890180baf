"""semcorr_ext.flow: coordinate conventions, warping, keypoint transfer, consistency."""
import math

import pytest
import torch

from semcorr_ext import flow


def affine_px(pts, A, t):
    return pts @ A.T + t


A = torch.tensor([[0.9, -0.15], [0.2, 1.05]], dtype=torch.float64)
T = torch.tensor([6.0, -4.0], dtype=torch.float64)


def affine_field(grid, src_size, tgt_size):
    """Exact match field of the affine map src pixel -> A x + T sampled at the grid's cell centres."""
    g = flow.grid_coords(*grid, src_size, dtype=torch.float64)
    src_px = flow.unnormalize_coords(g, src_size)
    return flow.normalize_coords(affine_px(src_px, A, T), tgt_size)[None]


def test_normalize_roundtrip_and_corners():
    size = (7, 11)
    pix = torch.tensor([[0.0, 0.0], [10.0, 6.0], [5.0, 3.0]], dtype=torch.float64)
    n = flow.normalize_coords(pix, size)
    assert torch.allclose(n, torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64))
    x = torch.randn(4, 5, 2, dtype=torch.float64) * 10
    assert torch.allclose(flow.unnormalize_coords(flow.normalize_coords(x, size), size), x)


def test_normalize_one_pixel_side_matches_grid_sample():
    # a 1-pixel-wide image: every coordinate maps to pixel 0
    assert flow.unnormalize_coords(torch.tensor([[0.3, 1.0]]), (2, 1))[0, 0] == 0.0
    assert flow.normalize_coords(torch.tensor([[0.0, 1.0]]), (2, 1))[0, 0] == -1.0


def test_grid_coords_identity_and_cell_centres():
    g = flow.grid_coords(3, 4)
    assert g.shape == (3, 4, 2)
    assert torch.allclose(g[0, :, 0], torch.linspace(-1, 1, 4))
    assert torch.allclose(g[:, 0, 1], torch.linspace(-1, 1, 3))
    # 2x3 grid over an 8x12 image: 4-pixel cells centred at 1.5, 5.5, 9.5 (x) and 1.5, 5.5 (y)
    px = flow.unnormalize_coords(flow.grid_coords(2, 3, (8, 12), dtype=torch.float64), (8, 12))
    assert torch.allclose(px[0, :, 0], torch.tensor([1.5, 5.5, 9.5], dtype=torch.float64))
    assert torch.allclose(px[:, 0, 1], torch.tensor([1.5, 5.5], dtype=torch.float64))


def test_image_to_grid_coords_maps_cell_centres_to_grid_linspace():
    grid, img = (5, 7), (40, 35)
    g = flow.grid_coords(*grid, img, dtype=torch.float64)
    gg = flow.image_to_grid_coords(g, grid, img)
    assert torch.allclose(gg, flow.grid_coords(*grid, dtype=torch.float64), atol=1e-12)


def test_field_flow_roundtrip():
    field = torch.rand(2, 4, 5, 2, dtype=torch.float64) * 2 - 1
    flo = flow.field_to_flow(field, (16, 20), (30, 25))
    assert torch.allclose(flow.flow_to_field(flo, (16, 20), (30, 25)), field)
    # identity field between equal-size images has zero flow
    ident = flow.grid_coords(6, 8, (12, 16), dtype=torch.float64)[None]
    assert flow.field_to_flow(ident, (12, 16), (12, 16)).abs().max() < 1e-12
    # an affine field's flow is A x + T - x at the cell centres
    f = affine_field((4, 5), (16, 20), (24, 30))
    centres = flow.unnormalize_coords(flow.grid_coords(4, 5, (16, 20), dtype=torch.float64), (16, 20))
    assert torch.allclose(flow.field_to_flow(f, (16, 20), (24, 30))[0], affine_px(centres, A, T) - centres)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_warp_identity_returns_mask(mode):
    torch.manual_seed(0)
    mask = torch.rand(2, 9, 13) > 0.5
    ident = flow.grid_coords(9, 13)[None].expand(2, -1, -1, -1)
    out = flow.warp(mask, ident, mode=mode)
    assert out.shape == (2, 9, 13)
    assert torch.allclose(out, mask.float(), atol=1e-5)
    img = torch.rand(2, 3, 9, 13, dtype=torch.float64)
    ident64 = flow.grid_coords(9, 13, dtype=torch.float64)[None].expand(2, -1, -1, -1)
    assert torch.allclose(flow.warp(img, ident64, mode=mode), img, atol=1e-10)


def test_warp_shift_reads_from_shifted_position():
    img = torch.arange(5 * 6, dtype=torch.float32).reshape(1, 1, 5, 6)
    px = flow.unnormalize_coords(flow.grid_coords(5, 6), (5, 6)) + torch.tensor([2.0, 1.0])
    out = flow.warp(img, flow.normalize_coords(px, (5, 6))[None])
    assert torch.allclose(out[0, 0, :4, :4], img[0, 0, 1:5, 2:6], atol=1e-4)
    assert (out[0, 0, 4] == 0).all()  # outside the target: zeros padding


@pytest.mark.parametrize("grid,src,tgt", [((6, 8), (48, 64), (50, 70)), ((30, 20), (30, 20), (40, 30))])
def test_transfer_through_affine_field(grid, src, tgt):
    field = affine_field(grid, src, tgt)
    torch.manual_seed(0)
    # keypoints between the outermost cell centres (no border clamping involved)
    cs = flow.unnormalize_coords(flow.grid_coords(*grid, src, dtype=torch.float64), src)
    lo, hi = cs[0, 0], cs[-1, -1]
    kps = (lo + torch.rand(1, 25, 2, dtype=torch.float64) * (hi - lo))
    out = flow.transfer_keypoints(field, kps, src, tgt)
    assert out.shape == (1, 25, 2)
    assert torch.allclose(out, affine_px(kps, A, T), atol=1e-9)


def test_transfer_clamps_outside_cell_centres():
    field = affine_field((4, 4), (16, 16), (16, 16))
    kps = torch.tensor([[[0.0, 0.0], [1.5, 1.5]]], dtype=torch.float64)  # pixel 0 is before the first centre
    out = flow.transfer_keypoints(field, kps, (16, 16), (16, 16))
    first = affine_px(torch.tensor([1.5, 1.5], dtype=torch.float64), A, T)
    assert torch.allclose(out[0, 0], first) and torch.allclose(out[0, 1], first)


def test_transfer_preserves_padded_keypoints():
    field = affine_field((6, 8), (48, 64), (50, 70)).expand(2, -1, -1, -1)
    kps = torch.tensor([[[10.0, 12.0], [-1.0, -1.0], [30.0, 20.0]],
                        [[-1.0, -1.0], [-1.0, -1.0], [40.0, 30.0]]], dtype=torch.float64)
    out = flow.transfer_keypoints(field, kps, (48, 64), (50, 70))
    pad = (kps < 0).any(-1)
    assert (out[pad] == -1).all()
    assert torch.allclose(out[~pad], affine_px(kps[~pad], A, T))


def test_consistency_mask_affine_roundtrip_and_outliers():
    src, tgt = (24, 32), (24, 32)
    fwd = affine_field((12, 16), src, tgt)
    # backward field: the inverse affine map sampled at the target cell centres
    tc = flow.unnormalize_coords(flow.grid_coords(12, 16, tgt, dtype=torch.float64), tgt)
    bwd = flow.normalize_coords((tc - T) @ torch.linalg.inv(A).T, src)[None]
    ok = flow.consistency_mask(fwd, bwd, 0.5, src, tgt)
    assert ok.shape == (1, 12, 16)
    # cells whose forward match lands inside the hull of target cell centres round-trip exactly
    fpx = flow.unnormalize_coords(fwd, tgt)[0]
    inside = (fpx >= tc[0, 0]).all(-1) & (fpx <= tc[-1, -1]).all(-1)
    assert inside.sum() > 50 and ok[0][inside].all()
    bad = fwd.clone()
    bad[0, 5, 5] = torch.tensor([0.9, -0.9], dtype=torch.float64)
    bad[0, 6, 8] = torch.tensor([-0.8, 0.7], dtype=torch.float64)
    ok2 = flow.consistency_mask(bad, bwd, 0.5, src, tgt)
    assert not ok2[0, 5, 5] and not ok2[0, 6, 8]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="field"):
        flow.transfer_keypoints(torch.zeros(1, 4, 4), torch.zeros(1, 3, 2), (4, 4), (4, 4))
    with pytest.raises(ValueError, match="kps"):
        flow.transfer_keypoints(torch.zeros(2, 4, 4, 2), torch.zeros(3, 3, 2), (4, 4), (4, 4))
    with pytest.raises(ValueError, match="size"):
        flow.normalize_coords(torch.zeros(3, 2), (0, 4))
    with pytest.raises(ValueError, match="batch"):
        flow.warp(torch.zeros(2, 1, 4, 4), torch.zeros(3, 4, 4, 2))
    assert math.isclose(float(flow.normalize_coords(torch.tensor([[3.0, 0.0]]), (1, 4))[0, 0]), 1.0)
