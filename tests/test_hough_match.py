"""hough_match's own cases: HPF's published rhm, per-pair sizes, clamping, fuzzing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_hough as bh
from semcorr_ext import ops, reference
from semcorr_ext.reference import hough as ref_hough
from conftest import assert_close
from op_contract import hough_inputs as make


def test_per_pair_sizes_and_tensor_sizes():
    app, sc, tc = make(3, 11, 13)
    ss = [(50, 40), (45, 41), (52, 39)]
    ts = torch.tensor([[60.0, 30.0], [61.0, 33.0], [58.0, 29.0]])
    out = ops.hough_match(app, sc, tc, ss, ts, ncells=50)
    assert_close(out, reference.hough_match(app, sc, tc, ss, ts, ncells=50))
    for b in range(3):  # each pair is independent
        one = ops.hough_match(app[b:b + 1], sc[b:b + 1], tc[b:b + 1], ss[b], tuple(ts[b].tolist()), ncells=50)
        assert torch.equal(one[0], out[b])


def test_values_by_hand():
    # 2x2 images, 1 cell per pixel-ish: hs 4x4, ncells=16 -> cell 1, nbins 5x5.
    # sources at (0,0) and (1,1); targets at (0,0) and (1,1). Votes: (2-s)+t per axis.
    app = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    sc = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    tc = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    # bins: (m0,n0) -> (2,2); (m0,n1) -> (3,3); (m1,n0) -> (1,1); (m1,n1) -> (2,2)
    # votes without smoothing: bin(2,2) = 1 + 4 = 5, bin(3,3) = 2, bin(1,1) = 3
    out = ops.hough_match(app, sc, tc, (2, 2), (2, 2), ncells=16, smooth=False)
    assert torch.equal(out, torch.tensor([[[1.0 * 5, 2.0 * 2], [3.0 * 3, 4.0 * 5]]]))
    # with smoothing: each bin picks up its diagonal neighbours weighted by the Gaussian
    k = ref_hough.hpf_gaussian7()
    c, d1, d2 = k[3, 3].item(), k[4, 4].item(), k[5, 5].item()
    v22 = 5 * c + 2 * d1 + 3 * d1
    v33 = 2 * c + 5 * d1 + 3 * d2
    v11 = 3 * c + 5 * d1 + 2 * d2
    out = ops.hough_match(app, sc, tc, (2, 2), (2, 2), ncells=16, smooth=True)
    expected = torch.tensor([[[1.0 * v22, 2.0 * v33], [3.0 * v11, 4.0 * v22]]])
    assert_close(out, expected)


def test_gaussian_is_hpfs():
    assert_close(ref_hough.hpf_gaussian7(torch.float32), bh.hpf_gaussian2d(7), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("grid", [(15, 20, 13, 17), (30, 38, 36, 35)])
def test_matches_published_rhm(grid):
    """HPF's rhm (per-source Hough table, conv2d, index_select) on real receptive-field geometry, float32."""
    hs, ws, ht, wt = grid
    src_box = bh.hpf_receptive_fields(43, 8, hs, ws)
    tgt_box = bh.hpf_receptive_fields(43, 8, ht, wt)
    sc, tc = bh.hpf_box_center(src_box), bh.hpf_box_center(tgt_box)
    src_wh, tgt_wh = (ws * 8 + 3, hs * 8 + 1), (wt * 8 + 5, ht * 8 + 2)
    g = torch.Generator().manual_seed(1)
    app = torch.rand(len(sc), len(tc), generator=g).pow(3)
    expected = bh.hpf_rhm(app, sc, tc, src_wh, tgt_wh)
    out = ops.hough_match(app[None], sc[None], tc[None], src_wh, tgt_wh)[0]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=0)
    # and the bins agree exactly with HPF's materialised bin-id matrix
    nbx, nby, cell = bh.hpf_build_hspace(src_wh, tgt_wh, 8192)
    ours, _ = ref_hough.hough_match_bins(sc, tc, src_wh, tgt_wh)
    assert torch.equal(ours, bh.hpf_bin_ids(src_wh, sc, tc, cell, nbx))


def test_matches_published_rhm_random_centres_no_smooth():
    app, sc, tc = make(1, 300, 280, src_wh=(240, 180), tgt_wh=(200, 220))
    expected = bh.hpf_rhm(app[0], sc[0], tc[0], (240, 180), (200, 220), smooth=False)
    out = ops.hough_match(app, sc, tc, (240, 180), (200, 220), smooth=False)[0]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=0)


def test_out_of_image_centres_clamp():
    app, sc, tc = make(1, 6, 7)
    sc[0, 0] = torch.tensor([-500.0, 1e6])
    tc[0, 1] = torch.tensor([float("nan"), -3.0])
    assert_close(ops.hough_match(app, sc, tc, (50, 40), (60, 30), ncells=40),
                 reference.hough_match(app, sc, tc, (50, 40), (60, 30), ncells=40))


def test_float64_centres_with_float32_app():
    app, sc, tc = make(2, 9, 8, cdtype=torch.float64)
    assert_close(ops.hough_match(app, sc, tc, (50, 40), (60, 30), ncells=30),
                 reference.hough_match(app, sc, tc, (50, 40), (60, 30), ncells=30))


def test_non_contiguous():
    app, sc, tc = make(2, 12, 10)
    app_t = app.transpose(1, 2).contiguous().transpose(1, 2)
    sc_nc = torch.cat([sc, sc], dim=2)[..., :2]
    assert not app_t.is_contiguous() and not sc_nc.is_contiguous()
    assert_close(ops.hough_match(app_t, sc_nc, tc, (50, 40), (60, 30), ncells=20),
                 reference.hough_match(app, sc, tc, (50, 40), (60, 30), ncells=20))


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), Ns=st.integers(1, 20), Nt=st.integers(1, 20), ncells=st.integers(1, 300),
       w=st.integers(1, 80), h=st.integers(1, 80), smooth=st.booleans(), transpose=st.booleans(),
       seed=st.integers(0, 2**16))
def test_fuzz(B, Ns, Nt, ncells, w, h, smooth, transpose, seed):
    app, sc, tc = make(B, Ns, Nt, src_wh=(w, h), tgt_wh=(h, w), seed=seed)
    if transpose:
        app = app.transpose(1, 2).contiguous().transpose(1, 2)
    assert_close(ops.hough_match(app, sc, tc, (w, h), (h, w), ncells=ncells, smooth=smooth),
                 reference.hough_match(app, sc, tc, (w, h), (h, w), ncells=ncells, smooth=smooth))
