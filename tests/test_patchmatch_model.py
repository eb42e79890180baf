"""The PMNC model (semcorr.models.pmnc): window scores equal the dense proxy, PatchMatch recovers a smooth match
field from a bad start, end to end on the sample pair and through `semcorr match`, training lowers the loss."""
import re

import pytest
import torch

from benchmarks import baselines_patchmatch
from semcorr import cli
from semcorr.models import build_model
from semcorr.models.pmnc import PMNC, PMNCScorer, initial_matches


def shift_volume(H=9, W=10, di=1, dj=2, seed=0):
    """A volume (1, H, W, H, W) peaked at target (i + di, j + dj) for every source (i, j), plus noise."""
    g = torch.Generator().manual_seed(seed)
    corr = 0.3 * torch.rand(1, H, W, H, W, generator=g)
    for i in range(H):
        for j in range(W):
            u, v = min(H - 1, i + di), min(W - 1, j + dj)
            corr[0, i, j, u, v] = 1.0
    return corr


def test_window_scores_equal_dense_proxy_and_plain_conv():
    torch.manual_seed(0)
    for init in ("consensus", "random"):
        scorer = PMNCScorer(init=init)
        corr = torch.rand(1, 6, 5, 7, 6)
        dense = scorer.dense(corr)
        layers = list(zip(scorer.weights, scorer.biases))
        torch.testing.assert_close(dense, baselines_patchmatch.dense_nc_scores(corr, layers), rtol=1e-4, atol=1e-5)
        from semcorr_ext import ops
        cand = initial_matches(torch.rand(1, 6, 5, 7, 6), 3)
        win = ops.gather_windows4d(corr, cand, scorer.window)
        s = scorer.score_windows(win.reshape(-1, *win.shape[-4:])).view(cand.shape[:4])
        b, i, j = torch.meshgrid(torch.arange(1), torch.arange(6), torch.arange(5), indexing="ij")
        exp = dense[b[..., None], i[..., None], j[..., None], cand[..., 0], cand[..., 1]]
        torch.testing.assert_close(s, exp, rtol=1e-4, atol=1e-5)


def test_non_gemm_stack_equals_dense_in_the_interior():
    # with several multi-tap layers, "same" padding of the hidden layers differs from the window's at the volume
    # border; where the window lies inside the volume the two agree
    scorer = PMNCScorer(kernel_sizes=(3, 3), channels=(4, 1), init="random", symmetric=True)
    assert scorer.window == 5
    corr = torch.rand(1, 7, 7, 7, 7)
    cand = torch.randint(2, 5, (1, 7, 7, 2, 2))
    from semcorr_ext import ops
    win = ops.gather_windows4d(corr, cand, 5)
    s = scorer.score_windows(win.reshape(-1, 5, 5, 5, 5)).view(cand.shape[:4])
    dense = scorer.dense(corr)
    i, j = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
    exp = dense[0, i[..., None], j[..., None], cand[0, ..., 0], cand[0, ..., 1]]
    torch.testing.assert_close(s[0, 2:5, 2:5], exp[2:5, 2:5], rtol=1e-4, atol=1e-5)


def test_patchmatch_recovers_shift_from_bad_start():
    corr = shift_volume()
    model = PMNC(backbone=torch.nn.Identity(), iterations=8, mutual=False)
    truth = torch.stack(torch.meshgrid(torch.arange(9), torch.arange(10), indexing="ij"), -1)
    truth = torch.stack([(truth[..., 0] + 1).clamp(max=8), (truth[..., 1] + 2).clamp(max=9)], -1)
    init = torch.randint(0, 9, (1, 9, 10, 1, 2), generator=torch.Generator().manual_seed(0))
    init[0, 4, 5, 0] = truth[4, 5]  # a single correct seed: propagation must spread it
    with torch.no_grad():
        res = model.search(corr, init=init)
    m, scored = res.matches, res.num_scored
    # all but a few cells next to the clamped border rows (measured: 87 of 90)
    assert (m[0, :, :, 0] == truth).all(-1).float().mean() >= 0.95
    assert (m[0, :6, :6, 0] == truth[:6, :6]).all()
    assert scored < corr.numel() // 2  # fewer 4D positions scored than the (tiny) dense volume holds
    assert int((~res.scored.isnan()).sum()) == scored  # each position scored once, all kept


def test_scores_equal_dense_scores_where_scored():
    # every score PatchMatch computed (windows cut by gather_windows4d_points) is the dense proxy's score there
    corr = torch.rand(1, 6, 7, 6, 5, generator=torch.Generator().manual_seed(3))
    model = PMNC(backbone=torch.nn.Identity(), iterations=3, mutual=False)
    with torch.no_grad():
        res = model.search(corr)
        dense = model.scorer.dense(corr)
    seen = ~res.scored.isnan()
    assert 0 < int(seen.sum()) < corr.numel()
    torch.testing.assert_close(res.scored[seen], dense[seen], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel_sizes,channels,symmetric", [((5, 1, 1), (16, 16, 1), True),
                                                             ((5, 1), (8, 1), False), ((3, 3), (4, 1), True)])
def test_score_points_equals_score_windows(kernel_sizes, channels, symmetric):
    # the fused first layer (gather_windows4d_linear) gives the scores of the materialised windows
    scorer = PMNCScorer(kernel_sizes, channels, symmetric, init="random")
    corr = torch.rand(2, 6, 5, 7, 6, generator=torch.Generator().manual_seed(4))
    pts = torch.stack([torch.randint(0, 2, (50,)), torch.randint(0, 6, (50,)), torch.randint(0, 5, (50,)),
                       torch.randint(0, 7, (50,)), torch.randint(0, 6, (50,))], 1)
    from semcorr_ext import ops
    expected = scorer.score_windows(ops.gather_windows4d_points(corr, pts, scorer.window))
    torch.testing.assert_close(scorer.score_points(corr, pts), expected, rtol=1e-4, atol=1e-5)


def test_mutual_readout_suppresses_a_hub_target():
    # source cells 0 and 1 both score target cell 0 highest, but target 0 prefers source 0: the mutual readout
    # sends source 1 to its second choice; unscored positions (NaN) never win
    nan = float("nan")
    scored = torch.tensor([[0.9, 0.1, nan], [0.5, 0.45, nan]]).view(1, 2, 1, 1, 3)
    idx, best = PMNC.mutual_readout(scored)
    assert idx.view(-1).tolist() == [0, 1]  # plain argmax: [0, 0]
    # s * (s / best over sources) * (s / best over targets)
    assert best.view(-1).tolist() == pytest.approx([0.9, 0.45 * (0.45 / 0.5)], rel=1e-4)
    assert torch.equal(PMNC.mutual_readout(torch.full((1, 2, 2, 2, 2), nan))[1], torch.zeros(1, 2, 2))


def test_mutual_readout_equals_dense_mutual_matching():
    # the readout on the scored list is mutual_matching of the volume with unscored positions at 0, then argmax
    from semcorr_ext import ops
    g = torch.Generator().manual_seed(5)
    vol = torch.rand(2, 5, 4, 6, 3, generator=g) - 0.1
    vol[torch.rand(vol.shape, generator=g) < 0.8] = float("nan")
    vol[..., 0, 0] = torch.rand(2, 5, 4, generator=g) + 0.2  # every source cell has a positive score
    idx, best = PMNC.mutual_readout(vol)
    dense = ops.mutual_matching(vol.nan_to_num(0).clamp_min(0)).view(2, 5, 4, -1)
    exp_best, exp_idx = dense.max(-1)
    assert torch.equal(idx, exp_idx)
    torch.testing.assert_close(best, exp_best)
    index = (~vol.isnan()).view(-1).nonzero().squeeze(1)
    perm = index[torch.randperm(len(index), generator=g)]  # any order of the scored list
    assert torch.equal(PMNC.mutual_readout(vol, perm)[0], idx)


def test_end_to_end_sample_pair_and_api():
    from semcorr.data.sample import sample_pair

    pair = sample_pair(seed=0, size=128)
    src, tgt = pair.tensors()
    model = build_model("pmnc", backbone="daisy", iterations=4)
    assert model.readout == "search" and model.image_size is None  # the paper's readout; DAISY keeps the size
    out = model.match(src, tgt)
    assert out.field.shape == (1, 16, 16, 2) and out.confidence.shape == (1, 16, 16)
    assert out.extras["matches"].shape == (1, 16, 16, 1, 2)
    best = out.extras["matches"][..., 0, :]  # the paper's readout: PatchMatch's own best match
    assert torch.equal(out.extras["index"], best[..., 0] * 16 + best[..., 1])
    torch.testing.assert_close(out.confidence, out.extras["scores"][..., 0])
    mutual = build_model("pmnc", backbone="daisy", iterations=4, readout="mutual").match(src, tgt)
    assert torch.equal(mutual.extras["matches"], out.extras["matches"])  # same search, other readout
    with pytest.raises(ValueError, match="readout must be 'mutual' or 'search'"):
        build_model("pmnc", backbone="daisy", readout="best")
    assert 0 < out.extras["num_scored"] < out.extras["dense_points"]
    sk, tk = pair.kps_tensors()
    valid = (tk >= 0).all(-1)
    for m in (out, mutual):
        err = (m.transfer_keypoints(sk) - tk).norm(dim=-1)[valid]
        assert (err <= 0.1 * 128).float().mean() >= 0.5  # untrained consensus weights, DAISY: well above chance


def test_cli_match_pmnc(tmp_path, capsys):
    out_png = tmp_path / "pmnc.png"
    assert cli.main(["match", "--method", "pmnc", "--backbone", "daisy", "--out", str(out_png)]) == 0
    out = capsys.readouterr().out
    assert "method:     pmnc" in out and out_png.exists()
    # measured at 240 px, seed 0, untrained consensus weights, search readout: PCK@0.10 = 0.78 (mutual: 0.92)
    assert float(re.search(r"PCK@0.10:\s+([0-9.]+)", out).group(1)) >= 0.6


def test_training_lowers_loss():
    # the proxy's dense cross entropy on one synthetic pair with its exact warp (semcorr train pmnc trains the same
    # loss on keypoints, tests/test_train_pmnc.py)
    from semcorr.data.sample import sample_pair
    from semcorr.train.pmnc import dense_ce_loss, gt_probability_map

    torch.manual_seed(0)
    model = build_model("pmnc", backbone="daisy", init="random")
    pair = sample_pair(seed=0, size=64, image="astronaut")
    src, tgt = pair.tensors()
    with torch.no_grad():
        corr = model.correlation(model.features(src), model.features(tgt))
    assert corr.shape == (1, 8, 8, 8, 8)  # 8x8 grids
    prob, mask = gt_probability_map(pair.warp, pair.size, pair.size, (8, 8), (8, 8))
    assert mask.any()
    torch.testing.assert_close(prob.sum((-1, -2))[mask], torch.ones(int(mask.sum())))
    opt = torch.optim.Adam(model.scorer.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = dense_ce_loss(model.scorer.dense(corr), prob[None], mask[None], model.scorer.logit_scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 0.3  # measured: 4.85 -> 3.67
