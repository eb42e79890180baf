"""conv4d's own cases: NC-Net's conv3d loop, every CPU plan, the Conv4d / NeighConsensus modules, strides,
fuzzing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import baselines_consensus as bl
from semcorr_ext import nn as snn
from semcorr_ext import ops, reference
from conftest import assert_close
from op_rows_consensus import CONV_CASES as CASES  # (x shape, weight shape, padding)

PLANS = ["gather1", "gather2", "scatter1", "scatter2"]


def rand(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("plan", PLANS)
@pytest.mark.parametrize("xs,ws,pad", [CASES[0], CASES[3], CASES[5], CASES[8]])
def test_every_cpu_plan(monkeypatch, plan, xs, ws, pad):
    """The four ways the CPU kernel folds taps into channels all give the same numbers, forward and
    backward (the default picks one by shape; SEMCORR_CONV4D_PLAN forces one). Small chunks cross the
    chunk loop."""
    monkeypatch.setenv("SEMCORR_CONV4D_PLAN", plan)
    monkeypatch.setenv("SEMCORR_CONV4D_CHUNK", "2")
    x = rand(*xs, dtype=torch.float64).requires_grad_()
    w = rand(*ws, dtype=torch.float64, seed=1).requires_grad_()
    b = rand(ws[0], dtype=torch.float64, seed=2).requires_grad_()
    out = ops.conv4d(x, w, b, pad)
    g = rand(*out.shape, dtype=torch.float64, seed=3)
    grads = torch.autograd.grad(out, (x, w, b), g)
    x2, w2, b2 = (t.detach().clone().requires_grad_() for t in (x, w, b))
    ref = reference.conv4d(x2, w2, b2, pad)
    ref_grads = torch.autograd.grad(ref, (x2, w2, b2), g)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for a, e in zip(grads, ref_grads):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)


def test_values_by_hand():
    # a single 1 at the centre of a 3^4 volume: a cross-correlation returns the kernel flipped
    x = torch.zeros(1, 1, 3, 3, 3, 3)
    x[0, 0, 1, 1, 1, 1] = 1.0
    w = torch.arange(81, dtype=torch.float32).reshape(1, 1, 3, 3, 3, 3)
    out = ops.conv4d(x, w)
    assert torch.equal(out[0, 0], w[0, 0].flip(0, 1, 2, 3))
    # all ones, 3^4 kernel of ones, zero padding: each output counts its in-bounds neighbours
    ones = torch.ones(1, 1, 3, 3, 3, 3)
    out = ops.conv4d(ones, torch.ones(1, 1, 3, 3, 3, 3), torch.tensor([0.5]))
    assert out[0, 0, 1, 1, 1, 1] == 81.5 and out[0, 0, 0, 0, 0, 0] == 16.5 and out[0, 0, 0, 1, 1, 1] == 54.5


def test_matches_ncnet_conv4d_loop():
    x, w, b = rand(2, 3, 7, 6, 5, 6), rand(4, 3, 5, 5, 5, 5, seed=1), rand(4, seed=2)
    expected = bl.ncnet_conv4d(x, w, b)
    assert_close(ops.conv4d(x, w, b), expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def test_ncnet_weight_layout():
    w = rand(4, 3, 5, 3, 3, 3, seed=1)  # non-isotropic so that a wrong permutation cannot pass
    ncnet_w = snn.Conv4d.standard_to_ncnet(w)
    assert ncnet_w.shape == (5, 4, 3, 3, 3, 3)
    layer = snn.Conv4d.from_ncnet_weight(ncnet_w, torch.zeros(4))
    assert torch.equal(layer.weight, w) and layer.kernel_size == (5, 3, 3, 3) and layer.padding == (2, 1, 1, 1)
    x = rand(1, 3, 6, 5, 5, 4)
    assert_close(layer(x), reference.conv4d(x, w, torch.zeros(4)), atol=1e-5)


def test_neigh_consensus_matches_ncnet():
    torch.manual_seed(0)
    net = snn.NeighConsensus(kernel_sizes=[3, 3, 3], channels=[4, 4, 1])
    x = torch.rand(1, 1, 5, 6, 6, 5)
    convs = [m for m in net.conv if isinstance(m, snn.Conv4d)]
    expected = bl.ncnet_neigh_consensus(x, [c.weight for c in convs], [c.bias for c in convs])
    out = net(x)
    assert out.shape == x.shape
    assert_close(out, expected, rtol=1e-5, atol=1e-6)
    # symmetric: swapping source and target swaps the output
    assert_close(net(x.permute(0, 1, 4, 5, 2, 3)), out.permute(0, 1, 4, 5, 2, 3), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(snn.NeighConsensus([3, 3, 3], [4, 4, 1], symmetric=False)(x), out)


def test_neigh_consensus_backward_matches_ncnet():
    torch.manual_seed(0)
    net = snn.NeighConsensus(kernel_sizes=[3, 3], channels=[3, 1]).double()
    x = torch.rand(1, 1, 4, 5, 5, 4, dtype=torch.float64, requires_grad=True)
    net(x).square().sum().backward()
    convs = [m for m in net.conv if isinstance(m, snn.Conv4d)]
    ws = [c.weight.detach().clone().requires_grad_() for c in convs]
    bs = [c.bias.detach().clone().requires_grad_() for c in convs]
    x2 = x.detach().clone().requires_grad_()
    bl.ncnet_neigh_consensus(x2, ws, bs).square().sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    for c, w, b in zip(convs, ws, bs):
        torch.testing.assert_close(c.weight.grad, w.grad)
        torch.testing.assert_close(c.bias.grad, b.grad)


def test_non_contiguous():
    x = rand(2, 3, 5, 6, 4, 5).permute(0, 1, 4, 5, 2, 3)  # source/target transpose, as NeighConsensus does
    w = rand(3, 2, 5, 3, 3, 3, seed=1).transpose(0, 1)  # (2, 3, ...) non-contiguous weight
    assert not x.is_contiguous() and not w.is_contiguous()
    assert_close(ops.conv4d(x, w, None), reference.conv4d(x, w, None), atol=1e-5)


def test_no_bias_and_zero_input_channels():
    x, w = rand(1, 2, 3, 4, 3, 4), rand(3, 2, 3, 3, 3, 3, seed=1)
    assert_close(ops.conv4d(x, w), reference.conv4d(x, w), atol=1e-5)
    x0, w0, b = torch.zeros(1, 0, 3, 3, 3, 3), torch.zeros(2, 0, 3, 3, 3, 3), torch.tensor([1.5, -2.0])
    out = ops.conv4d(x0, w0, b)
    assert out.shape == (1, 2, 3, 3, 3, 3) and torch.equal(out[:, 0], torch.full((1, 3, 3, 3, 3), 1.5))


def test_gradient_only_where_needed():
    x = rand(1, 2, 3, 3, 3, 3).requires_grad_()
    w, b = rand(2, 2, 3, 3, 3, 3, seed=1), rand(2, seed=2)
    ops.conv4d(x, w, b).sum().backward()
    expected = torch.autograd.grad(reference.conv4d(x.double(), w.double(), b.double()).sum(), x)[0]
    assert_close(x.grad, expected)


def test_torch_compile_inductor_module_backward():
    torch.manual_seed(0)
    net = snn.NeighConsensus(kernel_sizes=[3, 3], channels=[2, 1])
    x = torch.rand(1, 1, 4, 3, 4, 3)
    compiled = torch.compile(net, fullgraph=True)
    out = compiled(x)
    assert_close(out, net(x))
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


@settings(max_examples=30, deadline=None)
@given(B=st.integers(1, 2), cin=st.integers(1, 4), cout=st.integers(1, 4), dims=st.lists(st.integers(1, 5), min_size=4, max_size=4),
       ks=st.lists(st.sampled_from([1, 3]), min_size=4, max_size=4), transpose=st.booleans(), seed=st.integers(0, 2**16))
def test_fuzz_shapes_and_strides(B, cin, cout, dims, ks, transpose, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, cin, *dims, generator=g)
    if transpose:
        x = torch.randn(B, cin, dims[2], dims[3], dims[0], dims[1], generator=g).permute(0, 1, 4, 5, 2, 3)
    w = torch.randn(cout, cin, *ks, generator=g)
    b = torch.randn(cout, generator=g)
    assert_close(ops.conv4d(x, w, b), reference.conv4d(x, w, b), rtol=1e-5, atol=1e-5)
