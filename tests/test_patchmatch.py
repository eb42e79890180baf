"""patchmatch_propagate and patchmatch_select's own cases: values by hand, the hash, the published
propagation, the routing of the selected scores' gradient, fuzzing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_patchmatch
from semcorr_ext import ops, reference
from semcorr_ext.ops.patchmatch import PMNC_OFFSETS, pmnc_offsets
from semcorr_ext.reference.patchmatch import pm_hash
from op_contract import grid_pairs as rand_matches
from op_rows_patchmatch import select_inputs


# ---------------------------------------------------------------- patchmatch_propagate


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
    plain = baselines_patchmatch.pmnc_candidates_plain(m[..., 0, :], PMNC_OFFSETS, (9, 6))  # (B, Hs, Ws, M, 2), -1 = none
    for b in range(2):
        for i in range(7):
            for j in range(8):
                ours = {tuple(x) for x in c[b, i, j][v[b, i, j]].tolist()}
                theirs = {tuple(x) for x in plain[b, i, j].tolist() if x[0] >= 0}
                assert ours == theirs


def test_propagate_non_contiguous():
    m = rand_matches(2, 5, 4, 2, 6, 6).transpose(1, 2)
    off = pmnc_offsets().flip(0).t().contiguous().t()
    assert not m.is_contiguous() and not off.is_contiguous()
    c, v = ops.patchmatch_propagate(m, off, target_size=(6, 6), random_samples=1, radius=1)
    rc, rv = reference.patchmatch_propagate(m, off, target_size=(6, 6), random_samples=1, radius=1)
    assert torch.equal(c, rc) and torch.equal(v, rv)


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
    _, s, i = ops.patchmatch_select(cand, scores, valid, 3, return_indices=True)
    w = torch.randn_like(s)
    (g,) = torch.autograd.grad((torch.where(i >= 0, s, 0) * w).sum(), scores)
    exp = torch.zeros_like(scores)
    for idx in torch.nonzero(i >= 0).tolist():
        exp[idx[0], idx[1], idx[2], i[tuple(idx)]] = w[tuple(idx)]
    assert torch.equal(g, exp)


def test_select_non_contiguous():
    cand, scores, valid = select_inputs(B=1, Hs=4, Ws=4)
    c2, s2, v2 = cand.transpose(1, 2), scores.transpose(1, 2), valid.transpose(1, 2)
    got = ops.patchmatch_select(c2, s2, v2, 4, return_indices=True)
    exp = reference.patchmatch_select(c2.contiguous(), s2.contiguous(), v2.contiguous(), 4, return_indices=True)
    for a, b in zip(got, exp):
        assert torch.equal(a, b)


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), hs=st.integers(1, 3), ws=st.integers(1, 3), N=st.integers(0, 12), k=st.integers(0, 5),
       ties=st.booleans(), seed=st.integers(0, 1000))
def test_select_fuzz(B, hs, ws, N, k, ties, seed):
    cand, scores, valid = select_inputs(B, hs, ws, N, seed=seed, ties=ties)
    got = ops.patchmatch_select(cand, scores, valid, k, return_indices=True)
    exp = reference.patchmatch_select(cand, scores, valid, k, return_indices=True)
    for a, b in zip(got, exp):
        assert torch.equal(a, b)
