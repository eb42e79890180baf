"""PF-PASCAL (Ham et al., Proposal Flow, TPAMI 2018): 1,351 pairs of 20 PASCAL VOC classes,
evaluated on the 300 test pairs of the split by Han et al. (SCNet).

Two layouts are in circulation and both are read:

* HPF / DHPF / CATs (``PF-PASCAL`` folder)::

      PF-PASCAL/
        JPEGImages/2009_001332.jpg ...
        Annotations/<class>/2009_001332.mat      # 'kps' (n, 2) with NaN rows, 'bbox' (1, 4)
        trn_pairs.csv  val_pairs.csv  test_pairs.csv
            columns: source_image, target_image, class [, flip]

* WeakAlign / NC-Net::

      <root>/PF-dataset-PASCAL/JPEGImages/..., PF-dataset-PASCAL/Annotations/<class>/*.mat
      <root>/test_pairs_pf_pascal.csv  (or image_pairs/test_pairs.csv)
            columns: source_image, target_image, class, XA, YA, XB, YB
            XA/YA/...: ';'-separated coordinates (padded with -1 in some copies)

``class`` is 1-based in the 20 VOC classes. Keypoints come from the CSV when it has the
XA/YA/XB/YB columns, else from the ``.mat`` files (a keypoint counts when it is annotated
in both images, as in HPF). Boxes come from the ``.mat`` files; without them alpha_bbox is
unavailable (``thresh_bbox = nan``) and the benchmark's alpha_img is used anyway.
Pairs' ``trn`` flip column (an augmentation flag) is ignored: evaluation uses images as is.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .base import (CheckReport, PairDataset, RawPair, parse_number_list, read_image, read_pair_csv, resolve_path,
                   stems, valid_pairs)

VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor"]

_SPLIT_ALIASES = {"trn": ["trn", "train"], "train": ["train", "trn"], "val": ["val"],
                  "test": ["test"]}


def _pair_csv_candidates(root: Path, split: str) -> list[Path]:
    out = []
    for s in _SPLIT_ALIASES.get(split, [split]):
        out += [root / f"{s}_pairs.csv", root / f"{s}_pairs_pf_pascal.csv",
                root / "image_pairs" / f"{s}_pairs.csv",
                root / "PF-dataset-PASCAL" / f"{s}_pairs.csv"]
    return out


def _data_dir(root: Path) -> Path:
    """The folder holding JPEGImages/ and Annotations/."""
    for cand in (root, root / "PF-dataset-PASCAL", root / "PF-PASCAL"):
        if (cand / "JPEGImages").is_dir():
            return cand
    return root


def read_pascal_mat(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(kps (n, 2) with NaN rows for unannotated, bbox (4,) or None) of a PF-PASCAL .mat."""
    from semcorr._optional import optional_import

    scipy_io = optional_import("scipy.io", extra="datasets", purpose="reading PF-PASCAL .mat annotations")
    mat = scipy_io.loadmat(os.fspath(path))
    kps = np.asarray(mat["kps"], dtype=np.float64).reshape(-1, 2)
    bbox = np.asarray(mat["bbox"], dtype=np.float64).reshape(-1)[:4] if "bbox" in mat else None
    return kps, bbox


class PFPascal(PairDataset):
    name = "pfpascal"
    default_thresh = "img"
    default_max_kps = 20

    def __init__(self, root, split: str = "test", size=240, max_kps=None,
                 pairs_csv: str | os.PathLike | None = None):
        super().__init__(root, split, size, max_kps)
        self.csv_path = Path(pairs_csv) if pairs_csv else self.find_csv(self.root, split)
        if self.csv_path is None or not self.csv_path.is_file():
            raise FileNotFoundError(
                f"PF-PASCAL: no pair list for split '{split}' under {self.root} (looked for "
                f"{', '.join(str(p.relative_to(self.root)) for p in _pair_csv_candidates(self.root, split))}). "
                f"Run `semcorr data check pfpascal {self.root}`.")
        self.data_dir = _data_dir(self.root)
        self.rows = self.read_rows(self.csv_path)

    @staticmethod
    def find_csv(root: Path, split: str) -> Path | None:
        for c in _pair_csv_candidates(root, split):
            if c.is_file():
                return c
        return None

    @staticmethod
    def read_rows(path: Path) -> list[dict]:
        header, rows = read_pair_csv(path)
        has_kps = {"XA", "YA", "XB", "YB"} <= set(header)
        out = []
        for r in rows:
            cls = r[2].strip()
            cls_name = VOC_CLASSES[int(float(cls)) - 1] if _is_number(cls) else cls
            row = {"src": r[0].strip(), "tgt": r[1].strip(), "category": cls_name}
            if has_kps:
                get = {h: r[i] for i, h in enumerate(header) if i < len(r)}
                row["src_kps"] = np.stack([parse_number_list(get["XA"]), parse_number_list(get["YA"])], 1)
                row["tgt_kps"] = np.stack([parse_number_list(get["XB"]), parse_number_list(get["YB"])], 1)
            out.append(row)
        return out

    def __len__(self) -> int:
        return len(self.rows)

    def pair_id(self, index: int) -> str:
        r = self.rows[index]
        return f"{stems(r)}:{r['category']}"

    def image_path(self, rel: str) -> Path:
        return resolve_path(self.root, rel, [self.data_dir / "JPEGImages"])

    def annotation_path(self, rel: str, category: str) -> Path:
        return self.data_dir / "Annotations" / category / (Path(rel).stem + ".mat")

    def load_raw(self, index: int) -> RawPair:
        r = self.rows[index]
        src_img = read_image(self.image_path(r["src"]))
        tgt_img = read_image(self.image_path(r["tgt"]))
        src_ann = self.annotation_path(r["src"], r["category"])
        tgt_ann = self.annotation_path(r["tgt"], r["category"])
        src_box = tgt_box = None
        have_ann = src_ann.is_file() and tgt_ann.is_file()
        if have_ann:
            src_mk, src_box = read_pascal_mat(src_ann)
            tgt_mk, tgt_box = read_pascal_mat(tgt_ann)
        if "src_kps" in r:
            src_kps, tgt_kps = r["src_kps"], r["tgt_kps"]
        elif have_ann:
            src_kps, tgt_kps = src_mk, tgt_mk
        else:
            raise FileNotFoundError(f"PF-PASCAL: {src_ann} or {tgt_ann} missing and the pair list "
                                    f"{self.csv_path.name} has no keypoint columns")
        src_kps, tgt_kps = valid_pairs(src_kps, tgt_kps)
        return RawPair(self.pair_id(index), r["category"], src_img, tgt_img, src_kps, tgt_kps,
                       src_box, tgt_box)

    @classmethod
    def layout(cls) -> str:
        return __doc__.split("Two layouts are in circulation and both are read:")[1].split(
            "``class`` is 1-based")[0].rstrip()

    @classmethod
    def check_files(cls, rep: CheckReport, root: Path, split: str) -> None:
        data_dir = _data_dir(root)
        if not (data_dir / "JPEGImages").is_dir():
            rep.missing.append("JPEGImages/ (or PF-dataset-PASCAL/JPEGImages/)")
        csv_path = cls.find_csv(root, split)
        if csv_path is None:
            rep.missing.append(f"{split}_pairs.csv (HPF) or {split}_pairs_pf_pascal.csv (NC-Net)")
            return
        rows = cls.read_rows(csv_path)
        rep.n_pairs = len(rows)
        has_kps = bool(rows) and "src_kps" in rows[0]
        if not (data_dir / "Annotations").is_dir():
            if has_kps:
                rep.notes.append("Annotations/ absent: keypoints come from the CSV, alpha_bbox unavailable")
            else:
                rep.missing.append("Annotations/<class>/*.mat (keypoints and boxes)")
        probe = object.__new__(cls)
        probe.root, probe.data_dir = root, data_dir
        for r in rows:
            rep.count_missing((probe.image_path(r["src"]), probe.image_path(r["tgt"])))
            if not has_kps:
                rep.count_missing((probe.annotation_path(r["src"], r["category"]),
                                   probe.annotation_path(r["tgt"], r["category"])), annotations=True)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False
