"""Drop-in replacements for the correspondence modules of the published codebases, running on our ops.

Each submodule keeps the published names, signatures, attributes and weight layouts, so that code written
for the published repository (and its saved state dicts) works after changing one import:

    from lib.model import NeighConsensus, MutualMatching   # NC-Net (ignacio-rocco/ncnet)
    from semcorr_ext.compat.ncnet import NeighConsensus, MutualMatching

- :mod:`semcorr_ext.compat.ncnet`: ``Conv4d``, ``conv4d``, ``NeighConsensus``, ``MutualMatching``, ``maxpool4d``,
  ``FeatureCorrelation``, ``featureL2Norm`` (lib/conv4d.py, lib/model.py).
- :mod:`semcorr_ext.compat.sfnet`: ``find_correspondence``, ``matching_layer`` (model.py of cvlab-yonsei/SFNet).
- :mod:`semcorr_ext.compat.hpf`: ``appearance_similarity``, ``rhm`` (model/rhm.py of juhongm999/hpf).

The submodules are imported on demand (``from semcorr_ext.compat import ncnet``).
"""
__all__ = ["ncnet", "sfnet", "hpf"]
