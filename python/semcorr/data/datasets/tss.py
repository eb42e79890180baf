"""TSS (Taniai et al., Joint Recovery of Dense Correspondence and Cosegmentation, CVPR 2016):
400 image pairs in three groups with dense ground-truth flow and foreground masks.

Layout (``TSS_CVPR2016``)::

    TSS_CVPR2016/
      FG3DCar/  JODS/  PASCAL/               the three groups (reported as categories)
        <pair folder>/
          image1.png  image2.png
          mask1.png   mask2.png              foreground masks of image1 / image2
          flow1.flo   flow2.flo              Middlebury .flo: flow1 on image1 -> image2,
                                             flow2 on image2 -> image1 (> 1e9 = unknown)
          flip_gt.txt                        1 when the pair is mirrored (optional)

Each folder gives two evaluations, ``1to2`` (source image1, ground truth flow1, mask1) and
``2to1``, as in the official evaluation. Flow PCK counts the foreground source pixels with
known flow whose transferred location is within ``alpha * max(H, W)`` of the target image.
Here those pixels are sampled on a regular grid (at most ``max_kps`` per pair, default 400,
``max_kps=None`` in ``points="all"`` mode for every pixel) and become the keypoints of the
sample. When ``flip_gt.txt`` says 1 and ``use_flip`` is on (default), the target image is
mirrored before matching and its ground truth mirrored with it (distances are unchanged).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .base import CheckReport, PairDataset, RawPair, read_image, read_mask

FLO_MAGIC = 202021.25
PAIR_FILES = ("image1.png", "image2.png", "mask1.png", "mask2.png", "flow1.flo", "flow2.flo")
GROUPS = ("FG3DCar", "JODS", "PASCAL")


def read_flo(path: str | os.PathLike) -> np.ndarray:
    """Middlebury .flo -> (H, W, 2) float32 (u, v)."""
    with open(path, "rb") as f:
        magic = np.fromfile(f, np.float32, count=1)
        if magic.size != 1 or magic[0] != np.float32(FLO_MAGIC):
            raise ValueError(f"{path}: not a Middlebury .flo file (bad magic)")
        w, h = (int(v) for v in np.fromfile(f, np.int32, count=2))
        data = np.fromfile(f, np.float32, count=2 * w * h)
    if data.size != 2 * w * h:
        raise ValueError(f"{path}: truncated ({data.size} of {2 * w * h} values)")
    return data.reshape(h, w, 2)


def write_flo(path: str | os.PathLike, flow: np.ndarray) -> None:
    """(H, W, 2) -> Middlebury .flo."""
    flow = np.asarray(flow, dtype=np.float32)
    h, w, _ = flow.shape
    with open(path, "wb") as f:
        np.array([FLO_MAGIC], np.float32).tofile(f)
        np.array([w, h], np.int32).tofile(f)
        flow.tofile(f)


def grid_points(candidates: np.ndarray, max_points: int | None) -> np.ndarray:
    """Pick at most ``max_points`` of the True pixels of ``candidates`` (H, W) on a regular
    grid; returns (n, 2) integer (x, y), row-major order. Deterministic."""
    ys, xs = np.nonzero(candidates)
    if max_points is None or len(xs) <= max_points:
        return np.stack([xs, ys], 1)
    stride = max(1, int(np.floor(np.sqrt(len(xs) / max_points))))
    while True:
        keep = (xs % stride == 0) & (ys % stride == 0)
        if keep.sum() <= max_points:
            break
        stride += 1
    xs, ys = xs[keep], ys[keep]
    return np.stack([xs, ys], 1)


class TSS(PairDataset):
    name = "tss"
    default_thresh = "img"
    default_max_kps = 400

    def __init__(self, root, split: str = "test", size=240, max_kps=None, use_flip: bool = True,
                 points: str = "grid"):
        super().__init__(root, split, size, max_kps)
        self.root = self.data_root(self.root)
        self.use_flip = use_flip
        self.points = points
        self.folders = self.list_pairs(self.root)
        if not self.folders:
            raise FileNotFoundError(f"TSS: no pair folders under {self.root}/{{{','.join(GROUPS)}}}. "
                                    f"Run `semcorr data check tss {self.root}`.")
        if points == "all":
            self.max_kps = max(self._n_pixels(d) for d in self.folders)

    @staticmethod
    def data_root(root: Path) -> Path:
        if not any((root / g).is_dir() for g in GROUPS) and (root / "TSS_CVPR2016").is_dir():
            return root / "TSS_CVPR2016"
        return root

    @staticmethod
    def list_pairs(root: Path) -> list[Path]:
        out = []
        groups = [g for g in GROUPS if (root / g).is_dir()]
        if not groups:  # an unknown grouping: every sub-folder holding pair folders
            groups = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for g in groups:
            out += sorted(p for p in (root / g).iterdir() if p.is_dir())
        return out

    @staticmethod
    def _n_pixels(d: Path) -> int:
        return max(int(read_mask(d / "mask1.png").sum()), int(read_mask(d / "mask2.png").sum()))

    def __len__(self) -> int:
        return 2 * len(self.folders)

    def pair_id(self, index: int) -> str:
        d = self.folders[index // 2]
        return f"{d.parent.name}/{d.name}/{'1to2' if index % 2 == 0 else '2to1'}"

    def load_raw(self, index: int) -> RawPair:
        d = self.folders[index // 2]
        a, b = (1, 2) if index % 2 == 0 else (2, 1)
        src_img = read_image(d / f"image{a}.png")
        tgt_img = read_image(d / f"image{b}.png")
        mask = read_mask(d / f"mask{a}.png")
        flow = read_flo(d / f"flow{a}.flo").astype(np.float64)
        if flow.shape[:2] != mask.shape or mask.shape != src_img.shape[:2]:
            raise ValueError(f"{d}: image{a}, mask{a} and flow{a} sizes differ")
        known = np.isfinite(flow).all(2) & (np.abs(flow) <= 1e9).all(2)
        pts = grid_points(mask & known, None if self.points == "all" else self.max_kps)
        src_kps = pts.astype(np.float64)
        tgt_kps = src_kps + flow[pts[:, 1], pts[:, 0]]
        flip = 0
        flip_file = d / "flip_gt.txt"
        if flip_file.is_file():
            txt = flip_file.read_text().strip()
            flip = int(float(txt)) if txt else 0
        if flip and self.use_flip:
            tgt_img = tgt_img[:, ::-1].copy()
            tgt_kps = tgt_kps.copy()
            tgt_kps[:, 0] = (tgt_img.shape[1] - 1) - tgt_kps[:, 0]
        # ground truth pointing outside the target image cannot be matched by anyone; it
        # is kept (as the official evaluation does) unless it is negative, which the -1
        # padding convention cannot represent
        inside = (tgt_kps >= 0).all(1)
        return RawPair(self.pair_id(index), d.parent.name, src_img, tgt_img,
                       src_kps[inside], tgt_kps[inside], extra={"flip": flip})

    def finish_extra(self, raw, size_s, size_t, scale_s, scale_t):
        return {"flip": int(raw.extra["flip"])}

    @classmethod
    def layout(cls) -> str:
        return __doc__.split("Layout (``TSS_CVPR2016``)::")[1].split("Each folder gives")[0].rstrip()

    @classmethod
    def check_files(cls, rep: CheckReport, root: Path, split: str) -> None:
        for g in GROUPS:
            if not (root / g).is_dir():
                rep.missing.append(f"{g}/")
        folders = cls.list_pairs(root)
        rep.n_pairs = 2 * len(folders)
        for d in folders:
            gone = [d / f for f in PAIR_FILES if not (d / f).is_file()]
            if any(f.suffix == ".png" and f.name.startswith("image") for f in gone):
                rep.pairs_missing_images += 2
            elif gone:
                rep.pairs_missing_annotations += 2
            if gone:
                rep.add_example(gone[0])
        if folders:
            rep.notes.append("each pair folder counts as two pairs (1to2 and 2to1)")
