"""Random geometric warps with exact ground-truth correspondences (affine, thin-plate spline, both).

A warp maps *source* pixel coordinates to *target* pixel coordinates, points as (x, y) in pixels
(pixel centres at integers). Every warp has

* ``inverse(pts)``: target -> source, in closed form. This is what image warping needs (for each target
  pixel, where to read the source), so warped images are exact resamplings of the source.
* ``forward(pts)``: source -> target, in closed form for affine warps and by Newton's method on
  ``inverse`` otherwise (float64, converged to < 1e-6 px, checked): the ground truth for keypoints.

Usage::

    w = random_warp((H, W), seed=3, kind="affine+tps")
    tgt = warp_image(src, w)                 # (H, W, C) -> (H, W, C), zeros where nothing maps
    tgt_pts = w.forward(src_pts)             # (N, 2) source pixels -> target pixels

The random parameters are drawn from ``numpy.random.default_rng(seed)`` so a seed gives the same warp on
every machine. Strengths (moderate, like the synthetic pairs of weakly supervised training): rotation
+-15 deg, isotropic scale 0.85-1.15, shear +-0.1, translation +-10% of the image size, about the image
centre; TPS on a 3x3 grid of control points (at 10%, 50%, 90% of each side) displaced by up to 5% of the
image size.
"""
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

__all__ = ["Warp", "AffineWarp", "TPSWarp", "ComposedWarp", "random_affine", "random_tps", "random_warp",
           "warp_image"]


def _as_points(pts) -> np.ndarray:
    p = np.asarray(pts, dtype=np.float64)
    if p.shape[-1] != 2:
        raise ValueError("points must have a last dimension of size 2 (x, y), got shape %s" % (p.shape,))
    return p


class Warp:
    """A source -> target pixel mapping; subclasses implement ``inverse`` and may override ``forward``."""

    def inverse(self, pts) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, pts, *, tol: float = 1e-6, max_iter: int = 50) -> np.ndarray:
        """Source pixels (..., 2) -> target pixels, solving ``inverse(y) = x`` by Newton's method."""
        x = _as_points(pts)
        shape = x.shape
        x = x.reshape(-1, 2)
        y = x.copy()
        h = 1e-3
        for _ in range(max_iter):
            r = self.inverse(y) - x
            if np.abs(r).max(initial=0.0) < tol:
                return y.reshape(shape)
            # Jacobian of inverse at y by central differences (exact up to O(h^2) for these smooth maps)
            jx = (self.inverse(y + [h, 0]) - self.inverse(y - [h, 0])) / (2 * h)
            jy = (self.inverse(y + [0, h]) - self.inverse(y - [0, h])) / (2 * h)
            J = np.stack([jx, jy], axis=-1)  # (N, 2 outputs, 2 inputs)
            y = y - np.linalg.solve(J, r[..., None])[..., 0]
        r = np.abs(self.inverse(y) - x).max(initial=0.0)
        if r >= tol:
            raise RuntimeError("Warp.forward did not converge (residual %.3g px); the warp is too strong" % r)
        return y.reshape(shape)

    def __call__(self, pts) -> np.ndarray:
        return self.forward(pts)


@dataclass
class AffineWarp(Warp):
    """target = A @ source + t (pixels)."""

    A: np.ndarray  # (2, 2)
    t: np.ndarray  # (2,)

    def forward(self, pts, **_) -> np.ndarray:
        return _as_points(pts) @ np.asarray(self.A).T + self.t

    def inverse(self, pts) -> np.ndarray:
        return (_as_points(pts) - self.t) @ np.linalg.inv(self.A).T

    @property
    def matrix(self) -> np.ndarray:
        """3x3 homogeneous matrix of the forward map."""
        m = np.eye(3)
        m[:2, :2] = self.A
        m[:2, 2] = self.t
        return m


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r2 > 0, r2 * np.log(np.where(r2 > 0, r2, 1.0)), 0.0)


@dataclass
class TPSWarp(Warp):
    """Thin-plate spline defined by its *inverse*: target control points ``tgt_ctrl`` map exactly to source
    control points ``src_ctrl``, smoothly in between (so image warping is closed form)."""

    src_ctrl: np.ndarray  # (K, 2) source pixels
    tgt_ctrl: np.ndarray  # (K, 2) target pixels

    def __post_init__(self):
        # Solve [[U, P], [P^T, 0]] [w; a] = [src; 0] with U_ij = U(|q_i - q_j|), P = [1, q].
        q = np.asarray(self.tgt_ctrl, np.float64)
        k = q.shape[0]
        L = np.zeros((k + 3, k + 3))
        L[:k, :k] = _tps_kernel(((q[:, None] - q[None]) ** 2).sum(-1))
        P = np.concatenate([np.ones((k, 1)), q], 1)
        L[:k, k:] = P
        L[k:, :k] = P.T
        rhs = np.zeros((k + 3, 2))
        rhs[:k] = self.src_ctrl
        self._coef = np.linalg.solve(L, rhs)
        self._q = q

    def inverse(self, pts) -> np.ndarray:
        y = _as_points(pts)
        shape = y.shape
        y = y.reshape(-1, 2)
        k = self._q.shape[0]
        U = _tps_kernel(((y[:, None] - self._q[None]) ** 2).sum(-1))
        out = U @ self._coef[:k] + self._coef[k] + y @ self._coef[k + 1:]
        return out.reshape(shape)


@dataclass
class ComposedWarp(Warp):
    """``second`` after ``first``: forward(x) = second.forward(first.forward(x))."""

    first: Warp
    second: Warp

    def forward(self, pts, **kw) -> np.ndarray:
        return self.second.forward(self.first.forward(pts, **kw), **kw)

    def inverse(self, pts) -> np.ndarray:
        return self.first.inverse(self.second.inverse(pts))


def random_affine(size: Sequence[int], seed: int = 0, *, max_rotation: float = 15.0,
                  scale: Tuple[float, float] = (0.85, 1.15), max_shear: float = 0.1,
                  max_translation: float = 0.1) -> AffineWarp:
    """A random affine warp about the image centre of an image of ``size`` = (H, W)."""
    H, W = size
    rng = np.random.default_rng(seed)
    theta = np.deg2rad(rng.uniform(-max_rotation, max_rotation))
    s = rng.uniform(*scale)
    sh = rng.uniform(-max_shear, max_shear)
    t = rng.uniform(-max_translation, max_translation, size=2) * np.array([W, H])
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    A = s * R @ np.array([[1.0, sh], [0.0, 1.0]])
    c = np.array([(W - 1) / 2.0, (H - 1) / 2.0])
    return AffineWarp(A=A, t=c - A @ c + t)


def random_tps(size: Sequence[int], seed: int = 0, *, jitter: float = 0.05,
               ctrl: Sequence[float] = (0.1, 0.5, 0.9)) -> TPSWarp:
    """A random thin-plate spline: a 3x3 grid of control points (fractions ``ctrl`` of each side), each
    displaced uniformly by up to ``jitter`` of the image size in x and y."""
    H, W = size
    rng = np.random.default_rng(seed)
    fx, fy = np.meshgrid(np.asarray(ctrl), np.asarray(ctrl), indexing="xy")
    src = np.stack([fx.ravel() * (W - 1), fy.ravel() * (H - 1)], 1)
    d = rng.uniform(-jitter, jitter, size=src.shape) * np.array([W, H])
    return TPSWarp(src_ctrl=src, tgt_ctrl=src + d)


def random_warp(size: Sequence[int], seed: int = 0, kind: str = "affine+tps") -> Warp:
    """``kind`` in {"affine", "tps", "affine+tps"} (affine then TPS; the two use independent streams of the
    seed)."""
    if kind == "affine":
        return random_affine(size, seed)
    if kind == "tps":
        return random_tps(size, seed)
    if kind == "affine+tps":
        ss = np.random.SeedSequence(seed).spawn(2)
        return ComposedWarp(random_affine(size, ss[0]), random_tps(size, ss[1]))
    raise ValueError("kind must be 'affine', 'tps' or 'affine+tps', got %r" % (kind,))


def warp_image(image: np.ndarray, warp: Warp, out_size: Sequence[int] = None, *, order: int = 1,
               cval: float = 0.0) -> np.ndarray:
    """Resample ``image`` (H, W) or (H, W, C) into the target frame: out[y, x] = image[warp.inverse((x, y))].

    Bilinear by default (``order``); target pixels whose source falls outside the image get ``cval``.
    The output has the input's size unless ``out_size`` = (H', W') is given, and the input's dtype family
    (uint8 in -> uint8 out, float in -> float64 out).
    """
    from skimage.transform import warp as sk_warp

    img = np.asarray(image)
    out_shape = tuple(out_size) if out_size is not None else img.shape[:2]
    # skimage's inverse_map receives (N, 2) output coordinates as (col, row) = (x, y): our convention.
    out = sk_warp(img, inverse_map=warp.inverse, output_shape=out_shape + img.shape[2:], order=order,
                  mode="constant", cval=cval, preserve_range=True)
    if img.dtype == np.uint8:
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out
