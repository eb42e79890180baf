"""SFNet model, losses and published-checkpoint loading (tiny backbone, CPU); its training (`semcorr train sfnet` on the
engine, masked affine pairs): tests/test_train_sfnet.py."""

import pytest
import torch

from semcorr.checkpoints import CheckpointError
from semcorr.losses.sfnet import SFNetLoss, identity_grid, resize_mask
from semcorr.models.sfnet import SFNet, convert_published_state_dict, grid_to_image_field
from semcorr_ext import flow, ops


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return SFNet(backbone="tiny", image_size=128)


def test_forward_shapes_and_field_convention(tiny):
    src, tgt = torch.rand(2, 3, 96, 112), torch.rand(2, 3, 80, 64)
    m = tiny.match(src, tgt)
    assert m.field.shape == (2, 8, 8, 2) and m.confidence.shape == (2, 8, 8)
    assert m.src_size == (96, 112) and m.tgt_size == (80, 64)
    assert m.field.abs().max() <= 1.0 + 1e-6 and torch.isfinite(m.field).all()
    assert m.extras["mutual"].dtype == torch.bool


def test_flows_are_the_kernel_soft_argmax_of_the_product_volume(tiny):
    src, tgt = torch.rand(1, 3, 128, 128), torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        out = tiny.flows(src, tgt)
        s3, s4 = tiny.adapted_features(src)
        t3, t4 = tiny.adapted_features(tgt)
    corr = ops.corr4d(s3, t3, relu=True) * ops.corr4d(s4, t4, relu=True)
    torch.testing.assert_close(out["corr"], corr)
    torch.testing.assert_close(out["grid_S2T"], ops.kernel_soft_argmax(corr))
    torch.testing.assert_close(out["grid_T2S"], ops.kernel_soft_argmax(corr.permute(0, 3, 4, 1, 2)))


def test_grid_to_image_field_inverts_image_to_grid():
    g = torch.rand(1, 5, 7, 2, dtype=torch.float64) * 2 - 1
    back = flow.image_to_grid_coords(grid_to_image_field(g, (5, 7), (40, 63)), (5, 7), (40, 63))
    torch.testing.assert_close(back, g)
    # the grid's corner cell centres land on the image's corner cell centres
    corner = grid_to_image_field(torch.tensor([[[[-1.0, -1.0]]]], dtype=torch.float64), (5, 7), (40, 63))
    torch.testing.assert_close(flow.unnormalize_coords(corner, (40, 63))[0, 0, 0],
                               torch.tensor([0.5 * 63 / 7 - 0.5, 0.5 * 40 / 5 - 0.5], dtype=torch.float64))


def test_transfer_through_affine_field_lands_on_affine_image():
    # keypoints transferred through the exact field of an affine map land on the affine image of them
    A = torch.tensor([[0.9, 0.1], [-0.05, 1.1]], dtype=torch.float64)
    T = torch.tensor([3.0, -2.0], dtype=torch.float64)
    src_size, tgt_size = (48, 64), (52, 70)
    centres = flow.unnormalize_coords(flow.grid_coords(6, 8, src_size, dtype=torch.float64), src_size)
    field = flow.normalize_coords(centres @ A.T + T, tgt_size)[None]
    kps = torch.tensor([[[10.0, 12.0], [30.5, 20.25], [50.0, 40.0]]], dtype=torch.float64)
    out = flow.transfer_keypoints(field, kps, src_size, tgt_size)
    torch.testing.assert_close(out, kps @ A.T + T)


def test_losses_zero_for_identity_and_positive_for_mismatch():
    B, H, W = 2, 6, 6
    ident = identity_grid(H, W, torch.zeros(1)).expand(B, -1, -1, -1)
    mask = torch.zeros(B, 1, H, W)
    mask[..., 1:4, 2:5] = 1
    loss = SFNetLoss()
    terms = loss(ident, ident, mask, mask)
    for k in ("mask", "flow", "smooth", "total"):
        assert float(terms[k]) == pytest.approx(0.0, abs=1e-10)
    # a constant shift of one cell in S2T (and none back): flow inconsistency, mask mismatch, no roughness inside
    shift = ident.clone()
    shift[..., 0] += 2.0 / (W - 1)
    terms = loss(shift, ident, mask, mask)
    assert terms["mask"] > 0 and terms["flow"] > 0
    # flow consistency by hand: inside the mask the S2T flow is (2/5, 0) and the warped T2S flow 0 (source side);
    # the T2S flow is 0 and the S2T flow warped back is (2/5, 0) (target side): 2 terms x 9 pixels / (9 + 1)
    expected = 2 * B * 9 * (2.0 / (W - 1)) ** 2 / (9 + 1)
    assert float(terms["flow"]) == pytest.approx(expected, rel=1e-6)
    assert set(loss.weights.values()) == {3.0, 16.0, 0.5}


def test_resize_mask():
    m = torch.zeros(1, 1, 8, 8)
    m[..., :4, :] = 1
    torch.testing.assert_close(resize_mask(m, (2, 2)), torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]]))


def _published_layout(model):
    """A synthetic state dict in the released SFNet layout built from our model's adaptation layers."""
    sd = {}
    for level, key in ((3, "state_dict1"), (4, "state_dict2")):
        part = {}
        for k, v in model.state_dict().items():
            prefix = "adapt%d.blocks." % level
            if k.startswith(prefix):
                blk, mod, param = k[len(prefix):].split(".", 2)
                part["conv%d.%d.%s" % (int(blk) + 1, 0 if mod == "conv" else 1, param)] = torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v + 7
        sd[key] = part
    return sd


def test_load_published_checkpoint_layout(tmp_path, tiny):
    sd = _published_layout(tiny)
    assert "conv1.0.weight" in sd["state_dict1"] and "conv2.1.running_var" in sd["state_dict2"]
    path = tmp_path / "best_checkpoint.pt"
    torch.save(sd, path)
    model = SFNet(backbone="tiny", image_size=128, checkpoint=str(path))
    own = model.state_dict()
    torch.testing.assert_close(own["adapt3.blocks.0.conv.weight"], sd["state_dict1"]["conv1.0.weight"])
    torch.testing.assert_close(own["adapt3.blocks.1.bn.running_mean"], sd["state_dict1"]["conv2.1.running_mean"])
    torch.testing.assert_close(own["adapt4.blocks.1.bn.weight"], sd["state_dict2"]["conv2.1.weight"])
    assert int(own["adapt4.blocks.0.bn.num_batches_tracked"]) == int(sd["state_dict2"]["conv1.1.num_batches_tracked"])
    # full-model keys with a DataParallel prefix map the same way; backbone keys are ignored
    full = {"module.adap_layer_feat%d.%s" % (3 if key == "state_dict1" else 4, k): v
            for key, part in sd.items() for k, v in part.items()}
    full["module.feature_extraction.layer1.0.conv1.weight"] = torch.zeros(1)
    assert convert_published_state_dict(full).keys() == convert_published_state_dict(sd).keys()
    with pytest.raises(CheckpointError, match="lacks 'state_dict2'"):
        model.load_checkpoint({"state_dict1": sd["state_dict1"]})
