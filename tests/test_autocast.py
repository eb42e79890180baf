"""The autocast kernels of the ops (semcorr_ext/_registrations/autocast.py, docs/OPS.md#precision): under
torch.autocast the GEMM-shaped ops run in the autocast dtype, the reductions in float32, the copies and
comparisons in their input dtype where the kernel takes it; float64 is left alone; gradients flow back to the
float32 leaves; the result is the op on explicitly cast inputs, bit for bit."""
import pytest
import torch

from semcorr_ext import nn as snn
from semcorr_ext import ops
from semcorr_ext._registrations import autocast as ac

BF16 = torch.bfloat16


def rand(*shape, seed=0, dtype=torch.float32):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _kmap_inputs():
    coords = torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 1, 0, 0, 0], [0, 1, 1, 1, 1], [0, 2, 2, 2, 2]])
    return coords, ops.kernel_map4d(coords, 3)


# op -> (call on floating inputs, floating inputs); corr4d's and conv4d's calls pass out_dtype on
GEMM_CALLS = {
    "corr4d": (lambda s, t, **kw: ops.corr4d(s, t, relu=True, power=3.0, **kw),
               [rand(1, 8, 4, 4), rand(1, 8, 3, 5, seed=1)]),
    "corr4d_topk": (lambda s, t: ops.corr4d_topk(s, t, 3)[0], [rand(1, 8, 4, 4), rand(1, 8, 3, 5, seed=1)]),
    "conv4d": (lambda x, w, b, **kw: ops.conv4d(x, w, b, **kw),  # one output channel: a score volume
               [rand(1, 2, 4, 4, 4, 4), rand(1, 2, 3, 3, 3, 3, seed=1) - 0.5, rand(1, seed=2)]),
    "sparse_conv4d": (lambda f, w, b: ops.sparse_conv4d(f, _kmap_inputs()[0], w, b),
                      [rand(5, 4), rand(2, 4, 3, 3, 3, 3, seed=1) - 0.5, rand(2, seed=2)]),
    "gather_windows4d_linear": (lambda c, w, b: ops.gather_windows4d_linear(c, torch.tensor([[0, 1, 1, 2, 2],
                                                                                          [0, 0, 3, 1, 0]]), w, b),
                                [rand(1, 4, 4, 4, 4), rand(3, 3, 3, 3, 3, seed=1), rand(3, seed=2)]),
}


@pytest.mark.parametrize("name", list(GEMM_CALLS))
def test_gemm_ops_run_in_the_autocast_dtype_with_gradients(name):
    call, inputs = GEMM_CALLS[name]
    leaves = [t.clone().requires_grad_() for t in inputs]
    with torch.autocast("cpu", dtype=BF16):
        out = call(*leaves)
    # corr4d and a one-channel conv4d: bfloat16 products, float32 volume (an argmax over a bfloat16 volume ties)
    kw = {"out_dtype": torch.float32} if name in ac.FLOAT32_OUT else {}
    assert out.dtype == kw.get("out_dtype", BF16)
    # the same numbers as the op on inputs cast by hand, outside autocast
    assert torch.equal(out, call(*[t.to(BF16) for t in inputs], **kw))
    out.float().square().sum().backward()
    for leaf in leaves:
        assert leaf.grad is not None and leaf.grad.dtype == torch.float32 and torch.isfinite(leaf.grad).all()
        assert leaf.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(GEMM_CALLS))
def test_float64_is_never_cast(name):
    call, inputs = GEMM_CALLS[name]
    with torch.autocast("cpu", dtype=BF16):
        out = call(*[t.double() for t in inputs])
    assert out.dtype == torch.float64


@pytest.mark.parametrize("name", list(GEMM_CALLS))
def test_cpu_float16_autocast_runs_the_gemm_ops_in_float32(name):
    # the CPU kernels have no float16 path: float32 rather than a refusal
    call, inputs = GEMM_CALLS[name]
    with torch.autocast("cpu", dtype=torch.float16):
        out = call(*inputs)
    assert out.dtype == torch.float32
    assert torch.equal(out, call(*inputs))


def _reduction_calls():
    corr = rand(1, 3, 3, 4, 4)
    app = rand(1, 4, 5)
    bins = torch.randint(-1, 4, (1, 4, 5), generator=torch.Generator().manual_seed(0))
    return {
        "mutual_matching": lambda c: ops.mutual_matching(c),
        "kernel_soft_argmax": lambda c: ops.kernel_soft_argmax(c),
        "hough_match": lambda c: ops.hough_match(c.reshape(1, 9, 16)[:, :4, :5], rand(1, 4, 2) * 10,
                                                 rand(1, 5, 2, seed=1) * 10, (10, 10), (12, 9)),
        "hough_vote": lambda c: ops.hough_vote(c.reshape(1, 9, 16)[:, :4, :5], bins, 4),
    }, corr, app


@pytest.mark.parametrize("name", ["mutual_matching", "kernel_soft_argmax", "hough_match", "hough_vote"])
def test_reductions_run_in_float32_on_bf16_inputs(name):
    calls, corr, _ = _reduction_calls()
    leaf = corr.to(BF16).requires_grad_()
    with torch.autocast("cpu", dtype=BF16):
        out = calls[name](leaf)
    assert out.dtype == torch.float32
    assert torch.equal(out, calls[name](leaf.detach().float()))
    out.sum().backward()
    assert leaf.grad.dtype == BF16 and torch.isfinite(leaf.grad.float()).all()


def test_copies_and_comparisons_keep_a_dtype_the_cpu_kernel_takes():
    corr = rand(1, 5, 5, 5, 5).to(BF16)
    with torch.autocast("cpu", dtype=BF16):
        windows = ops.gather_windows4d_points(corr, torch.tensor([[0, 2, 2, 2, 2]]), 3)
        pooled, _ = ops.max_pool4d(corr.unsqueeze(1).repeat(1, 1, 1, 1, 1, 1), 2)
        _, scores = ops.patchmatch_select(torch.zeros(1, 2, 2, 3, 2, dtype=torch.long), rand(1, 2, 2, 3).to(BF16),
                                          torch.ones(1, 2, 2, 3, dtype=torch.bool), 2)
    assert windows.dtype == BF16  # the CPU kernel copies bfloat16 as is
    assert pooled.dtype == torch.float32 and scores.dtype == torch.float32  # cast up (exactly) for the CPU kernel
    assert torch.equal(pooled, ops.max_pool4d(corr.unsqueeze(1).float(), 2)[0])


def test_ncnet_like_pipeline_under_autocast_matches_float32_and_trains():
    torch.manual_seed(0)
    consensus = snn.NeighConsensus(kernel_sizes=(3, 3), channels=(4, 1))
    # features with a true match (tgt is src shifted by one row, plus noise), so the soft-argmax has one peak
    src = torch.randn(1, 64, 6, 6, generator=torch.Generator().manual_seed(0))
    tgt = src.roll(1, dims=2) + 0.3 * torch.randn(1, 64, 6, 6, generator=torch.Generator().manual_seed(1))

    def run():
        corr = ops.mutual_matching(ops.corr4d(src, tgt).unsqueeze(1))
        corr = ops.mutual_matching(consensus(corr)).squeeze(1)
        return ops.kernel_soft_argmax(corr), corr

    ref, ref_corr = run()
    with torch.autocast("cpu", dtype=BF16):
        out, _ = run()
    assert out.dtype == torch.float32
    # soft-argmax coordinates in [-1, 1]. The kernel soft-argmax centres on the argmax, so where the float32 volume's
    # best two targets are within 1% (bfloat16 inputs perturb scores by ~2^-8), the match may go to the other one:
    # such near-ties (3 of the 36 sources here, one of which flips) are exempt, all other positions must agree.
    top2 = ref_corr.detach().flatten(3).topk(2, dim=-1).values
    near_tie = (top2[..., 0] - top2[..., 1]) < 1e-2 * top2[..., 0]
    assert near_tie.sum() <= 3
    torch.testing.assert_close(out[~near_tie], ref[~near_tie], atol=0.05, rtol=0)
    out.square().sum().backward()
    for p in consensus.parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()


def test_conv4d_hidden_layer_keeps_the_autocast_dtype():
    """A conv4d with several output channels feeds the next layer, which would round a float32 output back."""
    x, w, b = rand(1, 2, 4, 4, 4, 4), rand(3, 2, 3, 3, 3, 3, seed=1) - 0.5, rand(3, seed=2)
    with torch.autocast("cpu", dtype=BF16):
        out = ops.conv4d(x, w, b)
        assert out.dtype == BF16 and torch.equal(out, ops.conv4d(x.to(BF16), w.to(BF16), b.to(BF16)))
        assert ops.conv4d(x, w, b, out_dtype=torch.float32).dtype == torch.float32  # the caller's out_dtype stands
        assert ops.conv4d(x, w[:1], b[:1]).dtype == torch.float32


@pytest.mark.parametrize("name", list(ac.FLOAT32_OUT))
def test_float32_out_also_for_reduced_inputs_and_never_against_the_caller(name):
    call, inputs = GEMM_CALLS[name]
    reduced = [t.to(BF16) for t in inputs]
    with torch.autocast("cpu", dtype=BF16):
        assert call(*reduced).dtype == torch.float32  # already bfloat16 (e.g. a backbone's output): not cast
        out = call(*inputs, out_dtype=BF16)  # the caller's out_dtype stands
        assert out.dtype == BF16 and torch.equal(out, call(*reduced, out_dtype=BF16))
        assert call(*[t.double() for t in inputs]).dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.float16):
        assert call(*inputs).dtype == torch.float32  # run in float32 (no CPU float16 path): nothing to widen


def test_without_autocast_nothing_is_cast():
    with pytest.raises(RuntimeError, match=r"semcorr::mutual_matching: `corr` must be a floating tensor"):
        ops.mutual_matching(rand(1, 2, 2, 2, 2).to(BF16))


def test_the_policy_table():
    with torch.autocast("cpu", dtype=BF16):
        assert ac.run_dtype("corr4d", "cpu", torch.float32) == BF16
    with torch.autocast("cpu", dtype=torch.float16):
        assert ac.run_dtype("corr4d", "cpu", torch.float32) == torch.float32  # no CPU float16 path
    # CUDA: the kernels take float16 and bfloat16, so the GEMM ops follow the region's dtype (float16 by default)
    assert ac.run_dtype("conv4d", "cuda", torch.float32) == ac._autocast_dtype("cuda")
    for device_type in ("cpu", "cuda"):
        for name in ac.AUTOCAST_FLOAT32:
            assert ac.run_dtype(name, device_type, BF16) == torch.float32
        for name in ac.AUTOCAST_EXACT:
            assert ac.run_dtype(name, device_type, torch.float32) is None
            assert ac.run_dtype(name, "cuda", torch.float16) is None
    assert ac.run_dtype("max_pool4d", "cpu", BF16) == torch.float32
    assert ac.run_dtype("patchmatch_select", "cpu", torch.float16) == torch.float32
    assert ac.run_dtype("gather_windows4d", "cpu", BF16) is None
    assert ac.run_dtype("gather_windows4d_points", "cpu", torch.float16) == torch.float32


def test_every_floating_op_has_an_autocast_policy():
    from test_ops_doc import FORWARD_OPS

    integer_ops = {"kernel_map4d", "patchmatch_propagate"}
    listed = set(ac.AUTOCAST_GEMM) | set(ac.AUTOCAST_FLOAT32) | set(ac.AUTOCAST_EXACT)
    assert listed == set(FORWARD_OPS) - integer_ops
