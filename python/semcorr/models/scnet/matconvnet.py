"""SCNet's released MatConvNet weights (``.mat``), read with ``scipy.io.loadmat``.

The released training scripts (``SCNet_train*.m``, from MatConvNet's ``cnn_train_dag``) save
``save(file, 'net', 'stats')`` with ``net = dagnn.DagNN.saveobj()``: a struct with fields ``vars``, ``params``,
``layers``, ``meta``; ``params`` is a struct array with fields ``name``, ``value``, ``learningRate``,
``weightDecay`` (and ``trainMethod``). The evaluation scripts ``load(modelPath)`` and use ``net``. Parameter
names (``SCNet_*_init.m``: VGG-16 imported with ``canonicalNames``, shared by the two siamese branches):

* ``conv1_1f``/``conv1_1b`` ... ``conv4_3f``/``conv4_3b``: VGG-16 up to pool4, filters ``H x W x Cin x Cout``,
  biases ``Cout`` (x 1);
* ``cnv_fc_1f`` (7 x 7 x 512 x 2048) / ``cnv_fc_1b``: the appearance FC (a 7x7 convolution on the ROI-pooled
  map);
* ``cnv_fc_2f`` / ``cnv_fc_2b``: AG+'s geometry FC.

MATLAB v7.3 (HDF5) files are not read by scipy; re-save them with ``save(..., '-v7')`` in MATLAB/Octave.
"""
import os
from typing import Dict

import numpy as np
import torch

from ...checkpoints import CheckpointError, check_keys

__all__ = ["VGG_CONVS", "read_matconvnet_params", "matconvnet_param_shapes", "to_torch_conv", "load_matconvnet",
           "infer_variant"]

#: MatConvNet names of VGG-16's convolutions up to pool4, in order (torchvision ``features`` indices beside)
VGG_CONVS = (("conv1_1", 0), ("conv1_2", 2), ("conv2_1", 5), ("conv2_2", 7), ("conv3_1", 10), ("conv3_2", 12),
             ("conv3_3", 14), ("conv4_1", 17), ("conv4_2", 19), ("conv4_3", 21))
_VGG_CHANNELS = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 512),
                 (512, 512), (512, 512))


def _field(obj, name):
    if isinstance(obj, dict):
        return obj.get(name)
    if isinstance(obj, np.ndarray) and obj.dtype.names:
        return obj[name] if name in obj.dtype.names else None
    return getattr(obj, name, None)


def read_matconvnet_params(path: "str | os.PathLike", with_layer_types: bool = False):
    """``{param name: value}`` of a saved DagNN (``{'net': ...}`` or the saveobj struct at the top level);
    with ``with_layer_types`` also the list of its layers' types (e.g. ``dagnn.ProposalHoughVote``)."""
    from scipy.io import loadmat

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError("SCNet weights %s do not exist" % path)
    try:
        mat = loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError as e:  # v7.3 = HDF5
        raise CheckpointError("%s is a MATLAB v7.3 (HDF5) file, which scipy cannot read; re-save it with "
                              "save(file, 'net', '-v7') in MATLAB/Octave (%s)" % (path, e)) from e
    except ValueError as e:
        raise CheckpointError("%s is not a MATLAB .mat file scipy can read: %s" % (path, e)) from e
    net = mat.get("net", mat)
    params = _field(net, "params")
    if params is None:
        raise CheckpointError("%s holds no MatConvNet DagNN: expected a variable 'net' with a field 'params' "
                              "(the layout of SCNet's training scripts), found variables %s"
                              % (path, sorted(k for k in mat if not k.startswith("__"))))
    out = {}
    for p in np.atleast_1d(params):
        name, value = _field(p, "name"), _field(p, "value")
        if name is None or value is None:
            raise CheckpointError("%s: a parameter entry lacks 'name' or 'value'" % path)
        out[str(name)] = np.asarray(value)
    if not with_layer_types:
        return out
    layers = _field(net, "layers")
    types = [] if layers is None else [str(_field(layer, "type")) for layer in np.atleast_1d(layers)]
    return out, types


def infer_variant(params: Dict[str, np.ndarray], layer_types) -> str:
    """The SCNet variant a released file holds: a geometry FC (``cnv_fc_2f``) -> AG+; else a
    ``dagnn.ProposalHoughVote`` layer -> AG; else A (the three init scripts build exactly these graphs)."""
    if "cnv_fc_2f" in params:
        return "AG+"
    if not layer_types:
        raise CheckpointError("cannot tell SCNet-A from SCNet-AG: the file has no 'layers'; pass variant='A' or 'AG'")
    return "AG" if any(t.endswith("ProposalHoughVote") for t in layer_types) else "A"


def matconvnet_param_shapes(variant: str, fc_dim: int = 2048, pool: int = 7) -> Dict[str, tuple]:
    """The parameters (MATLAB shapes) the released SCNet ``variant`` holds."""
    shapes = {}
    for (name, _), (cin, cout) in zip(VGG_CONVS, _VGG_CHANNELS):
        shapes[name + "f"], shapes[name + "b"] = (3, 3, cin, cout), (cout,)
    fcs = ("cnv_fc_1", "cnv_fc_2") if variant == "AG+" else ("cnv_fc_1",)
    for fc in fcs:
        shapes[fc + "f"], shapes[fc + "b"] = (pool, pool, 512, fc_dim), (fc_dim,)
    return shapes


def to_torch_conv(f: np.ndarray) -> torch.Tensor:
    """MatConvNet filters (H, W, Cin, Cout) -> torch (Cout, Cin, H, W) (both are cross-correlations)."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(f, dtype=np.float32).transpose(3, 2, 0, 1)))


def load_matconvnet(path, variant: str, fc_dim: int = 2048, pool: int = 7, raw=None) -> Dict[str, torch.Tensor]:
    """Read SCNet's released ``.mat`` and check every parameter's name and shape (a :class:`CheckpointError`
    names the missing, extra and mis-shaped ones). Returns the MatConvNet-named tensors in torch layout:
    filters (Cout, Cin, H, W), biases (Cout,). ``raw``: the file's params if already read."""
    raw = read_matconvnet_params(path) if raw is None else raw
    shapes = matconvnet_param_shapes(variant, fc_dim, pool)
    got = {}
    for k, v in raw.items():
        if k.endswith("b") and v.ndim == 2 and 1 in v.shape:  # MATLAB column/row vectors
            v = v.reshape(-1)
        if v.ndim == 3 and k.endswith("f"):  # MATLAB drops a trailing singleton dimension (Cout = 1)
            v = v[..., None]
        got[k] = torch.from_numpy(np.asarray(v, dtype=np.float32))
    expected = {k: torch.empty(s, device="meta") for k, s in shapes.items()}  # shapes only, no memory
    check_keys(expected, got, "SCNet-%s MatConvNet (%s)" % (variant, path))
    return {k: (to_torch_conv(got[k].numpy()) if k.endswith("f") else got[k]) for k in shapes}
