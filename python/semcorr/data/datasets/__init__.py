"""Benchmark loaders: PF-PASCAL, PF-WILLOW, SPair-71k, Caltech-101, TSS, and the offline
synthetic benchmark. ``build_dataset(name, root, ...)`` picks one by name; every loader
reads the layout users download (see each module's docstring or ``semcorr data layout``).
Nothing is downloaded."""
from __future__ import annotations

from .base import CheckReport, PairDataset, RawPair, read_image
from .caltech import Caltech101
from .pf_pascal import PFPascal
from .pf_willow import PFWillow
from .spair import SPair
from .tss import TSS, read_flo, write_flo

ALIASES = {"pf-pascal": "pfpascal", "pf_pascal": "pfpascal", "pf-willow": "pfwillow",
           "pf_willow": "pfwillow", "spair-71k": "spair", "spair71k": "spair",
           "caltech-101": "caltech", "caltech101": "caltech"}
NAMES = ["pfpascal", "pfwillow", "spair", "caltech", "tss", "synthetic"]


def dataset_class(name: str):
    key = ALIASES.get(name.lower(), name.lower())
    if key == "synthetic":
        from semcorr.data.synthetic import SyntheticPairs
        return SyntheticPairs
    table = {"pfpascal": PFPascal, "pfwillow": PFWillow, "spair": SPair, "caltech": Caltech101,
             "tss": TSS}
    if key not in table:
        raise ValueError(f"unknown dataset '{name}'; choose from {', '.join(NAMES)}")
    return table[key]


def build_dataset(name: str, root=None, split: str = "test", size=240, **kwargs) -> PairDataset:
    """Instantiate a loader. ``root`` is required except for ``synthetic``."""
    cls = dataset_class(name)
    if cls.name != "synthetic" and root is None:
        raise ValueError(f"dataset '{name}' needs --root (the folder you downloaded)")
    return cls(root, split=split, size=size, **kwargs)


__all__ = ["PairDataset", "RawPair", "CheckReport", "read_image", "PFPascal", "PFWillow", "SPair",
           "Caltech101", "TSS", "read_flo", "write_flo", "build_dataset", "dataset_class", "NAMES"]
