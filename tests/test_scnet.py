"""SCNet: proposals, PHM bins, the three heads (AG through ops.hough_vote), training loss, dense flow."""
import math

import pytest
import torch

from semcorr.data.sample import sample_pair
from semcorr.models import build_model
from semcorr.models import scnet as sc
from semcorr_ext import reference


def test_sliding_window_boxes_inside_image():
    b = sc.sliding_window_boxes(120, 160)
    assert b.shape[1] == 4 and len(b) > 20
    assert (b[:, 0] >= -1e-4).all() and (b[:, 2] <= 160 + 1e-4).all() and (b[:, 3] <= 120 + 1e-4).all()


def test_phm_bins_by_hand():
    src = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    tgt = torch.tensor([[10.0, 0.0, 20.0, 10.0], [0.0, 0.0, 20.0, 20.0], [500.0, 0.0, 510.0, 10.0]])
    bins = sc.phm_bins(src, tgt, cell=10.0, n_offset=5, n_scale=5, scale_step=0.5)
    # offset (10, 0) -> (x 3, y 2), scale 0 -> 2: (2*5+2)*5+3; box 2x bigger: offset (5, 5) -> round(0.5)=0 -> 2,
    # scale log2(2)=1 -> 2 steps -> 4; far box -> -1
    assert bins.tolist() == [[(2 * 5 + 2) * 5 + 3, (4 * 5 + 2) * 5 + 2, -1]]


@pytest.mark.parametrize("variant", ["A", "AG", "AG+"])
def test_heads_and_ag_uses_hough_vote(variant):
    torch.manual_seed(0)
    model = sc.SCNet(variant=variant, backbone="daisy")
    s, t = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    sb, tb = sc.sliding_window_boxes(64, 64), sc.sliding_window_boxes(64, 64)
    z, bins = model.scores(s, t, sb, tb)
    assert z.shape == (1, len(sb), len(tb)) and (z >= 0).all() and z.max() <= 1 + 1e-6
    if variant == "AG":  # the PHM score is the reference hough_vote of the appearance term, normalised
        ps, _ = model.region_features(s, sb)
        pt, _ = model.region_features(t, tb)
        f = torch.relu(ps @ pt.t())[None]
        n_off = 2 * int(math.ceil(64 / (model.cell * 64))) + 1  # the model's offset grid
        ref = reference.hough_vote(f.double(), bins, (5, n_off, n_off))
        torch.testing.assert_close((z * (ref / f.double().clamp(min=1e-12)).max()).double(), ref, rtol=1e-4, atol=1e-6)


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    pair = sample_pair(1, 96, kind="affine")
    s, t = pair.tensors()
    model = sc.SCNet(variant="AG+", backbone="daisy")
    sb, tb = model.region_boxes(s), model.region_boxes(t)
    warp = lambda p: torch.from_numpy(pair.warp.forward(p.numpy().astype("float64"))).float()  # noqa: E731
    labels = sc.region_labels(sb, tb, warp)
    assert (labels == 1).any() and (labels == 0).any()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    losses = []
    for _ in range(6):
        loss = model.loss(s, t, labels, sb, tb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.95, losses


def test_match_api_dense_field():
    pair = sample_pair(0, 96)
    s, t = pair.tensors()
    m = build_model("scnet", backbone="daisy").match(s, t)
    assert m.field.shape == (1, 12, 12, 2) and torch.isfinite(m.field).all()
    out = m.transfer_keypoints(pair.kps_tensors()[0])
    assert out.shape == (1, 36, 2)
