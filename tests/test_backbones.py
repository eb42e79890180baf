"""semcorr.backbones: ResNet feature pyramids and DAISY/HOG dense descriptors."""
import numpy as np
import pytest
import torch

from semcorr.backbones import DenseDescriptor, ResNetFeatures, build_backbone, imagenet_checkpoint_path
from semcorr.data.sample import load_sample_image


@pytest.mark.parametrize("kind,channels", [("daisy", 200), ("hog", 81)])
@pytest.mark.parametrize("hw,stride,grid", [((96, 120), 8, (12, 15)), ((100, 70), 5, (20, 14)), ((50, 45), 8, (6, 6))])
def test_dense_descriptor_shapes(kind, channels, hw, stride, grid):
    d = DenseDescriptor(kind, stride=stride)
    out = d(torch.rand(2, 3, *hw))
    assert out.shape == (2, channels, *grid) and out.dtype == torch.float32
    assert d.channels == channels and d.grid_size(*hw) == grid and d.strides == [stride]
    assert torch.isfinite(out).all() and out.abs().sum() > 0


@pytest.mark.parametrize("kind,stride", [("daisy", 8), ("daisy", 5), ("hog", 8), ("hog", 6)])
def test_dense_descriptor_cells_follow_the_image(kind, stride):
    """Cropping the image one cell further right/down shifts the interior descriptors by exactly one cell,
    i.e. the descriptor centres sit at (k + 0.5) * stride - 0.5 whatever the parity of the stride."""
    img = torch.from_numpy(load_sample_image("astronaut", 240)).permute(2, 0, 1)[None]
    n = 20 * stride
    a = img[..., 40:40 + n, 40:40 + n]
    b = img[..., 40 + stride:40 + stride + n, 40 + stride:40 + stride + n]
    d = DenseDescriptor(kind, stride=stride)
    fa, fb = d(a), d(b)
    m = 8 if kind == "daisy" else 2  # cells affected by the image border (DAISY radius 15 + smoothing)
    inner_a, inner_b = fa[..., m + 1:-m, m + 1:-m], fb[..., m:-m - 1, m:-m - 1]
    # (HOG bins orientations without interpolation, so a rounding difference can flip a near-tied pixel:
    # allow a few cells to differ)
    same = ((inner_a - inner_b).abs().amax(1) < 1e-4).float().mean()
    assert same > 0.97
    # and a one-pixel shift is NOT a match (the check above is sensitive to misalignment)
    c = img[..., 41:41 + n, 41:41 + n]
    off = ((fa - d(c)).abs().amax(1)[..., m:-m, m:-m] < 1e-4).float().mean()
    assert off < 0.05


def test_dense_descriptor_rejects_bad_args():
    with pytest.raises(ValueError, match="kind"):
        DenseDescriptor("sift")
    with pytest.raises(ValueError, match="img"):
        DenseDescriptor("hog")(torch.rand(1, 1, 32, 32))


def test_resnet_random_weights_shapes_and_strides():
    net = ResNetFeatures(50, layers=("stem", "layer1", "layer2", "layer3.1", "layer3"), weights=None).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 64, 96))
    assert [tuple(o.shape) for o in out] == [(1, 64, 16, 24), (1, 256, 16, 24), (1, 512, 8, 12),
                                             (1, 1024, 4, 6), (1, 1024, 4, 6)]
    assert net.strides == [4, 4, 8, 16, 16]
    assert "layer4" not in net.stages  # nothing deeper than needed is kept
    assert not torch.equal(out[3], out[4])  # block 1 of 6 differs from the layer3 output


def test_resnet101_layer4_and_normalisation_inside():
    net = ResNetFeatures(101, layers=("layer4",)).eval()
    with torch.no_grad():
        x = torch.rand(1, 3, 64, 64)
        (f,) = net(x)
        (g,) = net(x * 0.5)
    assert f.shape == (1, 2048, 2, 2) and net.strides == [32]
    assert len(net.stages["layer3"]) == 23
    assert torch.isfinite(f).all() and not torch.allclose(f, g)


def test_resnet_imagenet_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        ResNetFeatures(50, weights="imagenet")
    assert not any(tmp_path.rglob("*.pth"))
    assert imagenet_checkpoint_path(50).startswith(str(tmp_path))


def test_resnet_loads_local_state_dict(tmp_path):
    import torchvision

    ref = torchvision.models.resnet50(weights=None)
    sd = {"module." + k: v for k, v in ref.state_dict().items()}
    path = tmp_path / "r50.pth"
    torch.save({"state_dict": sd}, path)
    net = ResNetFeatures(50, layers=("layer1",), weights=str(path))
    assert torch.equal(net.stem_conv[0].weight, ref.conv1.weight)
    assert torch.equal(net.stages["layer1"][0].conv1.weight, ref.layer1[0].conv1.weight)


def test_resnet_bad_args():
    with pytest.raises(ValueError, match="depth"):
        ResNetFeatures(34)
    with pytest.raises(ValueError, match="unknown ResNet layer"):
        ResNetFeatures(50, layers=("layer5",))
    with pytest.raises(ValueError, match="blocks"):
        ResNetFeatures(50, layers=("layer1.7",))
    with pytest.raises(ValueError, match="weights"):
        ResNetFeatures(50, weights="no-such-file.pth")


def test_build_backbone():
    assert isinstance(build_backbone("hog", stride=4), DenseDescriptor)
    assert build_backbone("daisy").kind == "daisy"
    assert isinstance(build_backbone("resnet50", layers=("layer2",)), ResNetFeatures)
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg16")
    assert np.isclose(DenseDescriptor("daisy", rings=2, histograms=6, orientations=4).channels, 52)
