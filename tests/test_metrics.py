"""Metrics of semcorr.eval on hand-computed cases: PCK and its reference lengths, per-category
and per-variation aggregation, Caltech mask transfer (LT-ACC, IoU, LOC-ERR), TSS flow PCK."""
import math

import pytest
import torch

from semcorr.eval import (flow_pck, flow_valid, label_transfer_accuracy, localization_error, mask_iou,
                          pck, pck_counts, thresh_bbox, thresh_img, thresh_kps_bbox, transfer_mask,
                          valid_mask)
from semcorr.eval.runner import FX, accumulate, summarize


# ---------------------------------------------------------------------------------- PCK
def test_pck_hand_computed_ignores_padding():
    gt = torch.tensor([[[10.0, 10.0], [20.0, 20.0], [30.0, 30.0], [-1.0, -1.0], [-1.0, -1.0]]])
    # distances 0, 5 (3-4-5), 13 (5-12-13); the padded rows have "predictions" far away
    pred = torch.tensor([[[10.0, 10.0], [23.0, 24.0], [35.0, 42.0], [500.0, 500.0], [0.0, 0.0]]])
    thresh = torch.tensor([100.0])
    assert pck(pred, gt, thresh, 0.04).item() == pytest.approx(1 / 3)    # limit 4: only d=0
    assert pck(pred, gt, thresh, 0.05).item() == pytest.approx(2 / 3)    # limit 5 inclusive
    assert pck(pred, gt, thresh, 0.1299).item() == pytest.approx(2 / 3)
    assert pck(pred, gt, thresh, 0.13).item() == pytest.approx(1.0)


def test_pck_batch_thresholds_and_counts():
    gt = torch.tensor([[[0.0, 0.0], [10.0, 0.0]], [[0.0, 0.0], [-1.0, -1.0]]])
    pred = torch.tensor([[[3.0, 0.0], [10.0, 8.0]], [[0.0, 6.0], [1.0, 1.0]]])
    thresh = torch.tensor([50.0, 100.0])        # per-pair L
    c, n = pck_counts(pred, gt, thresh, [0.05, 0.1, 0.2])
    # pair 0: d = 3, 8 vs limits 2.5, 5, 10 -> 0, 1, 2; pair 1: d = 6 vs 5, 10, 20 -> 0, 1, 1
    assert c.tolist() == [[0, 1, 2], [0, 1, 1]]
    assert n.tolist() == [2, 1]
    assert pck(pred, gt, thresh, 0.1).tolist() == [0.5, 1.0]


def test_pck_no_valid_keypoint_is_nan_and_nan_prediction_is_wrong():
    gt = torch.tensor([[[-1.0, -1.0]], [[5.0, 5.0]]])
    pred = torch.tensor([[[5.0, 5.0]], [[float("nan"), 5.0]]])
    out = pck(pred, gt, torch.tensor([10.0, 10.0]), 0.5)
    assert math.isnan(out[0].item()) and out[1].item() == 0.0


def test_valid_mask_rules():
    k = torch.tensor([[0.0, 0.0], [-1.0, -1.0], [3.0, -1.0], [float("nan"), 2.0], [2.0, 3.0]])
    assert valid_mask(k).tolist() == [True, False, False, False, True]


def test_pck_rejects_bad_shapes():
    with pytest.raises(ValueError):
        pck(torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2), 0.1)
    with pytest.raises(ValueError):
        pck(torch.zeros(1, 3, 2), torch.zeros(1, 4, 2), torch.ones(1), 0.1)
    with pytest.raises(ValueError):
        pck_counts(torch.zeros(2, 3, 2), torch.zeros(2, 3, 2), torch.ones(3), 0.1)


def test_threshold_helpers():
    assert thresh_img(torch.zeros(3, 240, 320)).item() == 320
    assert thresh_img(torch.tensor([[240, 320], [500, 375]])).tolist() == [320, 500]
    assert thresh_img((100, 50)).item() == 100
    assert thresh_bbox(torch.tensor([[10.0, 20.0, 110.0, 70.0], [0.0, 0.0, 30.0, 90.0]])).tolist() == [100, 90]
    # PF-WILLOW keypoint box: padded points never enter the box
    kps = torch.tensor([[[1.0, 2.0], [5.0, 10.0], [-1.0, -1.0]], [[4.0, 4.0], [9.0, 5.0], [2.0, 4.5]]])
    assert thresh_kps_bbox(kps).tolist() == [8.0, 7.0]
    assert math.isnan(thresh_kps_bbox(torch.full((1, 2, 2), -1.0)).item())


# ------------------------------------------------------------------------- aggregation
def _rec(idx, cat, groups, n_valid, correct_img, correct_bbox=None):
    return {"index": idx, "pair_id": f"p{idx}", "category": cat, "groups": groups, "n_valid": n_valid,
            "correct": {"img": correct_img, "bbox": correct_bbox, "kpbox": None}}


def test_per_category_and_variation_aggregation():
    alphas = [0.05, 0.1]
    recs = [_rec(0, "cat", ["viewpoint/easy"], 4, [1, 2], [3, 4]),
            _rec(1, "cat", ["viewpoint/hard"], 2, [0, 2], [1, 2]),
            _rec(2, "dog", ["viewpoint/hard"], 3, [3, 3], None)]     # no box for this pair
    acc = {}
    for r in recs:
        accumulate(acc, r, alphas)
    s = summarize(acc, alphas)
    assert s["all"]["pairs"] == 3
    # per-pair mean at 0.05: (1/4 + 0/2 + 3/3) / 3 ; pooled keypoints: 4 / 9
    assert s["all"]["pck"]["img"]["0.05"] == pytest.approx((0.25 + 0 + 1) / 3, abs=1e-12)
    assert s["all"]["pck_per_keypoint"]["img"]["0.05"] == pytest.approx(4 / 9)
    assert s["all"]["pck"]["img"]["0.1"] == pytest.approx((0.5 + 1 + 1) / 3, abs=1e-12)
    assert s["category/cat"]["pck"]["img"]["0.05"] == pytest.approx((0.25 + 0) / 2, abs=1e-12)
    assert s["category/dog"]["pck"]["img"]["0.1"] == pytest.approx(1.0, abs=1e-12)
    assert s["viewpoint/hard"]["pairs"] == 2
    assert s["viewpoint/hard"]["pck"]["img"]["0.05"] == pytest.approx((0 + 1) / 2, abs=1e-12)
    # bbox only where known: pairs 0 and 1
    assert s["all"]["pck_pairs"]["bbox"] == 2
    assert s["all"]["pck"]["bbox"]["0.05"] == pytest.approx((0.75 + 0.5) / 2, abs=1e-12)
    assert "kpbox" not in s["all"].get("pck", {})
    assert "bbox" not in s["category/dog"].get("pck", {})


def test_accumulation_is_order_free_integers():
    alphas = [0.1]
    recs = [_rec(i, "c%d" % (i % 3), [], 7 + i % 5, [i % 7 if i % 7 <= 7 + i % 5 else 0]) for i in range(40)]
    a, b = {}, {}
    for r in recs:
        accumulate(a, r, alphas)
    for r in reversed(recs):
        accumulate(b, r, alphas)
    assert a == b and all(isinstance(v, int) for g in a.values() for v in g.values())
    # fixed point: one pair of 1/3 is stored as round(2^40 / 3)
    c = {}
    accumulate(c, _rec(0, "x", [], 3, [1]), alphas)
    assert c["all"]["pck/img/0.1/pairfx"] == round(FX / 3)


# ------------------------------------------------------------------- Caltech metrics
def test_mask_transfer_ltacc_iou_hand_computed():
    src = torch.zeros(4, 4, dtype=torch.bool)
    src[1:3, 1:3] = True                                 # 2x2 object
    tgt = torch.zeros(4, 4, dtype=torch.bool)
    tgt[1:3, 2:4] = True                                 # the same object moved right by 1
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    # a perfect correspondence: target pixel (x, y) comes from source (x - 1, y)
    perfect = torch.stack([xs - 1, ys], -1)
    t = transfer_mask(src, perfect)
    assert torch.equal(t, tgt)
    assert label_transfer_accuracy(t, tgt) == 1.0 and mask_iou(t, tgt) == 1.0
    # identity correspondence: transferred = src; 4 of 16 pixels differ; IoU = 2 / 6
    t = transfer_mask(src, torch.stack([xs, ys], -1))
    assert label_transfer_accuracy(t, tgt) == pytest.approx(12 / 16)
    assert mask_iou(t, tgt) == pytest.approx(2 / 6)
    # out-of-image and NaN matches read background
    bad = torch.full((4, 4, 2), float("nan"))
    bad[0, 0] = torch.tensor([9.0, 9.0])
    assert not transfer_mask(src, bad).any()
    assert math.isnan(mask_iou(torch.zeros(2, 2, dtype=torch.bool), torch.zeros(2, 2, dtype=torch.bool)))


def test_localization_error_hand_computed():
    src = torch.zeros(4, 4, dtype=torch.bool)
    src[0:2, 0:2] = True
    tgt = src.clone()
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    ident = torch.stack([xs, ys], -1)
    assert localization_error(src, tgt, ident) == 0.0
    # every target pixel matched one pixel to the right (the last column falls outside):
    # relative coordinates differ by 1/2 in x (box width 2) -> error 0.5 on 12 in-bound pixels
    shifted = torch.stack([xs + 1, ys], -1)
    assert localization_error(src, tgt, shifted) == pytest.approx(0.5)


# ----------------------------------------------------------------------- TSS flow PCK
def test_flow_pck_hand_computed():
    gt = torch.zeros(2, 3, 2)
    gt[..., 0] = 4.0
    gt[1, 2] = torch.tensor([2e9, 0.0])                  # unknown ground truth
    pred = gt.clone()
    pred[0, 0, 1] += 3.0                                 # error 3
    pred[0, 1, 0] += 6.0                                 # error 6
    mask = torch.ones(2, 3, dtype=torch.bool)
    mask[1, 0] = False                                   # background
    assert flow_valid(gt).sum().item() == 5
    # evaluated: (0,0) e=3, (0,1) e=6, (0,2) e=0, (1,1) e=0 -> 4 pixels
    assert flow_pck(pred, gt, mask, thresh=50.0, alpha=0.1) == pytest.approx(3 / 4)   # limit 5
    assert flow_pck(pred, gt, mask, thresh=50.0, alpha=0.05) == pytest.approx(2 / 4)  # limit 2.5
    # channel-first input gives the same
    assert flow_pck(pred.permute(2, 0, 1), gt.permute(2, 0, 1), mask, 50.0, 0.12) == 1.0
    assert math.isnan(flow_pck(pred, gt, torch.zeros(2, 3, dtype=torch.bool), 50.0, 0.1))
