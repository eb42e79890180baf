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

import csv
from pathlib import Path

import numpy as np

from .base import CheckReport, PairDataset, RawPair, read_image, resolve_path, valid_pairs

PAIR_FILES = ("test_pairs_pf.csv", "test_pairs.csv")


class PFWillow(PairDataset):
    name = "pfwillow"
    default_thresh = "kpbox"
    default_max_kps = 10

    def __init__(self, root, split: str = "test", size=240, max_kps=None, pairs_csv=None):
        super().__init__(root, split, size, max_kps)
        self.csv_path = Path(pairs_csv) if pairs_csv else self.find_csv(self.root)
        if self.csv_path is None:
            raise FileNotFoundError(f"PF-WILLOW: none of {PAIR_FILES} under {self.root}. "
                                    f"Run `semcorr data check pfwillow {self.root}`.")
        self.rows = self.read_rows(self.csv_path)
        if self.rows and self.max_kps < len(self.rows[0]["src_kps"]):
            self.max_kps = len(self.rows[0]["src_kps"])

    @staticmethod
    def find_csv(root: Path) -> Path | None:
        for name in PAIR_FILES:
            for folder in (root, root / "PF-dataset"):
                if (folder / name).is_file():
                    return folder / name
        return None

    @staticmethod
    def read_rows(path: Path) -> list[dict]:
        rows = []
        with open(path, newline="") as f:
            reader = csv.reader(f)
            next(reader)
            for r in reader:
                if not r or all(not c.strip() for c in r):
                    continue
                vals = np.array([float(v) for v in r[2:]], dtype=np.float64)
                if len(vals) % 4:
                    raise ValueError(f"{path}: a row has {len(vals)} coordinates, not 4*K")
                k = len(vals) // 4
                xa, ya, xb, yb = vals.reshape(4, k)
                rows.append({"src": r[0].strip(), "tgt": r[1].strip(),
                             "src_kps": np.stack([xa, ya], 1), "tgt_kps": np.stack([xb, yb], 1)})
        return rows

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def category_of(rel: str) -> str:
        parts = rel.replace("\\", "/").split("/")
        return parts[-2] if len(parts) >= 2 else "unknown"

    def pair_id(self, index: int) -> str:
        r = self.rows[index]
        return f"{self.category_of(r['src'])}/{Path(r['src']).stem}-{Path(r['tgt']).stem}"

    def load_raw(self, index: int) -> RawPair:
        r = self.rows[index]
        src_img = read_image(resolve_path(self.root, r["src"]))
        tgt_img = read_image(resolve_path(self.root, r["tgt"]))
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
    def check(cls, root, split: str = "test") -> CheckReport:
        root = Path(root)
        rep = CheckReport("pfwillow", str(root), split)
        if not root.is_dir():
            rep.missing.append(f"{root} (root folder)")
            return rep
        csv_path = cls.find_csv(root)
        if csv_path is None:
            rep.missing.append(" or ".join(PAIR_FILES))
            return rep
        rows = cls.read_rows(csv_path)
        rep.n_pairs = len(rows)
        cats = sorted({cls.category_of(r["src"]) for r in rows})
        for c in cats:
            if not (root / c).is_dir() and not (root / "PF-dataset" / c).is_dir():
                rep.missing.append(f"{c}/")
        for r in rows:
            gone = [p for p in (resolve_path(root, r["src"]), resolve_path(root, r["tgt"]))
                    if not p.is_file()]
            if gone:
                rep.pairs_missing_images += 1
                rep.add_example(gone[0])
        return rep
