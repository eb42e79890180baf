"""SCNet's released hinge loss (vl_nnpfloss) on hand-computed cases, and the IoU ground truth (makeGT_PASCAL)."""
import pytest
import torch

from semcorr.models.scnet import region_iou, scnet_loss


def test_hand_computed_selection_and_value():
    z = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8]], requires_grad=True)
    iou = torch.tensor([[0.6, 0.1, 0.0],   # positive {0}; negatives among IoU <= 0.2: the best one, 2 (0.5)
                        [0.0, 0.7, 0.9]])  # positives {1, 2}; only 0 has IoU <= 0.2, the sort then adds 1
    loss = scnet_loss(z, iou)
    # positives: (1 - 0.9) + (1 - 0.3) + (1 - 0.8); negatives: (1 + 0.5) + (1 + 0.2) + (1 + 0.3); / (2 * 3)
    assert loss.item() == pytest.approx(5.0 / 6.0)
    loss.backward()
    # sign: scores of positives are pushed up, of negatives down; 1/6 each; entry (1, 1) is both
    assert torch.allclose(z.grad, torch.tensor([[-1.0, 0.0, 1.0], [1.0, 0.0, -1.0]]) / 6)


def test_margin_and_zero_when_perfect():
    iou = torch.tensor([[0.9, 0.0, 0.1]])
    # a positive at the margin and a negative at -margin cost nothing
    assert scnet_loss(torch.tensor([[1.0, -1.0, -2.0]]), iou).item() == 0.0
    assert scnet_loss(torch.tensor([[1.5, -1.2, -3.0]]), iou).item() == 0.0
    # inside the margin they do: (1 - 0.5) + (1 - 0.8) over 2
    assert scnet_loss(torch.tensor([[0.5, -0.8, -3.0]]), iou).item() == pytest.approx(0.35)
    # the hardest negative is the highest-scoring one with IoU <= 0.2
    assert scnet_loss(torch.tensor([[1.0, -3.0, -0.5]]), iou).item() == pytest.approx(0.25)


def test_no_positive_is_zero_and_active_rows():
    z = torch.tensor([[0.3, 0.2], [0.9, 0.1], [0.4, 0.6]], requires_grad=True)
    assert scnet_loss(z, torch.tensor([[0.4, 0.1]]), active=torch.tensor([1])).item() == 0.0
    # only row 2 is active: positive 0 (IoU 0.8), negative 1: (1 - 0.4) + (1 + 0.6) over 2
    loss = scnet_loss(z, torch.tensor([[0.8, 0.0]]), active=torch.tensor([2]))
    assert loss.item() == pytest.approx(1.1)
    loss.backward()
    assert z.grad[:2].abs().sum() == 0
    with pytest.raises(ValueError, match="iou must be"):
        scnet_loss(z, torch.zeros(2, 2))


def test_region_iou_identity_and_shift():
    src = torch.tensor([[0.0, 0.0, 9.0, 9.0], [10.0, 10.0, 29.0, 19.0]])
    tgt = torch.tensor([[0.0, 0.0, 9.0, 9.0], [5.0, 0.0, 14.0, 9.0], [10.0, 10.0, 29.0, 19.0]])
    iou = region_iou(src, tgt, lambda p: p, (40, 40))
    # identity warp: a box matches itself (IoU 1); half-overlapping 10x10 boxes: 50 / 150
    assert iou[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])
    assert iou[1, 2].item() == pytest.approx(1.0)
    # a translation by +5 px in x: the warped box 0 is target box 1
    assert region_iou(src, tgt, lambda p: p + torch.tensor([5.0, 0.0], dtype=p.dtype), (40, 40))[0, 1].item() == 1.0


def test_active_proposals():
    from semcorr.models.scnet import active_proposals

    boxes = torch.tensor([[10.0, 10.0, 30.0, 30.0],   # inside the object, holds a keypoint -> active
                          [0.0, 0.0, 20.0, 20.0],     # 100/400 = 25 % inside the object -> not
                          [12.0, 12.0, 18.0, 18.0],   # inside, but no keypoint
                          [5.0, 10.0, 25.0, 30.0]])   # 15 x 20 of 20 x 20 = 75 %, not > 75 % -> not
    obj = torch.tensor([[10.0, 10.0, 40.0, 40.0]])
    kps = torch.tensor([[25.0, 25.0], [35.0, 12.0]])
    assert active_proposals(boxes, obj, kps).tolist() == [0]
    # the active rows feed the loss
    z = torch.rand(4, 3)
    assert scnet_loss(z, torch.tensor([[0.9, 0.0, 0.0]]), active=active_proposals(boxes, obj, kps)).item() > 0
