"""PF-WILLOW (Ham et al., Proposal Flow, CVPR 2016): 900 test pairs of 10 object classes,
10 keypoints per image.

Layout (the ``PF-dataset`` zip plus the pair list of WeakAlign/NC-Net, or HPF's copy)::

    PF-WILLOW/                         (or PF-dataset/)
      car(G)/  car(M)/  car(S)/  duck(S)/  motorbike(G)/  motorbike(M)/  motorbike(S)/
      winebottle(M)/  winebottle(wC)/  winebottle(woC)/     images (*.png)
      test_pairs_pf.csv                (WeakAlign/NC-Net name; HPF calls it test_pairs.csv)
          columns: imageA, imageB, then K x-coordinates and K y-coordinates of A,
                   then K x and K y of B (K = 10); missing points are -1

Image paths in the CSV start with ``PF-dataset/``; that prefix is resolved away.
PF-WILLOW has no object boxes: its PCK reference length is the longest side of the box
around the valid *target* keypoints (``thresh_kpbox``; also put in ``thresh_bbox``, which
is what HPF's 'bbox' level means for this dataset).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import CheckReport, FolderPairList, RawPair, read_pair_csv, valid_pairs

PAIR_FILES = ("test_pairs_pf.csv", "test_pairs.csv")


class PFWillow(FolderPairList):
    name = "pfwillow"
    default_thresh = "kpbox"
    default_max_kps = 10

    title, pair_files, subfolder = "PF-WILLOW", PAIR_FILES, "PF-dataset"

    def __init__(self, root, split: str = "test", size=240, max_kps=None, pairs_csv=None):
        super().__init__(root, split, size, max_kps, pairs_csv)
        if self.rows and self.max_kps < len(self.rows[0]["src_kps"]):
            self.max_kps = len(self.rows[0]["src_kps"])

    @staticmethod
    def read_rows(path: Path) -> list[dict]:
        rows = []
        for r in read_pair_csv(path)[1]:
            vals = np.array([float(v) for v in r[2:]], dtype=np.float64)
            if len(vals) % 4:
                raise ValueError(f"{path}: a row has {len(vals)} coordinates, not 4*K")
            k = len(vals) // 4
            xa, ya, xb, yb = vals.reshape(4, k)
            rows.append({"src": r[0].strip(), "tgt": r[1].strip(),
                         "src_kps": np.stack([xa, ya], 1), "tgt_kps": np.stack([xb, yb], 1)})
        return rows

    def load_raw(self, index: int) -> RawPair:
        r, src_img, tgt_img = self.read_pair(index)
        src_kps, tgt_kps = valid_pairs(r["src_kps"], r["tgt_kps"])
        return RawPair(self.pair_id(index), self.category_of(r["src"]), src_img, tgt_img,
                       src_kps, tgt_kps)

    def finish(self, index, raw):
        sample = super().finish(index, raw)
        sample["thresh_bbox"] = sample["thresh_kpbox"]
        return sample

    @classmethod
    def layout(cls) -> str:
        return __doc__.split("Layout (the")[1].split("Image paths in the CSV")[0].split("::", 1)[1].rstrip()

    @classmethod
    def check_files(cls, rep: CheckReport, root: Path, split: str) -> None:
        csv_path = cls.find_csv(root)
        if csv_path is None:
            rep.missing.append(" or ".join(PAIR_FILES))
            return
        rows = cls.read_rows(csv_path)
        rep.n_pairs = len(rows)
        cats = sorted({cls.category_of(r["src"]) for r in rows})
        for c in cats:
            if not (root / c).is_dir() and not (root / "PF-dataset" / c).is_dir():
                rep.missing.append(f"{c}/")
        cls.count_missing_images(rep, root, rows)
