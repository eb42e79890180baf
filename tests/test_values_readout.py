"""Readouts whose answer is known by construction: the nearest-neighbour model's field, confidence and mutual
mask from features built so that the best target cell of every source cell is chosen in advance, and the
multi-layer feature fusion on maps whose normalised, resized values are known, SCNet's painting of a box-to-box
map that leaves the image and its Lab guide image on the linear segment."""
import numpy as np
import torch
from torch import nn

from semcorr.models.nearest_neighbour import NearestNeighbour, fuse_features

HS, WS, HT, WT = 2, 3, 3, 4
SRC_HW, TGT_HW = (32, 48), (48, 64)


class FixedFeatures(nn.Module):
    """Returns preset feature maps: the source's for an all-zero image, the target's for an all-one image."""

    def __init__(self, src, tgt):
        super().__init__()
        self.src, self.tgt = src, tgt

    def forward(self, img):
        return self.src if float(img.mean()) < 0.5 else self.tgt


def _target_centre_normalised(r, c):
    x = (c + 0.5) * TGT_HW[1] / WT - 0.5
    y = (r + 0.5) * TGT_HW[0] / HT - 0.5
    return [2 * x / (TGT_HW[1] - 1) - 1, 2 * y / (TGT_HW[0] - 1) - 1]


def test_nearest_neighbour_field_confidence_and_mutual_by_construction():
    # target cell t has feature e_t (one-hot of its flat index r * WT + c); source cell k gets e_{perm[k]},
    # except source cell 5, which points at the same target as source cell 0 but less exactly
    perm = [7, 2, 11, 0, 5, 7]
    tgt = torch.eye(HT * WT, dtype=torch.float64).T.reshape(1, HT * WT, HT, WT)
    src = torch.zeros(1, HT * WT, HS * WS, dtype=torch.float64)
    for k, t in enumerate(perm):
        src[0, t, k] = 1.0
    src[0, 3, 5] = 0.5  # cosine with e_7: 1 / sqrt(1.25)
    src = src.reshape(1, HT * WT, HS, WS)
    model = NearestNeighbour(backbone=FixedFeatures(src, tgt))
    m = model.match(torch.zeros(1, 3, *SRC_HW), torch.ones(1, 3, *TGT_HW))

    want = torch.tensor([_target_centre_normalised(t // WT, t % WT) for t in perm], dtype=torch.float64)
    torch.testing.assert_close(m.field[0].reshape(-1, 2), want, rtol=0, atol=1e-12)
    conf = torch.ones(HS * WS, dtype=torch.float64)
    conf[5] = 1 / 1.25 ** 0.5
    # (corr4d's normalisation has an epsilon of 1e-6 in the norms)
    torch.testing.assert_close(m.confidence[0].reshape(-1), conf, rtol=3e-6, atol=0)
    # cell 5's target prefers cell 0 (cosine 1 > 0.894): every cell is mutual except 5
    assert m.extras["mutual"][0].reshape(-1).tolist() == [True] * 5 + [False]
    assert m.extras["index"][0].reshape(-1).tolist() == perm
    assert m.grid_size == (HS, WS) and m.extras["tgt_grid"] == (HT, WT)
    assert m.src_size == SRC_HW and m.tgt_size == TGT_HW
    # transfer of the source cell centres lands on the chosen target cell centres (in pixels)
    centres = m.source_pixels().reshape(-1, 2)
    got = m.transfer_keypoints(centres)
    want_px = torch.tensor([[(t % WT + 0.5) * TGT_HW[1] / WT - 0.5, (t // WT + 0.5) * TGT_HW[0] / HT - 0.5]
                            for t in perm], dtype=torch.float64)
    torch.testing.assert_close(got.double(), want_px, rtol=0, atol=1e-9)


def test_fuse_features_normalises_resizes_and_concatenates():
    a = torch.tensor([[3.0, 0.0, 1.0], [0.0, 4.0, 1.0]])  # channel 0 and 1 at each of 3 columns, 2 rows
    fine = torch.stack([a, torch.tensor([[4.0, 2.0, 1.0], [2.0, 3.0, 1.0]])]).reshape(1, 2, 2, 3)
    coarse = torch.full((1, 3, 1, 1), 2.0)  # a constant map: normalised to 1/sqrt(3), upsampled stays constant
    out = fuse_features([fine, coarse])
    assert out.shape == (1, 5, 2, 3)
    norm = fine / fine.norm(dim=1, keepdim=True)
    torch.testing.assert_close(out[:, :2], norm)
    torch.testing.assert_close(out[:, 2:], torch.full((1, 3, 2, 3), 3 ** -0.5))
    # the first map is the one at the largest grid, whatever the order
    out2 = fuse_features([coarse, fine])
    torch.testing.assert_close(out2[:, 3:], norm)
    # a single map or tensor is returned untouched (no normalisation)
    assert fuse_features(fine) is fine and fuse_features([fine]) is fine


def test_scnet_paint_of_a_box_beyond_the_top_left_corner():
    from semcorr.models.scnet import dense_flow

    # source box 0-based (-3, -3)..(6, 6), 10 x 10 px, onto the target box (0, 0)..(9, 9): a shift by 3 px; the
    # painted part is source pixels 0..6, and 0-based pixel (r, c) maps to 1-based target (c + 4, r + 4)
    X, Y, C = dense_flow.paint_region_flow(np.array([[0.7]]), np.array([[-3.0, -3.0, 6.0, 6.0]]),
                                           np.array([[0.0, 0.0, 9.0, 9.0]]), (12, 12))
    r, c = np.mgrid[0:7, 0:7]
    np.testing.assert_array_equal(X[:7, :7], c + 4.0)
    np.testing.assert_array_equal(Y[:7, :7], r + 4.0)
    assert (C[:7, :7] == 0.7).all() and np.isnan(X[7:]).all() and np.isnan(X[:, 7:]).all() and (C[7:] == 0).all()


def test_scnet_lab_guide_of_a_dark_grey_is_on_the_linear_segment():
    from semcorr.models.scnet import dense_flow

    # 0.01 is below the 0.018 knee of the inverse gamma: linear luminance Y = 0.01 / 4.5138, below CIE's 0.008856,
    # so L* = 116 (841 / 108) Y = (24389 / 27) Y; a grey has a* = b* = 0
    lab = dense_flow.rgb_to_lab_colorspace(np.full((1, 1, 3), 0.01))
    np.testing.assert_allclose(lab[0, 0], [24389 / 27 * 0.01 / 4.5138, 0.0, 0.0], rtol=0, atol=1e-4)
