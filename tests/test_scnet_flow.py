"""SCNet's dense flow formation (eva_PCK_SCNet_*.m): painting by region matches, one-to-one filtering, SD filter
against a dense transcription of sdfilter.m / lattice.m / makeweights.m."""
import numpy as np
import pytest

from semcorr.models.scnet import dense_flow as df


def test_paint_box_to_box_map_and_order():
    # two source boxes; box 1 has the higher score, so it paints first and box 0 only fills what is left
    src = np.array([[0.0, 0.0, 9.0, 9.0], [5.0, 5.0, 14.0, 14.0]])
    tgt = np.array([[10.0, 20.0, 28.0, 38.0], [0.0, 0.0, 9.0, 9.0]])
    scores = np.array([[0.9, 0.1], [0.2, 0.95]])  # src 0 -> tgt 0 (0.9), src 1 -> tgt 1 (0.95)
    X, Y, C = df.paint_region_flow(scores, src, tgt, (20, 20))
    # box 1 (1-based 6..15) -> target 1-based 1..10, identity scale: pixel (r, c) 0-based -> c - 5 + 1
    assert X[7, 12] == 12 - 5 + 1 and Y[7, 12] == 7 - 5 + 1 and C[7, 12] == 0.95
    # box 0 (1-based 1..10) -> target 1-based (11, 21)..(29, 39): 10 px onto 19 px, x = 11 + c * 2
    assert X[2, 3] == 11 + 3 * 2 and Y[2, 3] == 21 + 2 * 2 and C[2, 3] == 0.9
    assert X[7, 7] == 3.0  # inside both: box 1 painted first
    assert np.isnan(X[18, 18]) and C[18, 18] == 0  # no box


def test_one_to_one_keeps_the_most_confident():
    X = np.array([[3.0, 3.0, 1.0], [3.0, np.nan, 2.0]])
    Y = np.array([[1.0, 1.0, 1.0], [1.0, np.nan, 2.0]])
    C = np.array([[0.5, 0.7, 0.2], [0.7, 0.0, 0.3]])
    Xr, Yr, keep = df.one_to_one(X, Y, C, (2, 3))
    # (0,0), (0,1), (1,0) all land on target (x 3, y 1): the first of the two 0.7 wins
    assert keep.tolist() == [[False, True, True], [False, True, True]]
    # the unpainted pixel goes to the bottom-right target pixel (MATLAB min/max ignore NaN), alone there
    assert (Xr[1, 1], Yr[1, 1]) == (3.0, 2.0)


def ref_sdfilter(g, f, mask, lam, sigma_g, sigma_u, itr):
    """sdfilter.m with lattice(X, Y, 0), makeweights, normalize; MATLAB column-major indices; dense solve."""
    X, Y = f.shape
    N = X * Y
    e1 = list(range(1, N + 1)) + list(range(1, N + 1))
    e2 = list(range(2, N + 2)) + [i + X for i in range(1, N + 1)]
    edges = [(a, b) for a, b in zip(e1, e2)]
    excluded = {k for k, (a, b) in enumerate(edges) if a > N or b > N or a < 1 or b < 1}
    excluded |= {k - 1 for k in range(X, (Y - 1) * X + 1, X)}  # rows X:X:(Y-1)X (1-based)
    edges = np.array([e for k, e in enumerate(edges) if k not in excluded]) - 1

    def col(a):  # reshape(a, N, Z), column-major
        return a.reshape(N, -1, order="F") if a.ndim == 3 else a.reshape(N, 1, order="F")

    def weights(vals, scale):
        d = np.sqrt(((vals[edges[:, 0]] - vals[edges[:, 1]]) ** 2).sum(1))
        lo, hi = d.min(), d.max()
        d = d if lo == hi else (d - lo) / (hi - lo)
        return np.exp(-scale * d) + 1e-5

    def adjacency(w):
        A = np.zeros((N, N))
        A[edges[:, 0], edges[:, 1]] += w
        A[edges[:, 1], edges[:, 0]] += w
        return A

    gW = adjacency(weights(col(df.rgb_to_lab_colorspace(g)), sigma_g))
    C = np.diag(mask.reshape(N, order="F").astype(float))
    F = C @ np.nan_to_num(col(f))
    u0 = np.ones((X, Y))
    for _ in range(itr):
        Wm = gW * adjacency(weights(col(u0), sigma_u))
        L = np.diag(Wm.sum(0)) - Wm
        u0 = np.linalg.solve(C + lam * L, F).reshape(X, Y, order="F")
    return u0


def test_sd_filter_matches_dense_transcription():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((7, 6, 3))  # the released guide is the normalised image (negative values too)
    f = rng.standard_normal((7, 6)) * 5
    mask = rng.random((7, 6)) < 0.4
    f[~mask] = np.nan
    ours = df.sd_filter(g, f, mask)
    np.testing.assert_allclose(ours, ref_sdfilter(g, f, mask, 20.0, 30.0, 15.0, 2), rtol=1e-8, atol=1e-8)
    # a constant field is kept everywhere, holes included
    np.testing.assert_allclose(df.sd_filter(g, np.where(mask, 4.0, np.nan), mask), 4.0)
    with pytest.raises(ValueError, match="no pixel"):
        df.sd_filter(g, f, np.zeros_like(mask))


def test_colorspace_lab_known_colours():
    lab = df.rgb_to_lab_colorspace(np.array([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]))
    np.testing.assert_allclose(lab[0, 0], [100.0, 0.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(lab[0, 1], [0.0, 0.0, 0.0], atol=1e-9)
    assert lab[0, 2, 1] > 50 and lab[0, 2, 2] > 30  # red: large a*, b*


def test_dense_flow_translation_is_recovered():
    # a target that is the source moved by (+3, +2): identity-sized box matches with exact offsets
    H, W = 16, 18
    src = np.array([[0.0, 0.0, 8.0, 8.0], [6.0, 4.0, 14.0, 12.0], [2.0, 6.0, 10.0, 13.0]])
    tgt = src + np.array([3.0, 2.0, 3.0, 2.0])
    scores = np.eye(3) * 0.5 + 0.1
    guide = np.random.default_rng(1).standard_normal((H, W, 3))
    flow, conf = df.flow_from_region_matches(scores, src, tgt, guide, (H + 4, W + 5))
    assert flow.shape == (H, W, 2) and conf.shape == (H, W)
    painted = np.zeros((H, W), bool)
    for b in src.astype(int):
        painted[b[1]:b[3] + 1, b[0]:b[2] + 1] = True
    ys, xs = np.nonzero(painted)
    np.testing.assert_array_equal(flow[ys, xs, 0], xs + 3)
    np.testing.assert_array_equal(flow[ys, xs, 1], ys + 2)
    assert (conf[painted] == 0.6).all()
