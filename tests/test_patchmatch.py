"""patchmatch_propagate and patchmatch_select: CPU ops vs the reference, values by hand, the hash, autograd of the
selected scores, opcheck, torch.compile, bad input, fuzzing."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_pmnc
from semcorr_ext import ops, reference
from semcorr_ext.ops.patchmatch import PMNC_OFFSETS, num_candidates, pmnc_offsets
from semcorr_ext.reference.patchmatch import pm_hash


def rand_matches(B, Hs, Ws, K, Ht, Wt, seed=0, spill=0):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(-spill, Ht + spill, (B, Hs, Ws, K, 1), generator=g)
    c = torch.randint(-spill, Wt + spill, (B, Hs, Ws, K, 1), generator=g)
    return torch.cat([r, c], -1)


# ---------------------------------------------------------------- patchmatch_propagate


@pytest.mark.parametrize("B,Hs,Ws,K,Ht,Wt", [(2, 4, 5, 1, 6, 7), (1, 3, 3, 2, 4, 4), (1, 1, 1, 1, 1, 1),
                                             (2, 6, 2, 3, 2, 9)])
@pytest.mark.parametrize("R,radius", [(0, 0), (3, 2), (2, 0)])
def test_propagate_matches_reference(B, Hs, Ws, K, Ht, Wt, R, radius):
    m = rand_matches(B, Hs, Ws, K, Ht, Wt, spill=2)
    off = pmnc_offsets()
    kw = dict(target_size=(Ht, Wt), random_samples=R, radius=radius, seed=7, iteration=3)
    c, v = ops.patchmatch_propagate(m, off, **kw)
    rc, rv = reference.patchmatch_propagate(m, off, **kw)
    assert c.shape == (B, Hs, Ws, num_candidates(K, 21, R), 2)
    assert torch.equal(c, rc)
    assert torch.equal(v, rv)


def test_propagate_by_hand():
    # 1x2 source grid, K = 1, target 3x3; offsets (0, 1) and (1, 0)
    m = torch.tensor([[[[[0, 0]], [[2, 1]]]]])  # (1, 1, 2, 1, 2)
    off = torch.tensor([[0, 1], [1, 0]])
    c, v = ops.patchmatch_propagate(m, off, target_size=(3, 3))
    assert c.shape == (1, 1, 2, 11, 2)
    # pixel (0, 0): own (0,0); (0,1) -> match of pixel (0,1) = (2,1); (1,0) outside -> own copy, invalid;
    # 8 neighbours of (0,0) clamped: (0,0),(0,0),(0,1),(0,0),(0,1),(1,0),(1,0),(1,1)
    assert c[0, 0, 0].tolist() == [[0, 0], [2, 1], [0, 0], [0, 0], [0, 0], [0, 1], [0, 0], [0, 1], [1, 0], [1, 0],
                                   [1, 1]]
    assert v[0, 0, 0].tolist() == [True, True, False, False, False, True, False, False, True, False, True]
    # pixel (0, 1): (0,2) outside -> own copy (invalid), (1,1) outside -> invalid; neighbours of (2,1)
    assert c[0, 0, 1].tolist() == [[2, 1], [2, 1], [2, 1], [1, 0], [1, 1], [1, 2], [2, 0], [2, 2], [2, 0], [2, 1],
                                   [2, 2]]
    assert v[0, 0, 1].tolist() == [True, False, False, True, True, True, True, True, False, False, False]


def test_propagate_valid_marks_each_distinct_candidate_once():
    m = rand_matches(2, 6, 7, 2, 5, 5, seed=3)
    c, v = ops.patchmatch_propagate(m, pmnc_offsets(), target_size=(5, 5), random_samples=4, radius=3, seed=1)
    flat_c, flat_v = c.reshape(-1, c.shape[3], 2), v.reshape(-1, v.shape[3])
    for cc, vv in zip(flat_c, flat_v):
        distinct = {tuple(x) for x in cc.tolist()}
        chosen = [tuple(x) for x in cc[vv].tolist()]
        assert len(chosen) == len(set(chosen))  # never twice
        assert vv[0]  # the first own match is always valid
        assert set(chosen) <= distinct
    assert (c >= 0).all() and (c[..., 0] < 5).all() and (c[..., 1] < 5).all()


def test_propagate_random_samples_hash_and_range():
    m = torch.full((1, 3, 3, 1, 2), 10, dtype=torch.int64)
    off = torch.zeros(0, 2, dtype=torch.int64)
    c, _ = ops.patchmatch_propagate(m, off, target_size=(40, 40), random_samples=50, radius=4, seed=11, iteration=2)
    rnd = c[..., 9:, :] - 10
    assert rnd.abs().max() == 4 and rnd.min() == -4  # uniform over [-4, 4]^2: the extremes occur in 450 draws
    # sample r of pixel (1, 2) from the documented hash
    h = pm_hash(11, 2, 0, 1, 2, 5)
    assert c[0, 1, 2, 9 + 5].tolist() == [10 + ((h & 0xFFFFFFFF) * 9 >> 32) - 4, 10 + ((h >> 32) * 9 >> 32) - 4]
    # same key -> same draw; another iteration or seed -> different draws
    c2, _ = ops.patchmatch_propagate(m, off, target_size=(40, 40), random_samples=50, radius=4, seed=11, iteration=2)
    c3, _ = ops.patchmatch_propagate(m, off, target_size=(40, 40), random_samples=50, radius=4, seed=11, iteration=3)
    c4, _ = ops.patchmatch_propagate(m, off, target_size=(40, 40), random_samples=50, radius=4, seed=12, iteration=2)
    assert torch.equal(c, c2) and not torch.equal(c, c3) and not torch.equal(c, c4)


def test_propagate_agrees_with_plain_shift_propagation():
    # the published PMNC propagation (shift the match field by each offset) gives the same valid candidate sets
    m = rand_matches(2, 7, 8, 1, 9, 6, seed=5)
    c, v = ops.patchmatch_propagate(m, pmnc_offsets(), target_size=(9, 6))
    plain = baselines_pmnc.pmnc_candidates_plain(m[..., 0, :], PMNC_OFFSETS, (9, 6))  # (B, Hs, Ws, M, 2), -1 = none
    for b in range(2):
        for i in range(7):
            for j in range(8):
                ours = {tuple(x) for x in c[b, i, j][v[b, i, j]].tolist()}
                theirs = {tuple(x) for x in plain[b, i, j].tolist() if x[0] >= 0}
                assert ours == theirs


@pytest.mark.parametrize("shape", [(0, 3, 3, 1), (2, 0, 3, 1), (2, 3, 3, 0)])
def test_propagate_empty(shape):
    m = torch.zeros(*shape, 2, dtype=torch.int64)
    c, v = ops.patchmatch_propagate(m, pmnc_offsets(), target_size=(4, 4), random_samples=1, radius=1)
    assert c.shape == (*shape[:3], num_candidates(shape[3], 21, 1), 2) and v.shape == c.shape[:4]


def test_propagate_non_contiguous():
    m = rand_matches(2, 5, 4, 2, 6, 6).transpose(1, 2)
    off = pmnc_offsets().flip(0).t().contiguous().t()
    assert not m.is_contiguous() and not off.is_contiguous()
    c, v = ops.patchmatch_propagate(m, off, target_size=(6, 6), random_samples=1, radius=1)
    rc, rv = reference.patchmatch_propagate(m, off, target_size=(6, 6), random_samples=1, radius=1)
    assert torch.equal(c, rc) and torch.equal(v, rv)


def test_propagate_opcheck_and_compile():
    m = rand_matches(1, 3, 4, 1, 5, 5)
    off = pmnc_offsets()
    torch.library.opcheck(torch.ops.semcorr.patchmatch_propagate.default, (m, off, [5, 5], 2, 1, 3, 0))

    def f(x):
        c, v = ops.patchmatch_propagate(x, off, target_size=(5, 5), random_samples=2, radius=1, seed=3)
        return c * v.unsqueeze(-1)

    assert torch.equal(torch.compile(f, fullgraph=True, backend="aot_eager")(m), f(m))


@pytest.mark.parametrize("kwargs,match", [
    (dict(m=torch.zeros(1, 2, 2, 2, dtype=torch.int64)), r"`matches` must be a 5-D tensor \(B, Hs, Ws, K, 2\)"),
    (dict(m=torch.zeros(1, 2, 2, 1, 2)), r"`matches` must be int64, got Float"),
    (dict(off=torch.zeros(3, 3, dtype=torch.int64)), r"`offsets` must be a 2-D tensor \(P, 2\), got shape \[3, 3\]"),
    (dict(off=torch.zeros(3, 2, dtype=torch.int32)), r"`offsets` must be int64"),
    (dict(size=(0, 4)), r"`target_size` must be \[Ht, Wt\] with both > 0"),
    (dict(R=-1), r"`random_samples` must be >= 0, got -1"),
    (dict(radius=-2), r"`radius` must be in \[0, 2\^30\), got -2"),
])
def test_propagate_bad_input(kwargs, match):
    m = kwargs.get("m", torch.zeros(1, 2, 2, 1, 2, dtype=torch.int64))
    off = kwargs.get("off", pmnc_offsets())
    with pytest.raises(RuntimeError, match=match):
        ops.patchmatch_propagate(m, off, target_size=kwargs.get("size", (4, 4)), random_samples=kwargs.get("R", 1),
                                 radius=kwargs.get("radius", 1))


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 2), hs=st.integers(1, 5), ws=st.integers(1, 5), K=st.integers(1, 3), ht=st.integers(1, 6),
       wt=st.integers(1, 6), R=st.integers(0, 3), radius=st.integers(0, 3), P=st.integers(0, 21),
       seed=st.integers(-2**40, 2**40), it=st.integers(0, 9), tr=st.booleans())
def test_propagate_fuzz(B, hs, ws, K, ht, wt, R, radius, P, seed, it, tr):
    m = rand_matches(B, hs, ws, K, ht, wt, seed=abs(seed) % 1000, spill=1)
    if tr:
        m = m.transpose(1, 2)
    off = pmnc_offsets()[:P]
    kw = dict(target_size=(ht, wt), random_samples=R, radius=radius, seed=seed, iteration=it)
    c, v = ops.patchmatch_propagate(m, off, **kw)
    rc, rv = reference.patchmatch_propagate(m, off, **kw)
    assert torch.equal(c, rc) and torch.equal(v, rv)


# ---------------------------------------------------------------- patchmatch_select


def select_inputs(B=2, Hs=3, Ws=4, N=9, seed=0, dtype=torch.float32, ties=False):
    g = torch.Generator().manual_seed(seed)
    cand = torch.randint(0, 20, (B, Hs, Ws, N, 2), generator=g)
    scores = (torch.randint(0, 3, (B, Hs, Ws, N), generator=g).to(dtype) if ties
              else torch.randn(B, Hs, Ws, N, generator=g, dtype=dtype))
    valid = torch.rand(B, Hs, Ws, N, generator=g) < 0.7
    return cand, scores, valid


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 3, 9, 12])
@pytest.mark.parametrize("ties", [False, True])
def test_select_matches_reference(dtype, k, ties):
    cand, scores, valid = select_inputs(dtype=dtype, ties=ties)
    got = ops.patchmatch_select(cand, scores, valid, k, return_indices=True)
    exp = reference.patchmatch_select(cand, scores, valid, k, return_indices=True)
    for a, b in zip(got, exp):
        assert torch.equal(a, b)


def test_select_by_hand():
    cand = torch.tensor([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]).view(1, 1, 1, 6, 2)
    scores = torch.tensor([0.5, 2.0, float("nan"), 2.0, 9.0, 1.0]).view(1, 1, 1, 6)
    valid = torch.tensor([True, True, True, True, False, True]).view(1, 1, 1, 6)
    m, s, i = ops.patchmatch_select(cand, scores, valid, 7, return_indices=True)
    # 9.0 is invalid; tie 2.0 -> lower index 1 first; NaN last; then the empty slot
    assert i.flatten().tolist() == [1, 3, 5, 0, 2, -1, -1]
    assert m[0, 0, 0, :2].tolist() == [[1, 1], [3, 3]] and m[0, 0, 0, 5].tolist() == [-1, -1]
    assert s.flatten()[:4].tolist() == [2.0, 2.0, 1.0, 0.5]
    assert torch.isnan(s.flatten()[4]) and s.flatten()[5] == float("-inf")


def test_select_gradient():
    cand, scores, valid = select_inputs(dtype=torch.float64)
    scores.requires_grad_()
    assert torch.autograd.gradcheck(lambda x: ops.patchmatch_select(cand, x, valid, 3)[1].clamp(-1e3, 1e3),
                                    (scores,))
    _, s, i = ops.patchmatch_select(cand, scores, valid, 3, return_indices=True)
    w = torch.randn_like(s)
    (g,) = torch.autograd.grad((torch.where(i >= 0, s, 0) * w).sum(), scores)
    exp = torch.zeros_like(scores)
    for idx in torch.nonzero(i >= 0).tolist():
        exp[idx[0], idx[1], idx[2], i[tuple(idx)]] = w[tuple(idx)]
    assert torch.equal(g, exp)


def test_select_opcheck_and_compile():
    cand, scores, valid = select_inputs()
    scores.requires_grad_()
    # test_aot_dispatch_dynamic is left out: its harness sums all outputs into one accumulator starting with the
    # first (int64) output and then fails to add the float scores; the compiled backward below covers AOT autograd.
    torch.library.opcheck(torch.ops.semcorr.patchmatch_select.default, (cand, scores, valid, 2),
                          test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))

    def f(x):
        return ops.patchmatch_select(cand, x, valid, 2)[1].exp().sum()

    out = torch.compile(f, fullgraph=True, backend="aot_eager")(scores)
    (g,) = torch.autograd.grad(out, scores)
    (g_eager,) = torch.autograd.grad(f(scores), scores)
    torch.testing.assert_close(out, f(scores))
    torch.testing.assert_close(g, g_eager)


@pytest.mark.parametrize("shape,k", [((0, 2, 2, 3), 2), ((1, 2, 2, 0), 2), ((1, 2, 2, 3), 0)])
def test_select_empty(shape, k):
    cand = torch.zeros(*shape, 2, dtype=torch.int64)
    scores = torch.zeros(shape)
    m, s, i = ops.patchmatch_select(cand, scores, torch.ones(shape, dtype=torch.bool), k, return_indices=True)
    assert m.shape == (*shape[:3], k, 2) and s.shape == i.shape == (*shape[:3], k)
    if shape[3] == 0 and k:
        assert (i == -1).all() and (s == float("-inf")).all()


def test_select_non_contiguous():
    cand, scores, valid = select_inputs(B=1, Hs=4, Ws=4)
    c2, s2, v2 = cand.transpose(1, 2), scores.transpose(1, 2), valid.transpose(1, 2)
    got = ops.patchmatch_select(c2, s2, v2, 4, return_indices=True)
    exp = reference.patchmatch_select(c2.contiguous(), s2.contiguous(), v2.contiguous(), 4, return_indices=True)
    for a, b in zip(got, exp):
        assert torch.equal(a, b)


@pytest.mark.parametrize("args,match", [
    (lambda c, s, v: (c[..., 0], s, v, 1), r"`candidates` must be a 5-D tensor \(B, Hs, Ws, N, 2\)"),
    (lambda c, s, v: (c.float(), s, v, 1), r"`candidates` must be int64"),
    (lambda c, s, v: (c, s[..., :2], v, 1), r"`scores` must have shape \[2, 3, 4, 9\] \(B, Hs, Ws, N\)"),
    (lambda c, s, v: (c, s.long(), v, 1), r"`scores` must be a floating tensor"),
    (lambda c, s, v: (c, s, v.int(), 1), r"`valid` must be a bool tensor, got Int"),
    (lambda c, s, v: (c, s, v, -1), r"`k` must be >= 0, got -1"),
])
def test_select_bad_input(args, match):
    with pytest.raises(RuntimeError, match=match):
        ops.patchmatch_select(*args(*select_inputs()))


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), hs=st.integers(1, 3), ws=st.integers(1, 3), N=st.integers(0, 12), k=st.integers(0, 5),
       ties=st.booleans(), seed=st.integers(0, 1000))
def test_select_fuzz(B, hs, ws, N, k, ties, seed):
    cand, scores, valid = select_inputs(B, hs, ws, N, seed=seed, ties=ties)
    got = ops.patchmatch_select(cand, scores, valid, k, return_indices=True)
    exp = reference.patchmatch_select(cand, scores, valid, k, return_indices=True)
    for a, b in zip(got, exp):
        assert torch.equal(a, b)
