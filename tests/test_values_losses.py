"""Training losses on hand-computed cases: their value, their sign, and their zero / minimum on a perfect match.

Every expected number below is derived in the comments from the loss's definition (the released code's formula
as the loss module's docstring states it), not read from a run: NC-Net's weak loss and match score, SFNet's
three terms and their weighted total, PMNC's dense cross entropy and its ground-truth map, Sparse NC-Net's weak
loss, SCNet's active rows, MaCoSNet's matching score with its default mask. (SCNet's hinge loss and the other
MaCoSNet losses have hand-computed tests in test_scnet_loss.py and test_macosnet_losses.py.)
"""
import math

import numpy as np
import pytest
import torch

from semcorr.losses.ncnet import match_score, weak_loss
from semcorr.losses.sfnet import DEFAULT_WEIGHTS, SFNetLoss, flow_consistency, identity_grid, mask_consistency, \
    smoothness
from semcorr.losses.sparse_ncnet import sparse_weak_loss
from semcorr.train.pmnc import dense_ce_loss, gt_probability_map

F64 = torch.float64


def sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


# ----------------------------------------------------------------------------------------------- NC-Net
def test_match_score_of_an_asymmetric_volume():
    # 2 source cells x 3 target cells (grids 2x1 and 1x3); the score is the mean of the row maxima of the
    # softmax over targets and of the column maxima of the softmax over sources, the two averaged
    v = np.array([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    rows = [np.exp(r).max() / np.exp(r).sum() for r in v]
    cols = [np.exp(c).max() / np.exp(c).sum() for c in v.T]
    want = (np.mean(rows) + np.mean(cols)) / 2
    got = match_score(torch.tensor(v).reshape(1, 1, 2, 1, 1, 3))
    assert got.item() == pytest.approx(want, abs=1e-12)
    # the 5-D layout (no channel axis) is the same volume
    assert match_score(torch.tensor(v).reshape(1, 2, 1, 1, 3)).item() == pytest.approx(want, abs=1e-12)
    # a batch averages its pairs
    two = torch.stack([torch.tensor(v), torch.zeros(2, 3, dtype=F64)]).reshape(2, 1, 2, 1, 1, 3)
    flat = (0.5 * (1 / 3) + 0.5 * (1 / 2))  # all-zero volume: 1/3 over targets, 1/2 over sources
    assert match_score(two).item() == pytest.approx((want + flat) / 2, abs=1e-12)


class DiagonalModel:
    """``correlation(src, tgt)``: a 2-cell x 2-cell volume ``a * identity`` per pair with ``a = <src_b, tgt_b>``,
    so that the match score of a pair is ``sigmoid(a)`` (softmax of (a, 0)), in both directions."""

    def __init__(self):
        self.calls = []

    def correlation(self, src, tgt):
        self.calls.append((src.clone(), tgt.clone()))
        a = (src * tgt).flatten(1).sum(1)
        vol = a[:, None, None] * torch.eye(2, dtype=src.dtype)
        return (vol.reshape(-1, 1, 2, 1, 2, 1),)


def test_weak_loss_value_sign_and_negatives():
    # 3 pairs of scalar "images": positives pair src_b with tgt_b, negatives src_{b+1} with tgt_b
    src = torch.tensor([2.0, 0.5, 1.0], dtype=F64).reshape(3, 1, 1, 1)
    tgt = torch.tensor([1.5, 3.0, 0.2], dtype=F64).reshape(3, 1, 1, 1)
    model = DiagonalModel()
    loss = weak_loss(model, src, tgt)
    s, t = src.flatten().tolist(), tgt.flatten().tolist()
    pos = np.mean([sigmoid(s[b] * t[b]) for b in range(3)])
    neg = np.mean([sigmoid(s[(b + 1) % 3] * t[b]) for b in range(3)])
    assert loss.item() == pytest.approx(neg - pos, abs=1e-12)
    # the negatives roll the SOURCE images, the targets stay
    (p_src, p_tgt), (n_src, n_tgt) = model.calls
    assert torch.equal(p_src, src) and torch.equal(p_tgt, tgt) and torch.equal(n_tgt, tgt)
    assert torch.equal(n_src, src.roll(-1, 0))


def test_weak_loss_minimum_on_a_perfect_match():
    # perfect: sharp positives (score -> 1) and indifferent negatives (a = 0: score 1/2) -> loss 1/2 - 1
    src = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64).reshape(2, 2, 1, 1) * 30
    loss = weak_loss(DiagonalModel(), src, src)
    assert loss.item() == pytest.approx(0.5 - 1.0, abs=1e-12)
    # the reversed situation (confident negatives, indifferent positives) is the maximum: +1/2
    tgt = src.roll(1, 0)
    assert weak_loss(DiagonalModel(), src, tgt).item() == pytest.approx(1.0 - 0.5, abs=1e-12)


# ----------------------------------------------------------------------------------------------- SFNet
H, W = 6, 7
CELL_X = 2.0 / (W - 1)  # one cell in align_corners=True normalised units


def _mask(rows, cols, B=1):
    m = torch.zeros(B, 1, H, W, dtype=F64)
    m[:, :, rows[0]:rows[1], cols[0]:cols[1]] = 1
    return m


def _shifted(dx, B=1):
    g = identity_grid(H, W, torch.zeros(1, dtype=F64)).repeat(B, 1, 1, 1)
    g[..., 0] += dx
    return g


def test_sfnet_perfectly_consistent_pair_scores_zero():
    # target = source moved one cell right: S->T samples one cell right, T->S one cell left; the masks are the
    # same rectangle moved by one cell, away from the border (the zero padding of the flow gradient)
    s2t, t2s = _shifted(CELL_X), _shifted(-CELL_X)
    m_s, m_t = _mask((1, 5), (1, 4)), _mask((1, 5), (2, 5))
    terms = SFNetLoss()(s2t, t2s, m_s, m_t)
    for k in ("mask", "flow", "smooth", "total"):
        assert abs(terms[k].item()) < 1e-12, (k, terms[k].item())


def test_sfnet_flow_consistency_by_hand():
    # S->T identity (flow 0), T->S one cell right (flow c): the source side sees 0 + c at each of its N_s
    # foreground pixels, the target side c + 0 at its N_t: c^2 (N_s / (N_s + 1) + N_t / (N_t + 1)) per pair
    c = CELL_X
    s2t, t2s = _shifted(0.0, B=2), _shifted(c, B=2)
    m_s = torch.cat([_mask((1, 4), (1, 4)), _mask((2, 4), (1, 5))])  # N_s = 9, 8
    m_t = torch.cat([_mask((1, 3), (2, 5)), _mask((1, 5), (1, 6))])  # N_t = 6, 20
    want = c ** 2 * (9 / 10 + 6 / 7 + 8 / 9 + 20 / 21)
    assert flow_consistency(m_s, m_t, s2t, t2s).item() == pytest.approx(want, rel=1e-12)
    # the two directions are not interchangeable: consistent fields with opposite signs are not a zero
    assert flow_consistency(m_s, m_t, _shifted(c, B=2), _shifted(c, B=2)).item() > 0.1


def test_sfnet_mask_consistency_by_hand():
    # identity S->T: M_s - M_t = 0 (same masks); T->S samples one cell right: W(M_s)(j) = M_s(j + 1), which
    # differs from M_t(j) = M_s(j) at the rectangle's left and right edges: 2 pixels per row, 3 rows, / (H W)
    m = _mask((1, 4), (1, 4))
    assert mask_consistency(m, m, _shifted(0.0), _shifted(CELL_X)).item() == pytest.approx(6 / (H * W), rel=1e-12)
    # identity both ways, different masks: every differing pixel counts once per direction
    m2 = _mask((1, 4), (2, 5))  # differs from m in columns 1 and 4: 6 pixels
    assert mask_consistency(m, m2, _shifted(0.0), _shifted(0.0)).item() == pytest.approx(2 * 6 / (H * W), rel=1e-12)


def test_sfnet_smoothness_by_hand():
    # x-flow a * j (a ramp): central difference / 2 gives a at every interior pixel, 0 in y; the y-flow is 0.
    a = 0.05
    g = identity_grid(H, W, torch.zeros(1, dtype=F64)).clone()
    g[..., 0] += a * torch.arange(W, dtype=F64)
    m = _mask((1, 5), (1, 6))  # N = 20 interior pixels
    want = 2 * a * 20 / 21  # both directions get the same field and mask here
    assert smoothness(m, m, g, g).item() == pytest.approx(want, rel=1e-12)
    # the same ramp along y
    gy = identity_grid(H, W, torch.zeros(1, dtype=F64)).clone()
    gy[..., 1] += a * torch.arange(H, dtype=F64)[:, None]
    assert smoothness(m, m, gy, gy).item() == pytest.approx(want, rel=1e-12)


def test_sfnet_total_uses_the_released_weights():
    assert DEFAULT_WEIGHTS == {"mask": 3.0, "flow": 16.0, "smooth": 0.5}
    c = CELL_X
    m = _mask((1, 4), (1, 4))  # N = 9 each side
    g = identity_grid(H, W, torch.zeros(1, dtype=F64)).clone()
    g[..., 0] += 0.05 * torch.arange(W, dtype=F64)
    terms = SFNetLoss()(_shifted(0.0), _shifted(c), m, m)
    # the hand values of the tests above: mask 6 / (H W), flow c^2 * 2 * 9 / 10, smooth 0 (constant flows)
    assert terms["mask"].item() == pytest.approx(6 / (H * W), rel=1e-12)
    assert terms["flow"].item() == pytest.approx(c ** 2 * 2 * 9 / 10, rel=1e-12)
    assert abs(terms["smooth"].item()) < 1e-12
    assert terms["total"].item() == pytest.approx(3 * 6 / (H * W) + 16 * c ** 2 * 1.8, rel=1e-12)
    t2 = SFNetLoss(mask=1.0, flow=0.0, smooth=2.0)(g, g, m, m)
    assert t2["total"].item() == pytest.approx(t2["mask"].item() + 2 * 2 * 0.05 * 9 / 10, rel=1e-12)


# ----------------------------------------------------------------------------------------------- PMNC
class Shift:
    """A warp that moves every pixel by (dx, dy)."""

    def __init__(self, dx, dy):
        self.d = np.array([dx, dy], dtype=np.float64)

    def forward(self, pts):
        return np.asarray(pts, dtype=np.float64) + self.d


def test_pmnc_gt_probability_map_known_by_construction():
    # 8x8 images on 4x4 grids (2 px cells): a 2 px shift in x moves every cell exactly one cell right
    prob, mask = gt_probability_map(Shift(2.0, 0.0), (8, 8), (8, 8), (4, 4), (4, 4))
    assert mask.tolist() == [[True, True, True, False]] * 4  # the last column lands outside the grid
    for i in range(4):
        for j in range(3):
            want = torch.zeros(4, 4)
            want[i, j + 1] = 1
            assert torch.equal(prob[i, j], want)
    # the same in y: a cell landing exactly on the last row's centre is kept (the bounds are inclusive)
    prob, mask = gt_probability_map(Shift(0.0, 2.0), (8, 8), (8, 8), (4, 4), (4, 4))
    assert mask.tolist() == [[True] * 4] * 3 + [[False] * 4]
    assert prob[2, 1, 3, 1].item() == 1.0
    # a 1 px shift in y: half a cell down, the mass split 1/2 - 1/2 between rows i and i + 1
    prob, mask = gt_probability_map(Shift(0.0, 1.0), (8, 8), (8, 8), (4, 4), (4, 4))
    assert mask[:3].all() and not mask[3].any()
    assert prob[1, 2, 1, 2].item() == 0.5 and prob[1, 2, 2, 2].item() == 0.5 and prob[1, 2].sum().item() == 1.0
    # a 4x4 source grid onto a 2x2 target grid of the same image size, no shift: source cell (1, 1) is centred
    # at pixel 2.5, target grid position (2.5 + 0.5) * 2 / 8 - 0.5 = 0.25 -> weights 3/4, 1/4 per axis
    prob, _ = gt_probability_map(Shift(0.0, 0.0), (8, 8), (8, 8), (4, 4), (2, 2))
    assert torch.allclose(prob[1, 1], torch.tensor([[9 / 16, 3 / 16], [3 / 16, 1 / 16]]))


def test_pmnc_dense_ce_loss_by_hand():
    # 2 source cells x 2 target cells; logit scale log 2 doubles the scores; cell 1 is masked out
    scores = torch.tensor([[0.3, -0.2], [5.0, -5.0]], dtype=F64).reshape(1, 2, 1, 1, 2)
    prob = torch.tensor([[0.25, 0.75], [0.0, 1.0]], dtype=F64).reshape(1, 2, 1, 1, 2)
    mask = torch.tensor([[True], [False]]).reshape(1, 2, 1)
    scale = torch.tensor(math.log(2.0), dtype=F64)
    z0, z1 = 0.6, -0.4
    lse = math.log(math.exp(z0) + math.exp(z1))
    want = -(0.25 * (z0 - lse) + 0.75 * (z1 - lse))
    s = scores.clone().requires_grad_(True)
    loss = dense_ce_loss(s, prob, mask, scale)
    assert loss.item() == pytest.approx(want, rel=1e-12)
    # both cells: the mean of the two cross entropies
    both = dense_ce_loss(scores, prob, torch.ones(1, 2, 1, dtype=torch.bool), scale)
    ce1 = -(1.0 * (-10.0 - math.log(math.exp(10.0) + math.exp(-10.0))))
    assert both.item() == pytest.approx((want + ce1) / 2, rel=1e-12)
    # sign: raising the score of the more probable target lowers the loss
    loss.backward()
    assert s.grad[0, 0, 0, 0, 1].item() < 0 < s.grad[0, 0, 0, 0, 0].item()
    # minimum: a one-hot ground truth scored with a large margin costs ~0; no masked cell gives 0, not nan
    onehot = torch.tensor([[0.0, 1.0]], dtype=F64).reshape(1, 1, 1, 1, 2)
    sharp = torch.tensor([[-20.0, 20.0]], dtype=F64).reshape(1, 1, 1, 1, 2)
    assert dense_ce_loss(sharp, onehot, torch.ones(1, 1, 1, dtype=torch.bool), scale).item() < 1e-15
    assert dense_ce_loss(sharp, onehot, torch.zeros(1, 1, 1, dtype=torch.bool), scale).item() == 0.0


# ----------------------------------------------------------------------------------------------- Sparse NC-Net
class SparseDiagonalModel:
    """``features(img) = img``; ``sparse_scores``: on 1x2 grids one point (b, 0, j, 0, j) per cell with value
    ``a_b = <src_b, tgt_b>``: each cell's softmax over the 2 target cells (the absent one counts 0) has
    maximum ``sigmoid(a_b)`` for a_b > 0, in both directions."""

    def features(self, img):
        return img

    def sparse_scores(self, fs, ft):
        B = fs.shape[0]
        a = (fs * ft).flatten(1).sum(1)
        coords = torch.tensor([[b, 0, j, 0, j] for b in range(B) for j in range(2)])
        return coords, None, a.repeat_interleave(2)


def test_sparse_weak_loss_value_and_sign():
    img = torch.tensor([1.0, 2.0, 0.5], dtype=F64).reshape(3, 1, 1, 1).expand(3, 1, 1, 2)
    tgt = torch.tensor([1.5, 0.4, 3.0], dtype=F64).reshape(3, 1, 1, 1).expand(3, 1, 1, 2)
    neg_src = img.roll(-1, 0)
    loss, pos, neg = sparse_weak_loss(SparseDiagonalModel(), img, tgt, neg_src)
    s, t = [1.0, 2.0, 0.5], [1.5, 0.4, 3.0]
    want_pos = np.mean([sigmoid(2 * s[b] * t[b]) for b in range(3)])  # 2 pixels per image
    want_neg = np.mean([sigmoid(2 * s[(b + 1) % 3] * t[b]) for b in range(3)])
    assert pos.item() == pytest.approx(want_pos, abs=1e-12)
    assert neg.item() == pytest.approx(want_neg, abs=1e-12)
    assert loss.item() == pytest.approx(want_neg - want_pos, abs=1e-12)
    # negative scores: the absent target (a padded 0) is then the cell's best entry, sigmoid(-a)
    anti = -tgt
    loss, pos, neg = sparse_weak_loss(SparseDiagonalModel(), img, anti, neg_src)
    assert pos.item() == pytest.approx(np.mean([sigmoid(2 * s[b] * t[b]) for b in range(3)]), abs=1e-12)
    assert neg.item() == pytest.approx(want_neg, abs=1e-12)
    # minimum on a perfect match: sharp positives, indifferent negatives (orthogonal features)
    e = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64).reshape(2, 2, 1, 1).expand(2, 2, 1, 2) * 20
    loss, pos, neg = sparse_weak_loss(SparseDiagonalModel(), e, e, e.roll(1, 0))
    assert loss.item() == pytest.approx(0.5 - 1.0, abs=1e-12)


# ----------------------------------------------------------------------------------------------- SCNet loss rows
def test_scnet_active_proposals_with_three_keypoints():
    from semcorr.models.scnet import active_proposals

    # all boxes inside the object box; a keypoint in box 0 (x, y) = (5, 8) and box 2 (44, 3); the third keypoint
    # (25, 55) is in no box; box 1 would hold box 0's keypoint read as (y, x) = (8, 5), and so must stay out
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [7.0, 4.0, 9.0, 6.0], [40.0, 0.0, 50.0, 10.0]])
    obj = torch.tensor([[0.0, 0.0, 60.0, 60.0]])
    kps = torch.tensor([[5.0, 8.0], [44.0, 3.0], [25.0, 55.0]])
    assert active_proposals(boxes, obj, kps).tolist() == [0, 2]
    # a box above and left of the object (negative overlap in x AND y) is not covered, keypoint or not
    far = torch.tensor([[0.0, 0.0, 10.0, 10.0], [22.0, 22.0, 30.0, 30.0]])
    obj2 = torch.tensor([[20.0, 20.0, 40.0, 40.0]])
    assert active_proposals(far, obj2, torch.tensor([[5.0, 5.0], [25.0, 25.0]])).tolist() == [1]


# ----------------------------------------------------------------------------------------------- MaCoSNet
def test_macosnet_matching_score_default_is_the_soft_mask():
    from semcorr.losses.macosnet import matching_score

    # one cell of A mapped half-way between B's cells 0 and 1 (B: a 1 x 3 grid that is its own image):
    # x = 0.5 px -> normalised 0.5 / 2 * 2 - 1 = -0.5
    corr = torch.tensor([2.0, 3.0, 7.0], dtype=F64).reshape(1, 1, 1, 1, 3)
    pts = torch.tensor([-0.5, 0.0], dtype=F64).reshape(1, 1, 1, 2)
    # soft (tent) weights 1/2, 1/2, 0 -> 2.5; the hard indicator |d| <= 1 takes cells 0 and 1 whole -> 5
    assert matching_score(corr, pts).item() == pytest.approx(2.5, abs=1e-12)
    assert matching_score(corr, pts, soft=True).item() == pytest.approx(2.5, abs=1e-12)
    assert matching_score(corr, pts, soft=False).item() == pytest.approx(5.0, abs=1e-12)
    # phi = 2: tent weights 3/4, 3/4, 1/4 -> 5.5; hard: all three cells (|d| = 0.5, 0.5, 1.5) -> 12
    assert matching_score(corr, pts, phi=2.0).item() == pytest.approx(5.5, abs=1e-12)
    assert matching_score(corr, pts, phi=2.0, soft=False).item() == pytest.approx(12.0, abs=1e-12)
