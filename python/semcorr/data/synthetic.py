"""An offline benchmark with exact ground truth: photos that ship inside scikit-image under
random affine and thin-plate-spline warps (:mod:`semcorr.data.warps`), plus the stereo
pair with ground-truth disparity that scikit-image ships (``stereo_motorcycle``).

Every pair is determined by ``(seed, index)``: the same seed gives the same images,
warps and keypoints on every machine. Nothing is downloaded: only images stored inside the
scikit-image package are used (``skimage.data`` functions that fetch through pooch, such as
``eagle``, are avoided).

Pairs: for each image of ``images`` and each warp of ``warps`` (``"affine"``, ``"tps"``,
``"affine+tps"``), ``repeats`` pairs (``strength="strong"`` by default: rotation +-30 deg,
scale 0.7-1.3, shear +-0.15, translation +-12%, TPS control points moved by up to 8%;
``"moderate"`` uses the defaults of :mod:`semcorr.data.warps`); then, when ``stereo`` is on, the motorcycle stereo
pair (left -> right, ``x_right = x_left - disparity``). Categories are the image names;
the warp types are extra reporting groups (``warp/affine``, ``warp/tps``,
``warp/affine+tps``, ``warp/stereo``).

Keypoints: up to ``n_kps`` Harris corners of the source (spread out by a minimum
distance, picked at random among the strongest by the pair's seed) inside a 10% margin
whose targets land inside the target image; for the stereo pair, corners with a known
disparity. The object box (alpha_bbox) of a warped pair is the bounding box of the warped
source frame clipped to the target image; alpha_img uses the target size.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from .datasets.base import CheckReport, PairDataset, RawPair, to_float_rgb

__all__ = ["SyntheticPairs", "OFFLINE_IMAGES", "load_offline_image"]

#: scikit-image sample photos stored in the package (no download)
OFFLINE_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry")
WARP_KINDS = ("affine", "tps", "affine+tps")
#: warp parameters per strength; "moderate" is semcorr.data.warps' default
STRENGTHS = {
    "moderate": dict(affine=dict(), tps=dict()),
    "strong": dict(affine=dict(max_rotation=30.0, scale=(0.7, 1.3), max_shear=0.15, max_translation=0.12),
                   tps=dict(jitter=0.08)),
}


def make_warp(size, seed: int, kind: str, strength: str = "strong"):
    """A random warp of ``kind`` with the parameters of ``strength`` (see STRENGTHS)."""
    from .warps import ComposedWarp, random_affine, random_tps

    p = STRENGTHS[strength]
    if kind == "affine":
        return random_affine(size, seed, **p["affine"])
    if kind == "tps":
        return random_tps(size, seed, **p["tps"])
    if kind == "affine+tps":
        ss = np.random.SeedSequence(seed).spawn(2)
        return ComposedWarp(random_affine(size, ss[0], **p["affine"]), random_tps(size, ss[1], **p["tps"]))
    raise ValueError(f"unknown warp {kind!r}; choose from {WARP_KINDS}")


@functools.lru_cache(maxsize=16)
def _skimage_image(name: str) -> np.ndarray:
    import skimage.data

    if name not in OFFLINE_IMAGES:
        raise ValueError(f"unknown image {name!r}; choose from {', '.join(OFFLINE_IMAGES)}")
    return to_float_rgb(np.asarray(getattr(skimage.data, name)()))


def load_offline_image(name: str, size: int) -> np.ndarray:
    """A bundled photo resized (anti-aliased) to (size, size, 3) float32 in [0, 1]."""
    from skimage.transform import resize

    img = _skimage_image(name)
    return resize(img, (size, size), order=1, anti_aliasing=True).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _stereo() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import skimage.data

    left, right, disp = skimage.data.stereo_motorcycle()
    return to_float_rgb(left), to_float_rgb(right), np.asarray(disp, dtype=np.float64)


def _corners(img: np.ndarray, margin: float, min_distance: int) -> np.ndarray:
    """Harris corners (x, y) of an RGB float image, strongest first, inside the margin."""
    from skimage.color import rgb2gray
    from skimage.feature import corner_harris, corner_peaks

    g = rgb2gray(img)
    h, w = g.shape
    resp = corner_harris(g, sigma=1.5)
    pk = corner_peaks(resp, min_distance=min_distance, threshold_rel=0.001,
                      exclude_border=int(round(margin * min(h, w))))
    pk = pk[np.argsort(-resp[pk[:, 0], pk[:, 1]], kind="stable")]
    return pk[:, ::-1].astype(np.float64)


class SyntheticPairs(PairDataset):
    name = "synthetic"
    default_thresh = "img"
    default_max_kps = 20

    def __init__(self, root=None, split: str = "test", size=240, max_kps=None, *,
                 images: Sequence[str] = OFFLINE_IMAGES, warps: Sequence[str] = WARP_KINDS,
                 repeats: int = 1, stereo: bool = True, seed: int = 0, n_kps: int | None = None,
                 render_size: int | None = None, strength: str = "strong"):
        super().__init__(None, split, size, max_kps)
        self.n_kps = int(n_kps if n_kps is not None else self.max_kps)
        if self.n_kps > self.max_kps:
            self.max_kps = self.n_kps
        for w in warps:
            if w not in WARP_KINDS:
                raise ValueError(f"unknown warp {w!r}; choose from {WARP_KINDS}")
        if strength not in STRENGTHS:
            raise ValueError(f"strength must be one of {tuple(STRENGTHS)}")
        self.strength = strength
        self.images, self.warps = tuple(images), tuple(warps)
        self.repeats, self.stereo, self.seed = int(repeats), bool(stereo), int(seed)
        # square renders at the evaluation size (default 240) keep the warps exact
        self.render_size = int(render_size or (max(self.size) if self.size else 240))
        self.items = [(img, w, r) for img in self.images for w in self.warps for r in range(self.repeats)]
        if self.stereo:
            self.items.append(("motorcycle", "stereo", 0))

    def __len__(self) -> int:
        return len(self.items)

    def pair_id(self, index: int) -> str:
        img, w, r = self.items[index]
        return f"{img}/{w}/{r}"

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, index]))

    def load_raw(self, index: int) -> RawPair:
        img, kind, _ = self.items[index]
        if kind == "stereo":
            return self._stereo_pair(index)
        from .warps import warp_image

        s = self.render_size
        rng = self._rng(index)
        src = load_offline_image(img, s)
        warp = make_warp((s, s), int(rng.integers(2**31)), kind, self.strength)
        tgt = np.clip(warp_image(src, warp), 0, 1).astype(np.float32)
        cand = _corners(src, 0.1, max(3, s // 40))
        tgt_cand = warp.forward(cand) if len(cand) else cand
        inside = ((tgt_cand >= 0) & (tgt_cand <= s - 1)).all(1) if len(cand) else np.zeros(0, bool)
        src_kps, tgt_kps = self._pick(rng, cand[inside], tgt_cand[inside])
        # the warped source frame, clipped: the "object" of a synthetic pair
        border = np.array([[x, y] for x in np.linspace(0, s - 1, 33) for y in (0, s - 1)]
                          + [[x, y] for y in np.linspace(0, s - 1, 33) for x in (0, s - 1)])
        wb = np.clip(warp.forward(border), 0, s - 1)
        tgt_box = np.array([wb[:, 0].min(), wb[:, 1].min(), wb[:, 0].max(), wb[:, 1].max()])
        src_box = np.array([0.0, 0.0, s - 1.0, s - 1.0])
        return RawPair(self.pair_id(index), img, src, tgt, src_kps, tgt_kps, src_box, tgt_box,
                       groups=[f"warp/{kind}"])

    def _pick(self, rng, src_c: np.ndarray, tgt_c: np.ndarray):
        pool = min(len(src_c), 3 * self.n_kps)          # among the strongest corners
        take = np.sort(rng.permutation(pool)[: self.n_kps]) if pool else np.zeros(0, int)
        return src_c[take], tgt_c[take]

    def _stereo_pair(self, index: int) -> RawPair:
        left, right, disp = _stereo()
        rng = self._rng(index)
        h, w = disp.shape
        cand = _corners(left, 0.05, max(3, min(h, w) // 40))
        xi, yi = cand[:, 0].astype(int), cand[:, 1].astype(int)
        d = disp[yi, xi]
        ok = np.isfinite(d) & (cand[:, 0] - d >= 0)
        src_c = cand[ok]
        tgt_c = src_c.copy()
        tgt_c[:, 0] -= d[ok]
        src_kps, tgt_kps = self._pick(rng, src_c, tgt_c)
        return RawPair(self.pair_id(index), "motorcycle", left, right, src_kps, tgt_kps,
                       np.array([0.0, 0.0, w - 1.0, h - 1.0]), np.array([0.0, 0.0, w - 1.0, h - 1.0]),
                       groups=["warp/stereo"])

    @classmethod
    def layout(cls) -> str:
        return "    (none: images ship inside scikit-image; no --root needed)"

    @classmethod
    def check(cls, root=None, split: str = "test") -> CheckReport:
        rep = CheckReport("synthetic", "(scikit-image package data)", split)
        try:
            for name in OFFLINE_IMAGES:
                _skimage_image(name)
            _stereo()
        except Exception as e:  # noqa: BLE001 - report whatever is broken
            rep.missing.append(f"scikit-image sample data: {e}")
            return rep
        rep.n_pairs = len(cls())
        return rep
