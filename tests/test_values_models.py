"""Model behaviour that the value tests elsewhere do not pin, each found by a surviving mutant of tools/mutate.py:
train/eval modes of models with a frozen backbone, input resizing, moving HPF matches between devices."""
import torch
from torch import nn

from semcorr.models.ncnet import NCNet
from semcorr.models.sfnet import SFNet


def test_sfnet_train_mode_keeps_the_frozen_backbone_in_eval():
    model = SFNet(backbone="tiny", image_size=64)
    assert model.train() is model
    # train() with no argument is train(True): the adaptation layers train, the frozen backbone (BN statistics
    # included, as published) stays in eval mode
    assert model.training and model.adapt3.training and model.adapt4.training
    assert not model.features.training and not any(m.training for m in model.features.modules())
    model.train(False)
    assert not model.training and not model.adapt3.training and not model.features.training
    model.train()
    assert all(m.training for m in model.adapt4.modules()) and not model.features.training


class RecordingBackbone(nn.Module):
    """A 1x1 conv on the image (stride 1) that records the size it was given."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.sizes = []

    def forward(self, img):
        self.sizes.append(tuple(img.shape[-2:]))
        return self.conv(img)


def test_ncnet_image_size_scales_the_longer_side():
    bb = RecordingBackbone()
    model = NCNet(backbone=bb, kernel_sizes=[3], channels=[1], image_size=64)
    # 48 x 96 -> the longer side to 64 px, the aspect kept: 32 x 64
    assert model.features(torch.rand(1, 3, 48, 96)).shape[-2:] == (32, 64)
    assert model.features(torch.rand(1, 3, 90, 30)).shape[-2:] == (64, 21)  # 30 * 64 / 90 = 21.3
    assert bb.sizes == [(32, 64), (64, 21)]
    # without image_size the image goes in as given
    bb2 = RecordingBackbone()
    NCNet(backbone=bb2, kernel_sizes=[3], channels=[1]).features(torch.rand(1, 3, 48, 96))
    assert bb2.sizes == [(48, 96)]


def test_hpf_matches_to_device_keeps_every_part():
    from semcorr.models.hpf import HPFMatches

    g = torch.Generator().manual_seed(0)
    field, conf = torch.rand(1, 2, 3, 2, generator=g) * 2 - 1, torch.rand(1, 2, 3, generator=g)
    hpf = (torch.rand(4, 4, generator=g), torch.rand(5, 4, generator=g), torch.randint(0, 5, (1, 4), generator=g),
           torch.rand(1, 4, generator=g))
    m = HPFMatches(field, conf, (32, 48), (40, 40), {"hpf": hpf, "tgt_grid": (2, 2)})
    moved = m.to("cpu")
    assert isinstance(moved, HPFMatches)
    assert torch.equal(moved.field, field) and torch.equal(moved.confidence, conf)
    assert moved.src_size == (32, 48) and moved.tgt_size == (40, 40) and moved.extras["tgt_grid"] == (2, 2)
    assert all(torch.equal(a, b) for a, b in zip(moved.extras["hpf"], hpf))
