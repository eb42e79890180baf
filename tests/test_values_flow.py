"""semcorr_ext.flow's transforms on cases whose answer is written down by hand."""
import torch

from semcorr_ext import flow


def test_invert_affine_by_hand_in_both_layouts():
    # x' = 2x + 1, y' = 4y - 2  ->  x = x'/2 - 1/2, y = y'/4 + 1/2; a rotation by 90 degrees: its transpose
    theta = torch.tensor([[[2.0, 0.0, 1.0], [0.0, 4.0, -2.0]],
                          [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]],
                          [[1.0, 0.0, 3.0], [0.0, 1.0, -5.0]]], dtype=torch.float64)
    want = torch.tensor([[[0.5, 0.0, -0.5], [0.0, 0.25, 0.5]],
                         [[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]],
                         [[1.0, 0.0, -3.0], [0.0, 1.0, 5.0]]], dtype=torch.float64)
    torch.testing.assert_close(flow.invert_affine(theta), want, rtol=0, atol=1e-15)
    # the flat (B, 6) layout of the regression heads, row-major, with B = 3 (not 2)
    torch.testing.assert_close(flow.invert_affine(theta.reshape(3, 6)), want, rtol=0, atol=1e-15)
