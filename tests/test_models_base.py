"""semcorr.models: Matches, the model base class, the registry and the nearest-neighbour model."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from semcorr_ext import flow
from semcorr.models import (MODELS, CorrespondenceModel, Matches, NearestNeighbour, available_models, build_model,
                            register_model)


def identity_matches(B=1, grid=(4, 5), src=(16, 20), tgt=(32, 40)):
    field = flow.grid_coords(*grid, dtype=torch.float64)[None].expand(B, -1, -1, -1).clone()
    return Matches(field, torch.ones(B, *grid, dtype=torch.float64), src, tgt)


def test_matches_validates_shapes():
    with pytest.raises(ValueError, match="field"):
        Matches(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4), (4, 4), (4, 4))
    with pytest.raises(ValueError, match="confidence"):
        Matches(torch.zeros(1, 4, 4, 2), torch.zeros(1, 4, 5), (4, 4), (4, 4))


def test_matches_transfer_keypoints_shapes_and_values():
    # field over a 4x5 grid that maps cell centres to the target's corners-aligned grid: a pure scaling
    m = identity_matches()
    src_c = m.source_pixels()
    assert src_c.shape == (4, 5, 2)
    assert torch.allclose(src_c[0, 0], torch.tensor([1.5, 1.5], dtype=torch.float64))
    kps = src_c.reshape(-1, 2)
    out = m.transfer_keypoints(kps)  # (N, 2) in, (N, 2) out
    assert out.shape == kps.shape
    assert torch.allclose(out, m.target_pixels()[0].reshape(-1, 2))
    # target pixels of linspace(-1, 1) over a 40-pixel-wide target: 0, 9.75, ..., 39
    assert torch.allclose(out[:5, 0], torch.linspace(0, 39, 5, dtype=torch.float64))
    out_b = identity_matches(B=2).transfer_keypoints(torch.cat([kps[None], -torch.ones(1, 20, 2, dtype=kps.dtype)]))
    assert out_b.shape == (2, 20, 2) and (out_b[1] == -1).all() and torch.allclose(out_b[0], out)


class _Echo(CorrespondenceModel):
    """A model that matches every pixel to itself and records whether gradients were enabled."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.grad_enabled = None

    def forward(self, src_img, tgt_img):
        self.check_images(src_img, tgt_img)
        self.grad_enabled = torch.is_grad_enabled()
        B, _, H, W = src_img.shape
        field = flow.grid_coords(H, W)[None].expand(B, -1, -1, -1) * self.scale
        return Matches(field, torch.ones(B, H, W), (H, W), tuple(tgt_img.shape[-2:]))


def test_registry_build_and_errors():
    assert "nn" in MODELS and MODELS["nn"] is NearestNeighbour
    assert "nn" in available_models()
    try:
        register_model("_echo_test")(_Echo)
        m = build_model("_echo_test")
        assert isinstance(m, _Echo) and _Echo.name == "_echo_test"
        with pytest.raises(ValueError, match="already registered"):
            register_model("_echo_test")(NearestNeighbour)
    finally:
        MODELS.pop("_echo_test", None)
    with pytest.raises(KeyError, match="unknown model 'no_such_model'"):
        build_model("no_such_model")


def test_match_is_no_grad_eval_and_restores_mode():
    m = _Echo().train()
    out = m.match(torch.rand(2, 3, 6, 7), torch.rand(2, 3, 6, 7))
    assert m.grad_enabled is False and m.training
    assert not out.field.requires_grad and out.field.shape == (2, 6, 7, 2)
    with pytest.raises(ValueError, match="src_img"):
        m.match(torch.rand(2, 1, 6, 7), torch.rand(2, 3, 6, 7))
    with pytest.raises(ValueError, match="batch"):
        m.match(torch.rand(2, 3, 6, 7), torch.rand(1, 3, 6, 7))


class _PatchFeatures(nn.Module):
    """3x3 patches of the image with circular padding: every pixel gets a distinct 27-d descriptor, and
    rolling the image rolls the descriptors exactly."""

    def forward(self, img):
        x = F.pad(img, (1, 1, 1, 1), mode="circular")
        B, C, H, W = img.shape
        return F.unfold(x, 3).reshape(B, C * 9, H, W)


def test_nn_recovers_a_known_shift_exactly():
    torch.manual_seed(0)
    src = torch.rand(2, 3, 9, 11)
    dy, dx = 2, -3
    tgt = torch.roll(src, shifts=(dy, dx), dims=(2, 3))
    m = NearestNeighbour(backbone=_PatchFeatures()).match(src, tgt)
    assert m.field.shape == (2, 9, 11, 2) and m.grid_size == (9, 11)
    ii, jj = torch.meshgrid(torch.arange(9), torch.arange(11), indexing="ij")
    exp = torch.stack([(jj + dx) % 11, (ii + dy) % 9], -1).float()
    assert torch.equal(m.target_pixels().round(), exp.expand(2, -1, -1, -1))
    assert torch.allclose(m.confidence, torch.ones(2, 9, 11), atol=1e-4)
    assert m.extras["mutual"].all()


def test_nn_matches_brute_force_argmax():
    torch.manual_seed(1)

    fs, ft = torch.randn(1, 16, 5, 6), torch.randn(1, 16, 7, 4)
    feats = iter([fs, ft])

    class Fixed(nn.Module):
        def forward(self, img):
            return next(feats)

    m = NearestNeighbour(backbone=Fixed()).match(torch.rand(1, 3, 20, 24), torch.rand(1, 3, 28, 16))
    cos = torch.einsum("bcij,bckl->bijkl", F.normalize(fs, dim=1), F.normalize(ft, dim=1)).reshape(1, 5, 6, 28)
    conf, idx = cos.max(-1)
    assert torch.equal(m.extras["index"], idx)
    assert torch.allclose(m.confidence, conf, atol=1e-5)
    # target cell (k, l) of a 7x4 grid over a 28x16 image is centred at pixel (4 l + 1.5, 4 k + 1.5)
    px = m.target_pixels()[0]
    assert torch.allclose(px[..., 0], (idx[0] % 4) * 4 + 1.5, atol=1e-4)
    assert torch.allclose(px[..., 1], (idx[0] // 4) * 4 + 1.5, atol=1e-4)
    assert m.src_size == (20, 24) and m.tgt_size == (28, 16)


def test_nn_daisy_self_match_is_identity():
    from semcorr.data.sample import load_sample_image

    img = torch.from_numpy(load_sample_image("astronaut", 120)).permute(2, 0, 1)[None]
    m = build_model("nn", backbone="daisy", stride=8).match(img, img)
    assert m.grid_size == (15, 15)
    ident = flow.grid_coords(15, 15, (120, 120))
    hit = (m.field[0] - ident).abs().amax(-1) < 1e-5
    assert hit.float().mean() > 0.95


def test_nn_resnet_backbone_runs_and_defaults_to_imagenet(tmp_path, monkeypatch):
    m = build_model("nn", backbone="resnet50", weights=None, layers=("layer2", "layer3"))
    out = m.match(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 48, 80))
    assert out.grid_size == (8, 8) and out.extras["tgt_grid"] == (6, 10)  # layers fused at the finer grid
    assert out.tgt_size == (48, 80) and (out.field.abs() <= 1).all()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="torch hub cache"):
        build_model("nn", backbone="resnet101")
