"""SPair-71k (Min et al., 2019): 70,958 pairs of 18 categories (12,234 test pairs) with
per-pair difficulty annotations.

Layout (``SPair-71k.tar.gz``)::

    SPair-71k/
      JPEGImages/<category>/<image>.jpg
      PairAnnotation/{trn,val,test}/<id>-<src>-<trg>:<category>.json
      Layout/large/{trn,val,test}.txt        one "<id>-<src>-<trg>:<category>" per line
      Layout/small/...                       (a smaller subset; choose with layout="small")
      ImageAnnotation/, Segmentation/        (not needed for evaluation)

Pair JSON keys read: ``src_imname``, ``trg_imname``, ``category``, ``src_kps``, ``trg_kps``
(lists of [x, y], already restricted to keypoints visible in both images), ``src_bndbox``,
``trg_bndbox`` ([x1, y1, x2, y2]), ``src_imsize``/``trg_imsize`` and the variation flags
``viewpoint_variation``, ``scale_variation`` (0 easy, 1 medium, 2 hard), ``truncation``,
``occlusion`` (0 none, 1 source, 2 target, 3 both). The flags become reporting groups
(``viewpoint/easy``, ``truncation/both``, ...). PCK uses alpha_bbox on the target box.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import CheckReport, PairDataset, RawPair, read_image, valid_pairs

CATEGORIES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
              "cow", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "train",
              "tvmonitor"]

LEVELS = {"viewpoint_variation": ("viewpoint", ["easy", "medium", "hard"]),
          "scale_variation": ("scale", ["easy", "medium", "hard"]),
          "truncation": ("truncation", ["none", "src", "tgt", "both"]),
          "occlusion": ("occlusion", ["none", "src", "tgt", "both"])}


def variation_groups(ann: dict) -> list[str]:
    """SPair flags of a pair JSON -> group names such as 'viewpoint/hard'."""
    out = []
    for key, (short, names) in LEVELS.items():
        if key in ann:
            v = int(ann[key])
            out.append(f"{short}/{names[v] if 0 <= v < len(names) else v}")
    return out


def _split_dir(split: str) -> str:
    return {"train": "trn"}.get(split, split)


class SPair(PairDataset):
    name = "spair"
    default_thresh = "bbox"
    default_max_kps = 40

    def __init__(self, root, split: str = "test", size=240, max_kps=None, layout: str = "large",
                 category: str | None = None):
        super().__init__(root, split, size, max_kps)
        root = self.root = self.data_root(self.root)
        self.split_dir = _split_dir(split)
        self.layout_file = root / "Layout" / layout / f"{self.split_dir}.txt"
        if not self.layout_file.is_file():
            raise FileNotFoundError(f"SPair-71k: {self.layout_file} missing. "
                                    f"Run `semcorr data check spair {root}`.")
        names = [ln.strip() for ln in self.layout_file.read_text().splitlines() if ln.strip()]
        if category is not None:
            names = [n for n in names if n.rsplit(":", 1)[-1] == category]
        self.names = names

    @staticmethod
    def data_root(root: Path) -> Path:
        if not (root / "PairAnnotation").is_dir() and (root / "SPair-71k" / "PairAnnotation").is_dir():
            return root / "SPair-71k"
        return root

    def __len__(self) -> int:
        return len(self.names)

    def pair_id(self, index: int) -> str:
        return self.names[index]

    def annotation(self, index: int) -> dict:
        path = self.root / "PairAnnotation" / self.split_dir / f"{self.names[index]}.json"
        with open(path) as f:
            return json.load(f)

    def load_raw(self, index: int) -> RawPair:
        ann = self.annotation(index)           # the published JSON spells the target ``trg_``
        cat = ann["category"]
        src_img = read_image(self.root / "JPEGImages" / cat / ann["src_imname"])
        tgt_img = read_image(self.root / "JPEGImages" / cat / ann["trg_imname"])
        src_kps, tgt_kps = valid_pairs(np.asarray(ann["src_kps"], dtype=np.float64),
                                       np.asarray(ann["trg_kps"], dtype=np.float64))
        return RawPair(self.names[index], cat, src_img, tgt_img, src_kps, tgt_kps,
                       np.asarray(ann["src_bndbox"], dtype=np.float64),
                       np.asarray(ann["trg_bndbox"], dtype=np.float64),
                       groups=variation_groups(ann))

    @classmethod
    def layout(cls) -> str:
        return __doc__.split("Layout (``SPair-71k.tar.gz``)::")[1].split("Pair JSON keys")[0].rstrip()

    @classmethod
    def check_files(cls, rep: CheckReport, root: Path, split: str, layout: str = "large") -> None:
        sd = _split_dir(split)
        for rel in ("JPEGImages", f"PairAnnotation/{sd}", f"Layout/{layout}/{sd}.txt"):
            if not (root / rel).exists():
                rep.missing.append(rel + ("" if rel.endswith(".txt") else "/"))
        layout_file = root / "Layout" / layout / f"{sd}.txt"
        if not layout_file.is_file():
            return
        names = [ln.strip() for ln in layout_file.read_text().splitlines() if ln.strip()]
        rep.n_pairs = len(names)
        for name in names:
            path = root / "PairAnnotation" / sd / f"{name}.json"
            if not path.is_file():
                rep.pairs_missing_annotations += 1
                rep.add_example(path)
                continue
            with open(path) as f:
                ann = json.load(f)
            cat = ann.get("category", name.rsplit(":", 1)[-1])
            imgs = [root / "JPEGImages" / cat / ann["src_imname"],
                    root / "JPEGImages" / cat / ann["trg_imname"]]
            rep.count_missing(imgs)
