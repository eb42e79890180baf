"""Shared machinery of the benchmark loaders: image reading, resizing, keypoint padding,
PCK reference lengths, path resolution and the download check.

Every loader returns samples (dicts) with the same fields, so that one runner and one
collate function serve all of them:

=================  ==========================================================================
``index``          int, position in the dataset
``pair_id``        str, stable name of the pair (used for resuming)
``category``       str
``groups``         list[str], extra reporting groups (SPair variation levels, warp types, ...)
``src_img``        (3, H, W) float32 in [0, 1], resized to ``size`` when given
``tgt_img``        (3, H', W') float32
``src_kps``        (max_kps, 2) float32 (x, y) pixels of the *resized* images, padded with -1
``tgt_kps``        (max_kps, 2) float32, ``tgt_kps[i]`` corresponds to ``src_kps[i]``
``n_kps``          int, number of valid (unpadded) keypoints
``src_bbox``       (4,) float32 (x1, y1, x2, y2) in the resized frame, all -1 when unknown
``tgt_bbox``       (4,) float32
``thresh_img``     float, ``max(H', W')`` of the target image (alpha_img)
``thresh_bbox``    float, ``max(h, w)`` of the target box (alpha_bbox), nan when unknown
``thresh_kpbox``   float, longest side of the box around the valid target keypoints
``src_size``       (2,) int64 original (H, W) of the source image; ``tgt_size`` likewise
=================  ==========================================================================

Coordinates are used as the annotations give them (no 0/1-based shift), scaled by
``new_size / old_size`` per axis when the images are resized. PCK is thus evaluated in
the resized frame, at the image size reported by the runner.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "PairDataset", "FolderPairList", "RawPair", "CheckReport", "read_image", "resize_image", "resolve_path",
    "pad_keypoints", "normalize_size",
]


# ----------------------------------------------------------------------------------------
# I/O helpers
# ----------------------------------------------------------------------------------------

def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as float32 (H, W, 3) in [0, 1] (grey -> 3 channels, alpha dropped,
    8- and 16-bit integer images scaled by their range)."""
    from semcorr._optional import optional_import

    iio = optional_import("imageio.v3", extra="datasets", purpose="reading dataset images")

    img = np.asarray(iio.imread(os.fspath(path)))
    return to_float_rgb(img)


def to_float_rgb(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.bool_:
        img = img.astype(np.float32)
    elif np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float32) / float(np.iinfo(img.dtype).max)
    else:
        img = img.astype(np.float32)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"unsupported image shape {img.shape}")
    return np.clip(img, 0.0, 1.0)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a mask image as (H, W) bool (any channel > half of the range)."""
    img = read_image(path)
    return img.max(axis=2) > 0.5


def normalize_size(size) -> tuple[int, int] | None:
    """``None`` | int S -> (S, S) | (H, W)."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def resize_image(img: np.ndarray, size: tuple[int, int] | None) -> torch.Tensor:
    """(H, W, 3) float -> (3, h, w) float32 tensor (bilinear, antialiased when shrinking)."""
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()
    if size is None or tuple(size) == tuple(t.shape[1:]):
        return t.contiguous()
    out = F.interpolate(t[None], size=tuple(size), mode="bilinear", align_corners=False,
                        antialias=True)[0]
    return out.clamp_(0.0, 1.0).contiguous()


def pad_keypoints(kps: np.ndarray, max_kps: int) -> torch.Tensor:
    """(n, 2) -> (max_kps, 2) float32 padded with -1."""
    kps = np.asarray(kps, dtype=np.float64).reshape(-1, 2)
    if kps.shape[0] > max_kps:
        raise ValueError(f"{kps.shape[0]} keypoints exceed max_kps={max_kps}; pass a larger max_kps")
    out = -np.ones((max_kps, 2), dtype=np.float32)
    out[: kps.shape[0]] = kps
    return torch.from_numpy(out)


def resolve_path(root: Path, rel: str, fallbacks: Sequence[Path] = ()) -> Path:
    """Find a file named in a pair list.

    Published pair lists carry a prefix from the authors' tree (``PF-dataset-PASCAL/``,
    ``PF-dataset/``, ``caltech-101/``...). Try ``root/rel``, then ``rel`` with leading
    components dropped one at a time, then the base name inside each ``fallbacks``
    folder. Returns the first existing path, else ``root/rel``.
    """
    rel = rel.strip().replace("\\", "/").lstrip("/")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    for k in range(len(parts)):
        cand = root.joinpath(*parts[k:])
        if cand.is_file():
            return cand
    for folder in fallbacks:
        cand = folder / parts[-1]
        if cand.is_file():
            return cand
    return root.joinpath(*parts)


# ----------------------------------------------------------------------------------------
# Raw pairs and the base dataset
# ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class RawPair:
    """A pair as annotated, before resizing. Keypoints (n, 2) of valid points only."""
    pair_id: str
    category: str
    src_img: np.ndarray
    tgt_img: np.ndarray
    src_kps: np.ndarray
    tgt_kps: np.ndarray
    src_bbox: np.ndarray | None = None
    tgt_bbox: np.ndarray | None = None
    groups: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class CheckReport:
    """What is missing from a download (``semcorr data check``)."""
    dataset: str
    root: str
    split: str
    missing: list[str] = dataclasses.field(default_factory=list)     # expected files/folders absent
    n_pairs: int = 0
    pairs_missing_images: int = 0
    pairs_missing_annotations: int = 0
    examples: list[str] = dataclasses.field(default_factory=list)    # a few missing files
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and self.pairs_missing_images == 0 \
            and self.pairs_missing_annotations == 0 and self.n_pairs > 0

    @classmethod
    def for_root(cls, dataset: str, root: Path, split: str) -> "CheckReport":
        """A report on ``root``; a root that is not a folder is listed missing (then there is nothing more
        to check: callers return the report when ``missing`` is not empty)."""
        rep = cls(dataset, str(root), split)
        if not root.is_dir():
            rep.missing.append(f"{root} (root folder)")
        return rep

    def count_missing(self, paths: Iterable[Path], annotations: bool = False) -> None:
        """Count a pair whose files ``paths`` (images, or ``annotations``) are not all present; the first
        absent one becomes an example."""
        gone = [p for p in paths if not Path(p).is_file()]
        if gone:
            if annotations:
                self.pairs_missing_annotations += 1
            else:
                self.pairs_missing_images += 1
            self.add_example(gone[0])

    def add_example(self, path: Path | str, limit: int = 5) -> None:
        if len(self.examples) < limit:
            self.examples.append(str(path))

    def format(self) -> str:
        lines = [f"{self.dataset} ({self.split}) at {self.root}"]
        for m in self.missing:
            lines.append(f"  MISSING  {m}")
        lines.append(f"  pairs listed: {self.n_pairs}")
        if self.pairs_missing_images:
            lines.append(f"  pairs referencing missing images: {self.pairs_missing_images}")
        if self.pairs_missing_annotations:
            lines.append(f"  pairs with missing annotation files: {self.pairs_missing_annotations}")
        for e in self.examples:
            lines.append(f"    e.g. {e}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        lines.append("  OK: ready to evaluate" if self.ok else "  NOT READY")
        return "\n".join(lines)


class PairDataset(torch.utils.data.Dataset):
    """Base of the benchmark loaders. Subclasses implement ``__len__``, ``load_raw(i)``,
    ``layout()`` and ``check_files(rep, root, split)``."""

    name: str = "base"
    default_thresh: str = "img"       # which reference length the benchmark reports
    default_max_kps: int = 20

    def __init__(self, root: str | os.PathLike | None, split: str = "test",
                 size: int | tuple[int, int] | None = 240, max_kps: int | None = None):
        self.root = Path(root) if root is not None else None
        self.split = split
        self.size = normalize_size(size)
        self.max_kps = int(max_kps if max_kps is not None else self.default_max_kps)

    # -- to implement --------------------------------------------------------------------
    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def load_raw(self, index: int) -> RawPair:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def layout(cls) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def check_files(cls, rep: CheckReport, root: Path, split: str, **options) -> None:  # pragma: no cover
        """Add to ``rep`` what is missing inside the existing folder ``root`` (see :meth:`check`)."""
        raise NotImplementedError

    @staticmethod
    def data_root(root: Path) -> Path:
        """The folder holding the files, given the one the user named (a download's top folder, say)."""
        return root

    def pair_ids(self) -> list[str]:
        """Names of all pairs, without loading images (used to resume)."""
        return [self.pair_id(i) for i in range(len(self))]

    def pair_id(self, index: int) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- common --------------------------------------------------------------------------
    @classmethod
    def check(cls, root: str | os.PathLike, split: str = "test", **options) -> CheckReport:
        """What is missing from the download at ``root`` (``semcorr data check``): the folder itself, then
        what :meth:`check_files` finds in it (``options``: the dataset's own, e.g. SPair's ``layout``)."""
        root = cls.data_root(Path(root))
        rep = CheckReport.for_root(cls.name, root, split)
        if not rep.missing:
            cls.check_files(rep, root, split, **options)
        return rep

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.finish(index, self.load_raw(index))

    def finish(self, index: int, raw: RawPair) -> dict[str, Any]:
        """Resize images, scale and pad keypoints and boxes, compute PCK reference lengths."""
        hs, ws = raw.src_img.shape[:2]
        ht, wt = raw.tgt_img.shape[:2]
        size_s = self.size or (hs, ws)
        size_t = self.size or (ht, wt)
        scale_s = np.array([size_s[1] / ws, size_s[0] / hs])
        scale_t = np.array([size_t[1] / wt, size_t[0] / ht])
        src_kps = np.asarray(raw.src_kps, dtype=np.float64).reshape(-1, 2) * scale_s
        tgt_kps = np.asarray(raw.tgt_kps, dtype=np.float64).reshape(-1, 2) * scale_t
        if src_kps.shape != tgt_kps.shape:
            raise ValueError(f"{raw.pair_id}: {len(src_kps)} source vs {len(tgt_kps)} target keypoints")

        def box(b, scale):
            if b is None:
                return torch.full((4,), -1.0)
            b = np.asarray(b, dtype=np.float64).reshape(4) * np.concatenate([scale, scale])
            return torch.tensor(b, dtype=torch.float32)

        src_bbox, tgt_bbox = box(raw.src_bbox, scale_s), box(raw.tgt_bbox, scale_t)
        tgt_kps_t = pad_keypoints(tgt_kps, self.max_kps)
        kpbox = float((tgt_kps.max(0) - tgt_kps.min(0)).max()) if len(tgt_kps) else math.nan

        sample = {
            "index": int(index),
            "pair_id": raw.pair_id,
            "category": raw.category,
            "groups": list(raw.groups),
            "src_img": resize_image(raw.src_img, self.size),
            "tgt_img": resize_image(raw.tgt_img, self.size),
            "src_kps": pad_keypoints(src_kps, self.max_kps),
            "tgt_kps": tgt_kps_t,
            "n_kps": int(src_kps.shape[0]),
            "src_bbox": src_bbox,
            "tgt_bbox": tgt_bbox,
            "thresh_img": float(max(size_t)),
            "thresh_bbox": float(max(tgt_bbox[2] - tgt_bbox[0], tgt_bbox[3] - tgt_bbox[1]))
            if raw.tgt_bbox is not None else math.nan,
            "thresh_kpbox": kpbox,
            "src_size": torch.tensor([hs, ws], dtype=torch.int64),
            "tgt_size": torch.tensor([ht, wt], dtype=torch.int64),
        }
        sample.update(self.finish_extra(raw, size_s, size_t, scale_s, scale_t))
        return sample

    def finish_extra(self, raw: RawPair, size_s, size_t, scale_s, scale_t) -> dict[str, Any]:
        """Dataset-specific fields (masks, flags) in the resized frame."""
        return {}


def valid_pairs(src: np.ndarray, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep keypoints valid in both images (finite and >= 0, i.e. not NaN/-1 padding)."""
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    tgt = np.asarray(tgt, dtype=np.float64).reshape(-1, 2)
    n = min(len(src), len(tgt))
    src, tgt = src[:n], tgt[:n]

    def ok(k):
        return np.isfinite(k).all(axis=1) & (k >= 0).all(axis=1)

    keep = ok(src) & ok(tgt)
    return src[keep], tgt[keep]


def read_pair_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """A published pair list (CSV): its header (cells stripped) and its rows, blank rows dropped (several
    lists end with empty lines)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        return header, [r for r in reader if r and not all(not c.strip() for c in r)]


def folder_category(rel: str) -> str:
    """The category of an image named in a pair list: the name of its folder."""
    parts = rel.replace("\\", "/").split("/")
    return parts[-2] if len(parts) >= 2 else "unknown"


def stems(row: dict) -> str:
    """``<source stem>-<target stem>`` of a pair list row ``{"src": path, "tgt": path}`` (pair ids)."""
    return f"{Path(row['src']).stem}-{Path(row['tgt']).stem}"


def parse_number_list(text: str, seps: Iterable[str] = (";", ",")) -> np.ndarray:
    """'1;2;3' or '1,2,3' (or a single number) -> float array."""
    text = str(text).strip().strip('"').strip("[]")
    if not text:
        return np.zeros(0)
    for sep in seps:
        if sep in text:
            return np.array([float(v) for v in text.split(sep) if v.strip() != ""])
    return np.array([float(v) for v in text.split()])


class FolderPairList(PairDataset):
    """A benchmark given as a pair list of image paths whose folder names the category (PF-WILLOW,
    Caltech-101): ``self.rows`` holds one dict a pair with the image paths ``src`` and ``tgt``."""

    title: str = ""                    # the benchmark's name in messages
    pair_files: tuple[str, ...] = ()   # the pair list's published names, first found wins
    subfolder: str = ""                # the download's top folder, looked into when root is its parent

    def __init__(self, root, split: str = "test", size=240, max_kps=None, pairs_csv=None):
        super().__init__(root, split, size, max_kps)
        self.csv_path = Path(pairs_csv) if pairs_csv else self.find_csv(self.root)
        if self.csv_path is None:
            what = f"{self.pair_files[0]} not" if len(self.pair_files) == 1 else f"none of {self.pair_files}"
            raise FileNotFoundError(f"{self.title}: {what} under {self.root}. "
                                    f"Run `semcorr data check {self.name} {self.root}`.")
        self.rows: list[dict] = self.read_rows(self.csv_path)

    @classmethod
    def find_csv(cls, root: Path) -> Path | None:
        for name in cls.pair_files:
            for folder in (root, root / cls.subfolder):
                if (folder / name).is_file():
                    return folder / name
        return None

    @staticmethod
    def read_rows(path: Path) -> list[dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.rows)

    category_of = staticmethod(folder_category)

    def pair_id(self, index: int) -> str:
        r = self.rows[index]
        return f"{self.category_of(r['src'])}/{stems(r)}"

    def read_pair(self, index: int) -> tuple[dict, np.ndarray, np.ndarray]:
        """(row, source image, target image) of pair ``index``."""
        r = self.rows[index]
        return r, read_image(resolve_path(self.root, r["src"])), read_image(resolve_path(self.root, r["tgt"]))

    @staticmethod
    def count_missing_images(rep: CheckReport, root: Path, rows: list[dict]) -> None:
        for r in rows:
            rep.count_missing((resolve_path(root, r["src"]), resolve_path(root, r["tgt"])))
