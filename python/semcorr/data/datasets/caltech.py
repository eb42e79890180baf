"""Caltech-101 (Fei-Fei et al.) as a correspondence benchmark (Kim et al., DSP): 1,515 pairs,
15 per category, evaluated by transferring object masks (LT-ACC, IoU, LOC-ERR).

Layout (HPF's ``Caltech-101`` download, also WeakAlign/NC-Net)::

    Caltech-101/
      101_ObjectCategories/<category>/image_0001.jpg ...
      test_pairs_caltech_with_category.csv
          columns: source_image, target_image, class, XA, YA, XB, YB
          XA/YA (XB/YB): ','-separated x (y) coordinates of the object polygon in the
          source (target) image; class is the 1-based category index

Image paths in the CSV carry a prefix from the authors' tree; it is resolved away.
The category is the image's folder name. Samples carry the object masks
(``src_mask``/``tgt_mask``: (H, W) bool, rasterised in the resized frame) and no keypoints.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import CheckReport, FolderPairList, RawPair, parse_number_list, read_pair_csv

PAIR_FILE = "test_pairs_caltech_with_category.csv"


def polygon_mask(xs: np.ndarray, ys: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a polygon (vertex x and y pixel coordinates) into an (H, W) bool mask."""
    from skimage.draw import polygon

    rr, cc = polygon(np.asarray(ys, dtype=np.float64), np.asarray(xs, dtype=np.float64), shape)
    mask = np.zeros(shape, dtype=bool)
    mask[rr, cc] = True
    return mask


class Caltech101(FolderPairList):
    name = "caltech"
    default_thresh = "img"
    default_max_kps = 0

    title, pair_files, subfolder = "Caltech-101", (PAIR_FILE,), "Caltech-101"

    @staticmethod
    def read_rows(path: Path) -> list[dict]:
        def poly(xs, ys):
            return parse_number_list(xs, (",", ";")), parse_number_list(ys, (",", ";"))

        return [{"src": r[0].strip(), "tgt": r[1].strip(), "src_poly": poly(r[3], r[4]), "tgt_poly": poly(r[5], r[6])}
                for r in read_pair_csv(path)[1]]

    def load_raw(self, index: int) -> RawPair:
        r, src_img, tgt_img = self.read_pair(index)
        empty = np.zeros((0, 2))
        return RawPair(self.pair_id(index), self.category_of(r["src"]), src_img, tgt_img,
                       empty, empty, extra={"src_poly": r["src_poly"], "tgt_poly": r["tgt_poly"]})

    def finish_extra(self, raw, size_s, size_t, scale_s, scale_t):
        (sx, sy), (tx, ty) = raw.extra["src_poly"], raw.extra["tgt_poly"]
        # the polygons themselves too ((n, 2) (x, y), resized frame): HPF's protocol transfers the vertices
        poly = lambda x, y, sc: torch.tensor(np.stack([x * sc[0], y * sc[1]], 1), dtype=torch.float32)  # noqa: E731
        return {"src_mask": torch.from_numpy(polygon_mask(sx * scale_s[0], sy * scale_s[1], size_s)),
                "tgt_mask": torch.from_numpy(polygon_mask(tx * scale_t[0], ty * scale_t[1], size_t)),
                "src_poly": poly(sx, sy, scale_s), "tgt_poly": poly(tx, ty, scale_t)}

    @classmethod
    def layout(cls) -> str:
        return __doc__.split("::", 1)[1].split("Image paths in the CSV")[0].rstrip()

    @classmethod
    def check_files(cls, rep: CheckReport, root: Path, split: str) -> None:
        if not (root / "101_ObjectCategories").is_dir():
            rep.missing.append("101_ObjectCategories/")
        csv_path = cls.find_csv(root)
        if csv_path is None:
            rep.missing.append(PAIR_FILE)
            return
        rows = cls.read_rows(csv_path)
        rep.n_pairs = len(rows)
        cls.count_missing_images(rep, root, rows)
