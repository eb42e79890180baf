"""PASCAL VOC segmentation images with their foreground masks (SFNet's training images).

Layout (the ``VOC2012`` folder of ``VOCtrainval_11-May-2012.tar``, or any folder shaped like it)::

    ROOT/JPEGImages/<id>.jpg
    ROOT/SegmentationObject/<id>.png     instance labels (palette PNG: 0 background, 1..N objects, 255 void)
    ROOT/SegmentationClass/<id>.png      class labels   (palette PNG: 0 background, 1..20 classes, 255 void)
    ROOT/ImageSets/Segmentation/<split>.txt   one id per line (train, val, trainval)

The foreground mask of an image is every pixel whose label is not 0 (background): objects of any class, and the
void band (255) VOC draws along object outlines, so that the mask is the filled silhouette (ours: the released
SFNet ships its masks pre-computed, ``VOC2012_seg_msk.npy``, without the code that made them). SFNet trains on
the VOC 2012 segmentation images "excluding images that overlap with the test split of PF-PASCAL" (its README):
pass those ids in ``exclude`` (a list or a file with one id per line).
"""
import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

import numpy as np
from torch.utils.data import Dataset

__all__ = ["VOCMasks", "foreground_mask", "MASK_FOLDERS"]

#: label folders, in the order ``masks="auto"`` tries them
MASK_FOLDERS = {"object": "SegmentationObject", "class": "SegmentationClass"}


def foreground_mask(labels: np.ndarray) -> np.ndarray:
    """(H, W) VOC label image (palette indices) -> (H, W) uint8 mask, 1 where the label is not background (0)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError("VOC label image: expected a palette (H, W) PNG, got shape %s" % (labels.shape,))
    return (labels != 0).astype(np.uint8)


def _read_ids(path: Path) -> List[str]:
    return [ln.split()[0] for ln in path.read_text().splitlines() if ln.strip()]


class VOCMasks(Dataset):
    """Images and foreground masks of a VOC-layout folder.

    Args:
        root: the folder holding ``JPEGImages/`` and ``SegmentationObject/`` or ``SegmentationClass/``.
        split: ``ImageSets/Segmentation/<split>.txt`` (``train``, ``val``, ``trainval``), or ``None``: every image
            that has a label PNG.
        masks: ``"object"``, ``"class"`` or ``"auto"`` (``SegmentationObject`` when present, else
            ``SegmentationClass``); both give the same foreground.
        exclude: ids to leave out (a list, or the path of a file with one id per line).

    Items: ``{"image": (H, W, 3) uint8, "mask": (H, W) uint8 in {0, 1}, "id": str}``.
    """

    def __init__(self, root, split: Optional[str] = "train", masks: str = "auto",
                 exclude: Union[None, str, os.PathLike, Iterable[str]] = None):
        self.root = Path(root)
        if not (self.root / "JPEGImages").is_dir():
            raise FileNotFoundError("VOC root %s: no JPEGImages/ folder (expected the VOC2012 folder of the "
                                    "VOCtrainval tar, see semcorr.data.datasets.voc)" % self.root)
        if masks == "auto":
            found = [k for k, d in MASK_FOLDERS.items() if (self.root / d).is_dir()]
            if not found:
                raise FileNotFoundError("VOC root %s: neither SegmentationObject/ nor SegmentationClass/" % self.root)
            masks = found[0]
        if masks not in MASK_FOLDERS:
            raise ValueError("VOC masks must be 'object', 'class' or 'auto', got %r" % (masks,))
        self.mask_dir = self.root / MASK_FOLDERS[masks]
        if not self.mask_dir.is_dir():
            raise FileNotFoundError("VOC root %s: no %s/ folder (masks=%r)" % (self.root, self.mask_dir.name, masks))
        if split is None:
            ids = sorted(p.stem for p in self.mask_dir.glob("*.png"))
        else:
            lst = self.root / "ImageSets" / "Segmentation" / ("%s.txt" % split)
            if not lst.is_file():
                raise FileNotFoundError("VOC split %r: %s not found (or pass split=None for every labelled image)"
                                        % (split, lst))
            ids = _read_ids(lst)
        if exclude is not None:
            drop = set(_read_ids(Path(exclude)) if isinstance(exclude, (str, os.PathLike)) else exclude)
            ids = [i for i in ids if i not in drop]
        missing = [i for i in ids if not (self.mask_dir / ("%s.png" % i)).is_file()]
        if missing:
            raise FileNotFoundError("VOC: %d ids of split %r have no %s/<id>.png, e.g. %s"
                                    % (len(missing), split, self.mask_dir.name, missing[0]))
        if not ids:
            raise ValueError("VOC root %s, split %r: no images" % (self.root, split))
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Dict[str, object]:
        from PIL import Image

        key = self.ids[i]
        with Image.open(self.root / "JPEGImages" / ("%s.jpg" % key)) as im:
            image = np.asarray(im.convert("RGB"))
        with Image.open(self.mask_dir / ("%s.png" % key)) as im:
            if im.mode not in ("P", "L"):
                raise ValueError("VOC label %s: expected a palette (P) or grey (L) PNG, got mode %s"
                                 % (self.mask_dir / ("%s.png" % key), im.mode))
            mask = foreground_mask(np.asarray(im))
        if mask.shape != image.shape[:2]:
            raise ValueError("VOC %s: image %s and label %s differ in size" % (key, image.shape[:2], mask.shape))
        return {"image": image, "mask": mask, "id": key}
