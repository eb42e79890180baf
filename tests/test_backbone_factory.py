"""semcorr.backbone_factory: the one backbone set-up every model calls."""
import ast
import pathlib
import warnings

import pytest
import torch
from torch import nn

import semcorr.models
from semcorr.backbone_factory import make_backbone
from semcorr.backbones import DenseDescriptor, ResNetFeatures


def test_resnet_layers_weights_and_label():
    net = make_backbone("resnet50", "SomeModel", weights=None, default_layers=("layer4",))
    assert isinstance(net.module, ResNetFeatures) and net.module.depth == 50 and net.module.layers == ("layer4",)
    assert net.random and net.resnet and net.weights is None and net.name == "resnet50"
    assert net.label() == "resnet50 (random)" and net.label(checkpoint=True) == "resnet50 (checkpoint)"


def test_caller_layers_override_the_model_default():
    # models pass their backbone_kwargs through: a user's layers= wins over the model's default
    backbone_kwargs = {"layers": ("layer2", "layer3")}
    net = make_backbone("resnet50", "M", None, default_layers=("layer4",), **backbone_kwargs)
    assert net.module.layers == ("layer2", "layer3")
    assert make_backbone("resnet50", "M", None).module.layers == ("layer3",)  # ResNetFeatures' own default


def test_auto_weights_without_cache_warn_naming_the_model(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.warns(UserWarning, match="SomeModel: ImageNet weights for ResNet-50 are not in the torch hub cache"):
        net = make_backbone("resnet50", "SomeModel")
    assert net.random and net.label() == "resnet50 (random)"


def test_imagenet_weights_never_download(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        make_backbone("resnet50", "M", weights="imagenet")


@pytest.mark.parametrize("kind", ["daisy", "hog"])
def test_descriptor_stride(kind):
    default = make_backbone(kind, "M")
    assert isinstance(default.module, DenseDescriptor) and default.module.kind == kind
    assert default.module.stride == 8 and not default.random and not default.resnet and default.label() == kind
    assert make_backbone(kind, "M", stride=5).module.stride == 5
    assert make_backbone(kind, "M", radius=5).module.radius == 5  # other kwargs reach the descriptor


def test_module_is_used_as_given():
    m = nn.Conv2d(3, 4, 3)
    net = make_backbone(m, "M", weights=None, default_layers=("layer4",), stride=3)
    assert net.module is m and net.name == "Conv2d" and net.label() == "Conv2d" and not net.random


def test_unknown_backbone_names_it():
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        make_backbone("vgg", "M")


def test_no_model_imports_another_models_module_for_backbone_code():
    # the factory is the one place: no model module imports fuse_features / backbone helpers from a sibling model
    folder = pathlib.Path(semcorr.models.__file__).parent
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and any(a.name == "fuse_features" for a in node.names):
                assert node.module.endswith("backbone_factory"), "%s imports fuse_features from %s" % (path, node.module)


def test_dinov2_auto_without_cache_is_random_and_silent(tmp_path, monkeypatch):
    pytest.importorskip("timm")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the model's UNTRAINED line announces it, not a second warning
        net = make_backbone("dinov2_vits14", "M", depth=1, layers=(0,))
    assert net.random and net.weights is None and net.name == "dinov2_vits14" and net.module.layers == (0,)
    assert not net.module.pretrained
