"""semcorr.eval.coseg: co-segmentation precision P and Jaccard J, values computed by hand."""
import pytest
import torch

from semcorr.eval.coseg import CosegMeter, coseg_scores, jaccard, precision


def _gt():
    # 4 x 4, foreground = the top-left 2 x 2 block (4 pixels)
    g = torch.zeros(4, 4, dtype=torch.bool)
    g[:2, :2] = True
    return g


def test_precision_and_jaccard_by_hand():
    gt = _gt()
    pred = torch.zeros(4, 4)
    pred[:2, :3] = 0.9   # 6 predicted foreground pixels: the 4 true ones + 2 false positives
    pred[3, 3] = 0.4     # below the threshold: background
    # P: 16 pixels, wrong = 2 false positives -> 14 / 16
    assert precision(pred, gt).tolist() == [pytest.approx(14 / 16)]
    # J: intersection 4, union 6
    assert jaccard(pred, gt).tolist() == [pytest.approx(4 / 6)]
    # a lower threshold makes (3, 3) foreground: P 13/16, J 4/7
    assert precision(pred, gt, threshold=0.3).item() == pytest.approx(13 / 16)
    assert jaccard(pred, gt, threshold=0.3).item() == pytest.approx(4 / 7)


def test_batch_shapes_sizes_and_averaging():
    gt = torch.stack([_gt(), ~_gt()])[:, None].float() * 255  # 0/255 masks, (B, 1, H, W)
    pred = torch.stack([_gt().float(), torch.zeros(4, 4)])    # image 0 perfect; image 1 predicts nothing
    P, J = precision(pred, gt), jaccard(pred, gt)
    assert P.tolist() == [pytest.approx(1.0), pytest.approx(4 / 16)]
    assert J.tolist() == [pytest.approx(1.0), pytest.approx(0.0)]
    s = coseg_scores(pred, gt)
    assert s == {"P": pytest.approx((1 + 0.25) / 2), "J": pytest.approx(0.5), "n": 2}
    # a prediction at half the resolution is resized to the ground truth first
    small = torch.zeros(1, 1, 2, 2)
    small[0, 0, 0, 0] = 1.0
    assert precision(small, _gt()[None]).item() == pytest.approx(1.0)
    assert jaccard(small, _gt()[None]).item() == pytest.approx(1.0)


def test_empty_masks_and_meter():
    empty = torch.zeros(1, 3, 3)
    assert jaccard(empty, empty).item() == 1.0 and precision(empty, empty).item() == 1.0
    meter = CosegMeter()
    assert meter.summary()["n"] == 0
    meter.update(_gt().float()[None], _gt()[None])                # P 1, J 1
    meter.update(torch.ones(2, 4, 4), torch.stack([_gt(), _gt()]))  # P 4/16, J 4/16 each
    s = meter.summary()
    assert s["n"] == 3
    assert s["P"] == pytest.approx((1 + 0.25 + 0.25) / 3) and s["J"] == pytest.approx((1 + 0.25 + 0.25) / 3)


def test_bad_shapes():
    with pytest.raises(ValueError, match="masks must be"):
        precision(torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="batch sizes differ"):
        jaccard(torch.zeros(2, 4, 4), torch.zeros(3, 4, 4))
