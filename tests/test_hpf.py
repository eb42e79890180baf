"""HPF model: geometry helpers against HPF's published helpers, keypoint transfer, end-to-end pipeline."""
import pytest
import torch

from benchmarks import baselines_hough as bh
from semcorr.data.sample import sample_pair
from semcorr.models import build_model
from semcorr.models import hpf


def test_geometry_table_matches_hpf():
    geo = hpf.hyperpixel_geometry(50)
    assert [g[3] for g in geo] == [11, 19, 27, 35, 43, 59, 75, 91, 107, 139, 171, 203, 235, 267, 299, 363, 427]
    assert [g[2] for g in geo][:16] == [4, 4, 4, 4, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32]
    assert len(hpf.hyperpixel_geometry(101)) == 34


def test_boxes_and_centres_match_baseline():
    boxes = hpf.receptive_boxes(43, 8.0, 5, 7)
    assert torch.equal(boxes, bh.hpf_receptive_fields(43, 8, 5, 7))
    assert torch.equal(hpf.box_centers(boxes), bh.hpf_box_center(boxes))
    keep = hpf.prune_margin(boxes, (30, 40), 8.0)
    b = boxes[keep]
    assert (b[:, 0] >= -8).all() and (b[:, 3] < 38).all() and len(keep) < len(boxes)


def test_keypoint_transfer_by_hand():
    src_box = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0], [20.0, 20.0, 30.0, 30.0]])
    tgt_box = torch.tensor([[100.0, 100.0, 110.0, 110.0], [50.0, 60.0, 60.0, 70.0]])
    best = torch.tensor([0, 1, 0])
    kps = torch.tensor([[7.0, 8.0], [2.0, 3.0], [50.0, 50.0]])
    fb = torch.full((3, 2), -7.0)
    out = hpf.transfer_keypoints_hpf(kps, src_box, tgt_box, best, fb)
    # kp0 is in boxes 0 and 1: (100 + 7, 100 + 8) and (50 + 2, 60 + 3) -> mean (79.5, 85.5)
    assert torch.equal(out, torch.tensor([[79.5, 85.5], [102.0, 103.0], [-7.0, -7.0]]))


def test_parse_ids_and_presets():
    assert hpf.parse_hyperpixel_ids("(2,17,21,22,25,26,28)") == (2, 17, 21, 22, 25, 26, 28)
    assert hpf.HYPERPIXEL_PRESETS[("resnet50", "spair")] == (0, 9, 10, 11, 12, 13)
    with pytest.raises(ValueError, match="hyperpixel ids 0..16"):
        hpf.HyperpixelFlow(backbone="resnet50", hyperpixel_ids=(2, 40), weights=None)


def test_daisy_pipeline_on_sample_pair():
    pair = sample_pair(0, 160)
    src, tgt = pair.tensors()
    model = build_model("hpf", backbone="daisy")
    m = model.match(src, tgt)
    assert m.field.shape == (1, 20, 20, 2) and torch.isfinite(m.field).all()
    sk, tk = pair.kps_tensors()
    pred = m.transfer_keypoints(sk)
    valid = (tk >= 0).all(-1)
    pck = ((pred - tk).norm(dim=-1)[valid] <= 0.1 * 160).float().mean()
    assert pck > 0.6  # a smooth warp: geometry-regularised DAISY matching gets most keypoints
    assert (pred[~valid] == -1).all()


def test_resnet_pipeline_random_weights_small():
    # the published feature path (pre-ReLU block outputs, upsample, concat) with random weights: runs and shapes
    model = hpf.HyperpixelFlow(backbone="resnet50", hyperpixel_ids=(2, 5, 9), weights=None)
    feats = model.layer_features(torch.rand(1, 3, 64, 80))
    assert sorted(feats) == [2, 5, 9] and feats[9].shape[-2:] == (4, 5)
    assert (feats[5] < 0).any()  # before the final ReLU, as HPF
    m = model.match(torch.rand(1, 3, 64, 80), torch.rand(1, 3, 72, 64))
    assert m.field.shape == (1, 16, 20, 2) and torch.isfinite(m.field).all()
    assert m.transfer_keypoints(torch.tensor([[10.0, 20.0], [-1.0, -1.0]])).shape == (2, 2)


def test_beam_search_tiny():
    from semcorr.commands import hpf_search

    model = hpf.HyperpixelFlow(backbone="resnet50", hyperpixel_ids=(0, 1, 2, 3), weights=None)
    pairs = hpf_search._validation_pairs(1, 64, 0)
    ids, pck, hist = hpf_search.beam_search(model, pairs, [0, 1, 2, 3], beam=2, max_layers=2, log=lambda *a: None)
    singles = hist[0][1]
    assert sorted(s for s, _ in singles) == [(0,), (1,), (2,), (3,)]
    assert 0.0 <= pck <= 1.0 and pck == max(p for _, scored in hist for _, p in scored)
    if len(hist) > 1:  # size-2 sets only extend the two best singles
        top2 = {s[0] for s, _ in singles[:2]}
        assert all(set(s) & top2 for s, _ in hist[1][1])


@pytest.mark.parametrize("method", ["hpf", "scnet"])
def test_cli_match(method, tmp_path, capsys):
    from semcorr.cli import main

    out = tmp_path / "m.png"
    assert main(["match", "--method", method, "--size", "128", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "PCK@0.10" in text and out.exists()
