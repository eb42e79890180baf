"""Training data of the engine: image-pair datasets, the global-batch sampler that makes a run independent of
the number of processes, and the "partner" samples that weakly supervised losses use as negatives.

Datasets are built from the ``data`` section of a config:

* ``{kind: pairs_csv, root: DIR, csv: FILE, image_size: S}``: NC-Net's / Sparse NC-Net's weak pair lists
  (``ImagePairDataset`` of ignacio-rocco/ncnet): columns ``source_image, target_image, class|set, flip``, image
  paths relative to ``root``; both images of a pair are flipped horizontally when ``flip`` is 1, then resized to
  S x S by bilinear sampling on a corner-aligned grid (the published ``AffineTnf`` with the identity transform,
  written for PyTorch 0.3 whose ``grid_sample`` aligned corners).
* ``{kind: synthetic, image_size: S, repeats: R, seed: N, ...}``: the bundled offline pairs
  (:class:`semcorr.data.synthetic.SyntheticPairs`: scikit-image photos under random affine / TPS warps).
* ``{kind: keypoints, dataset: NAME, root: DIR, split: SPLIT, image_size: S}``: a benchmark loader of
  :mod:`semcorr.data.datasets` (keypoints, PCK thresholds) for the validation PCK; ``dataset: synthetic`` needs
  no root.

Samples of the pair datasets are dicts with ``src_img``, ``tgt_img`` ((3, S, S) float32 in [0, 1]) and ``index``.
"""
import csv
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, DistributedSampler

__all__ = ["PairsCSV", "SyntheticTrainPairs", "PartnerDataset", "GlobalBatchSampler", "build_pair_dataset",
           "build_keypoint_dataset", "resize_corner_aligned"]


def resize_corner_aligned(img: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """(3, H, W) -> (3, h, w) bilinear with corner-aligned sampling: output pixel i samples input position
    ``i * (H - 1) / (h - 1)`` (NC-Net's identity ``AffineTnf``; no anti-aliasing, as published)."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img.contiguous()
    return F.interpolate(img[None], size=tuple(size), mode="bilinear", align_corners=True)[0].contiguous()


class PairsCSV(Dataset):
    """A weakly supervised pair list in NC-Net's layout (see the module docstring).

    Args:
        root: the folder the image paths of the CSV are relative to (``datasets/pf-pascal``).
        csv_path: the pair list (``datasets/pf-pascal/image_pairs/train_pairs.csv``); a relative path is taken
            relative to ``root`` when it does not exist as given.
        image_size: side of the square the images are resized to (NC-Net: 400).
    """

    def __init__(self, root, csv_path, image_size: int = 400):
        self.root = Path(root)
        p = Path(csv_path)
        if not p.is_file() and (self.root / p).is_file():
            p = self.root / p
        if not p.is_file():
            raise FileNotFoundError("pairs_csv: pair list %s not found (root %s); point the config at your copy, "
                                    "e.g. --set data.train.root=/data/pf-pascal (and data.val.root, data.pck.root)"
                                    % (csv_path, root))
        self.csv_path = p
        self.size = (int(image_size), int(image_size))
        self.rows: List[Tuple[str, str, bool]] = []
        with open(p, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or len(header) < 2:
                raise ValueError("pairs_csv: %s has no header with source and target columns" % p)
            for r in reader:
                if not r or not r[0].strip():
                    continue
                flip = len(r) > 3 and r[3].strip() not in ("", "0", "0.0")
                self.rows.append((r[0].strip(), r[1].strip(), flip))

    def __len__(self) -> int:
        return len(self.rows)

    def _image(self, rel: str, flip: bool) -> torch.Tensor:
        from semcorr.data.datasets.base import read_image, resolve_path

        img = read_image(resolve_path(self.root, rel))
        if flip:
            img = img[:, ::-1]
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()
        return resize_corner_aligned(t, self.size)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        src, tgt, flip = self.rows[i]
        return {"index": int(i), "src_img": self._image(src, flip), "tgt_img": self._image(tgt, flip)}


class SyntheticTrainPairs(Dataset):
    """The offline synthetic pairs as training pairs: ``src_img`` = a bundled photo, ``tgt_img`` = its warp."""

    def __init__(self, image_size: int = 240, repeats: int = 4, seed: int = 0, warps: Sequence[str] = None,
                 images: Sequence[str] = None):
        from semcorr.data.synthetic import OFFLINE_IMAGES, WARP_KINDS, SyntheticPairs

        self.pairs = SyntheticPairs(size=int(image_size), repeats=int(repeats), stereo=False, seed=int(seed),
                                    warps=tuple(warps or WARP_KINDS), images=tuple(images or OFFLINE_IMAGES))

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        s = self.pairs[i]
        return {"index": int(i), "src_img": s["src_img"], "tgt_img": s["tgt_img"]}


def build_pair_dataset(spec: Dict[str, Any]) -> Dataset:
    """A training / validation-loss pair dataset from a ``data.train`` or ``data.val`` config entry."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "pairs_csv":
        missing = [k for k in ("root", "csv") if k not in spec]
        if missing:
            raise ValueError("data kind pairs_csv needs %s" % ", ".join(missing))
        return PairsCSV(spec["root"], spec["csv"], spec.get("image_size", 400))
    if kind == "synthetic":
        return SyntheticTrainPairs(**spec)
    raise ValueError("unknown data kind %r; choose pairs_csv or synthetic" % (kind,))


def build_keypoint_dataset(spec: Dict[str, Any]):
    """The validation-PCK dataset of a ``data.pck`` entry: a :mod:`semcorr.data.datasets` loader."""
    from semcorr.data.datasets import build_dataset

    spec = dict(spec)
    spec.pop("kind", None)
    name = spec.pop("dataset", None)
    if name is None:
        raise ValueError("data.pck needs 'dataset' (pfpascal, pfwillow, spair, synthetic, ...)")
    size = spec.pop("image_size", 240)
    for k in ("alpha", "thresh"):
        spec.pop(k, None)
    return build_dataset(name, spec.pop("root", None), split=spec.pop("split", "test"), size=size, **spec)


class PartnerDataset(Dataset):
    """Wraps a pair dataset so that item ``(i, j)`` is sample ``i`` plus ``partner_<field>`` = ``field`` of sample
    ``j`` for each of ``fields`` (NC-Net's negatives: the source image of the next pair of the global batch)."""

    def __init__(self, dataset: Dataset, fields: Sequence[str] = ()):
        self.dataset, self.fields = dataset, tuple(fields)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, ij) -> Dict[str, Any]:
        i, j = ij
        s = dict(self.dataset[i])
        if self.fields:
            p = self.dataset[j]
            for f in self.fields:
                s["partner_" + f] = p[f]
        return s


class GlobalBatchSampler(DistributedSampler):
    """Batches of a fixed *global* size, split over the processes, so that a run takes the same steps whatever
    the world size.

    Every epoch the dataset is shuffled with ``seed + epoch`` (as ``DistributedSampler``) and cut into
    ``len // batch_size`` global batches (the last partial batch is dropped: its size would depend on nothing
    but it could not be split evenly). Rank ``r`` of ``W`` takes positions ``[r b, (r + 1) b)`` of each global
    batch, ``b = batch_size / W``, and yields ``(index, partner)`` pairs where ``partner`` is the item at the next
    position of the global batch (cyclically): ``np.roll(arange(B), -1)`` of NC-Net's weak loss, computed on the
    global batch and not on the process's share.
    """

    def __init__(self, dataset, batch_size: int, num_replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 seed: int = 0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=True)
        if batch_size < 1:
            raise ValueError("train.batch_size must be >= 1, got %d" % batch_size)
        if batch_size % num_replicas:
            raise ValueError("train.batch_size (the global batch, %d) must be divisible by the number of processes "
                             "(%d)" % (batch_size, num_replicas))
        self.global_batch = int(batch_size)
        self.local_batch = self.global_batch // num_replicas
        self.steps = len(dataset) // self.global_batch
        if self.steps == 0:
            raise ValueError("the dataset has %d pairs, fewer than one global batch of %d"
                             % (len(dataset), self.global_batch))
        self.start_step = 0

    def __len__(self) -> int:
        return self.steps - self.start_step

    def global_order(self) -> List[int]:
        n = len(self.dataset)
        if not self.shuffle:
            return list(range(n))
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return torch.randperm(n, generator=g).tolist()

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        order, B, b = self.global_order(), self.global_batch, self.local_batch
        for s in range(self.start_step, self.steps):
            glob = order[s * B:(s + 1) * B]
            yield [(glob[p], glob[(p + 1) % B]) for p in range(self.rank * b, (self.rank + 1) * b)]


def per_pair_pck(pred: torch.Tensor, gt: torch.Tensor, thresh: torch.Tensor, alpha: float) -> Tuple[float, int]:
    """(sum over pairs with valid keypoints of their PCK, number of such pairs) for one batch."""
    from semcorr.eval.pck import pck

    v = pck(pred, gt, thresh, alpha)
    ok = ~torch.isnan(v)
    return float(v[ok].sum()), int(ok.sum())


def thresholds(batch: Dict[str, Any], kind: str) -> torch.Tensor:
    """The PCK reference lengths of a collated keypoint batch (``img``, ``bbox`` or ``kpbox``)."""
    t = batch.get("thresh_%s" % kind)
    if t is None:
        raise ValueError("data.pck.thresh: the dataset gives no thresh_%s" % kind)
    t = torch.as_tensor(t, dtype=torch.float64)
    if torch.isnan(t).any():
        raise ValueError("data.pck.thresh=%s: undefined for some pairs (no boxes?); use img" % kind)
    return t

