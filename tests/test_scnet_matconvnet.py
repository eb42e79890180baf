"""SCNet's released MatConvNet weights: a .mat written with scipy.io.savemat in the layout of the released training
scripts (``save(file, 'net', 'stats')`` of a DagNN saveobj) loads, and wrong files fail naming the params."""
import numpy as np
import pytest
import scipy.io
import torch

from semcorr.checkpoints import CheckpointError
from semcorr.models import build_model
from semcorr.models import scnet as sc
from semcorr.models.scnet import matconvnet as mcn

FC_DIM = 8  # the released FC has 2048 outputs; the layout is the same with 8


def released_params(variant, rng, fc_dim=FC_DIM):
    """{name: MATLAB-layout float32 value} as SCNet_*_init.m names them (biases as column vectors)."""
    out = {}
    for name, shape in mcn.matconvnet_param_shapes(variant, fc_dim).items():
        if name.endswith("b"):
            out[name] = rng.standard_normal((shape[0], 1)).astype(np.float32)
        else:
            out[name] = (rng.standard_normal(shape) * 0.01).astype(np.float32)
    return out


def save_dagnn(path, params, lr0=(), vote_layer=True):
    """A DagNN saveobj struct (vars, params, layers, meta) + stats, as cnn_train_dag's saveState writes it."""
    pdt = [("name", object), ("value", object), ("learningRate", object), ("weightDecay", object),
           ("trainMethod", object)]
    parr = np.zeros((1, len(params)), dtype=pdt)
    for i, (k, v) in enumerate(params.items()):
        parr[0, i] = (k, v, 0.0 if k in lr0 else 1.0, 1.0, "gradient")
    ldt = [("name", object), ("type", object), ("inputs", object), ("outputs", object), ("params", object),
           ("block", object)]
    layers = np.zeros((1, 3), dtype=ldt)
    layers[0, 0] = ("b1_conv1_1", "dagnn.Conv", np.array(["b1_input"], dtype=object),
                    np.array(["b1_x1"], dtype=object), np.array(["conv1_1f", "conv1_1b"], dtype=object),
                    {"size": np.array([3.0, 3, 3, 64]), "hasBias": True, "pad": np.array([1.0, 1, 1, 1])})
    layers[0, 1] = ("loss", "dagnn.PFLoss", np.array(["AG_out", "idx_for_active_opA", "IoU2GT"], dtype=object),
                    np.array(["objective"], dtype=object), np.zeros((0, 0)), {"opts": np.zeros((0, 0))})
    # SCNet_AG(plus)_init add the Hough vote; SCNet_A_init a ReLU in its place
    layers[0, 2] = (("vote", "dagnn.ProposalHoughVote") if vote_layer else ("relu_A", "dagnn.ReLU")) + (
        np.array(["A_out", "b1_rois", "b2_rois", "b1_input", "b2_input"], dtype=object),
        np.array(["G_out"], dtype=object), np.zeros((0, 0)), {"opts": np.zeros((0, 0))})
    vdt = [("name", object), ("precious", object)]
    vars_ = np.zeros((1, 2), dtype=vdt)
    vars_[0, 0] = ("b1_input", False)
    vars_[0, 1] = ("AG_out", False)
    net = {"vars": vars_, "params": parr, "layers": layers,
           "meta": {"normalization": {"averageImage": np.array([122.74, 114.94, 101.64])}}}
    stats = {"train": {"objective": np.array([0.8, 0.6]), "num": 100.0, "time": 10.0},
             "val": {"objective": np.array([0.9, 0.7]), "num": 50.0, "time": 5.0}}
    scipy.io.savemat(path, {"net": net, "stats": stats})


@pytest.mark.parametrize("variant", ["A", "AG+"])
def test_released_mat_loads(tmp_path, variant):
    rng = np.random.default_rng(0)
    params = released_params(variant, rng)
    path = tmp_path / ("SCNet-%s.mat" % variant.replace("+", "plus"))
    save_dagnn(path, params, lr0=[k for k in params if k.startswith("conv")], vote_layer=variant != "A")
    model = build_model("scnet", checkpoint=str(path), fc_dim=FC_DIM)  # the variant is read from the file
    assert model.variant == variant and model.untrained_parts() == []
    # VGG: MatConvNet (H, W, Cin, Cout) -> torch (Cout, Cin, H, W)
    conv = model.backbone.features[mcn.VGG_CONVS[3][1]]  # conv2_2
    np.testing.assert_array_equal(conv.weight.detach().numpy(), params["conv2_2f"].transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(conv.bias.detach().numpy(), params["conv2_2b"][:, 0])
    # the FC as a 7x7 convolution on the pooled (C, 7, 7) map: a Linear over its (C, H, W) flattening
    pooled = torch.randn(2, 512, 7, 7)
    f, b = params["cnv_fc_1f"], params["cnv_fc_1b"][:, 0]
    ref = np.einsum("nchw,hwcd->nd", pooled.numpy().astype(np.float64), f.astype(np.float64)) + b
    np.testing.assert_allclose(model.fc_a(pooled.flatten(1)).detach().numpy(), ref, rtol=1e-4, atol=1e-5)
    if variant == "AG+":
        np.testing.assert_array_equal(model.fc_g.bias.detach().numpy(), params["cnv_fc_2b"][:, 0])


def test_variant_from_the_file(tmp_path):
    rng = np.random.default_rng(2)
    save_dagnn(tmp_path / "ag.mat", released_params("AG", rng))
    assert sc.SCNet(checkpoint=str(tmp_path / "ag.mat"), fc_dim=FC_DIM).variant == "AG"
    save_dagnn(tmp_path / "a.mat", released_params("A", rng), vote_layer=False)
    assert sc.SCNet(checkpoint=str(tmp_path / "a.mat"), fc_dim=FC_DIM).variant == "A"


def test_wrong_files_name_the_params(tmp_path):
    rng = np.random.default_rng(1)
    params = released_params("AG", rng)
    # an AG file has no geometry FC: loading it as AG+ names the missing params
    save_dagnn(tmp_path / "ag.mat", params)
    with pytest.raises(CheckpointError, match="missing keys: cnv_fc_2f, cnv_fc_2b"):
        sc.SCNet(variant="AG+", checkpoint=str(tmp_path / "ag.mat"), fc_dim=FC_DIM)
    # an AG+ file loaded as AG names the extra ones
    save_dagnn(tmp_path / "agplus.mat", released_params("AG+", rng))
    with pytest.raises(CheckpointError, match="unexpected keys: cnv_fc_2f, cnv_fc_2b"):
        sc.SCNet(variant="AG", checkpoint=str(tmp_path / "agplus.mat"), fc_dim=FC_DIM)
    # a wrong shape is named with both shapes
    bad = dict(params, cnv_fc_1f=params["cnv_fc_1f"][:, :, :256])
    save_dagnn(tmp_path / "bad.mat", bad)
    with pytest.raises(CheckpointError, match=r"cnv_fc_1f: checkpoint \(7, 7, 256, 8\), model \(7, 7, 512, 8\)"):
        sc.SCNet(variant="AG", checkpoint=str(tmp_path / "bad.mat"), fc_dim=FC_DIM)
    # a .mat without a DagNN
    scipy.io.savemat(tmp_path / "other.mat", {"weights": np.zeros(3)})
    with pytest.raises(CheckpointError, match="no MatConvNet DagNN.*'weights'"):
        sc.SCNet(variant="AG", checkpoint=str(tmp_path / "other.mat"), fc_dim=FC_DIM)
    with pytest.raises(FileNotFoundError):
        sc.SCNet(variant="AG", checkpoint=str(tmp_path / "missing.mat"), fc_dim=FC_DIM)
    with pytest.raises(ValueError, match="backbone='vgg16'"):
        sc.SCNet(variant="AG", checkpoint=str(tmp_path / "ag.mat"), backbone="daisy", fc_dim=FC_DIM)
