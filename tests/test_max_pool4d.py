"""max_pool4d: CPU op vs the float64 reference and NC-Net's maxpool4d; gradients, opcheck, compile, errors."""
import pytest
import torch

from benchmarks import baselines_consensus as bl
from semcorr_ext import ops, reference


def rand(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,k", [((2, 1, 8, 6, 4, 10), 2), ((1, 3, 7, 5, 9, 4), (3, 2, 4, 1)),
                                     ((1, 1, 4, 4, 4, 4), 4), ((2, 2, 3, 3, 3, 3), 1)])
def test_matches_reference(dtype, shape, k):
    x = rand(*shape, dtype=dtype)
    values, argmax = ops.max_pool4d(x, k)
    ev, ea = reference.max_pool4d(x, k)
    assert values.dtype == dtype and argmax.dtype == torch.int64
    assert torch.equal(values, ev) and torch.equal(argmax, ea)


def test_values_by_hand():
    x = torch.zeros(1, 1, 2, 2, 2, 4)
    x[0, 0, 1, 0, 1, 3] = 5.0  # block (0, 0, 0, 1) of k = 2, offsets (1, 0, 1, 1)
    x[0, 0, 0, 1, 0, 0] = 2.0  # block (0, 0, 0, 0), offsets (0, 1, 0, 0)
    values, argmax = ops.max_pool4d(x, 2)
    assert values.shape == (1, 1, 1, 1, 1, 2) and argmax.shape == (1, 4, 1, 1, 1, 2)
    assert values.flatten().tolist() == [2.0, 5.0]
    assert argmax[0, :, 0, 0, 0, 0].tolist() == [0, 1, 0, 0] and argmax[0, :, 0, 0, 0, 1].tolist() == [1, 0, 1, 1]
    # ties: the first maximum in row-major block order (all zeros -> offset 0)
    _, a0 = ops.max_pool4d(torch.zeros(1, 1, 2, 2, 2, 2), 2)
    assert a0.flatten().tolist() == [0, 0, 0, 0]


def test_nan_is_the_maximum():
    x = torch.zeros(1, 1, 2, 2, 2, 2)
    x[0, 0, 1, 1, 0, 0] = float("nan")
    x[0, 0, 1, 1, 1, 1] = float("nan")
    values, argmax = ops.max_pool4d(x, 2)
    assert torch.isnan(values).all() and argmax.flatten().tolist() == [1, 1, 0, 0]


def test_matches_ncnet_maxpool4d():
    x = torch.rand(2, 1, 8, 8, 6, 6)
    values, argmax = ops.max_pool4d(x, 2)
    v, i, j, k, l = bl.ncnet_maxpool4d(x, 2)
    assert torch.equal(values, v.reshape(values.shape))
    for d, t in enumerate((i, j, k, l)):
        assert torch.equal(argmax[:, d], t.reshape(argmax[:, d].shape))


def test_argmax_locates_the_maximum():
    x = rand(1, 2, 6, 4, 6, 4)
    values, argmax = ops.max_pool4d(x, (3, 2, 3, 2))
    a = argmax.reshape(1, 2, 4, 2, 2, 2, 2)
    n = values.shape[2:]
    for idx in torch.cartesian_prod(*[torch.arange(s) for s in n]).tolist():
        for c in range(2):
            pos = [idx[d] * (3, 2, 3, 2)[d] + int(a[0, c, d, idx[0], idx[1], idx[2], idx[3]]) for d in range(4)]
            assert x[0, c, pos[0], pos[1], pos[2], pos[3]] == values[0, c, idx[0], idx[1], idx[2], idx[3]]


def test_remainder_dropped_and_empty():
    values, argmax = ops.max_pool4d(rand(1, 1, 5, 4, 3, 3), 2)
    assert values.shape == (1, 1, 2, 2, 1, 1) and argmax.shape == (1, 4, 2, 2, 1, 1)
    values, argmax = ops.max_pool4d(torch.zeros(0, 1, 4, 4, 4, 4), 2)
    assert values.shape == (0, 1, 2, 2, 2, 2)
    values, argmax = ops.max_pool4d(rand(1, 1, 1, 4, 4, 4, seed=1), 2)
    assert values.shape == (1, 1, 0, 2, 2, 2)


def test_gradcheck_and_routing():
    x = rand(1, 2, 4, 2, 2, 4, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: ops.max_pool4d(t, 2)[0], (x,))
    values, _ = ops.max_pool4d(x, 2)
    values.sum().backward()
    assert x.grad.sum() == values.numel() and set(x.grad.unique().tolist()) <= {0.0, 1.0}


def test_opcheck():
    x = rand(1, 2, 4, 4, 2, 4).requires_grad_()
    torch.library.opcheck(torch.ops.semcorr.max_pool4d.default, (x, [2, 2, 1, 2]))


def test_torch_compile_fullgraph():
    def f(x):
        v, a = ops.max_pool4d(x, 2)
        return v * 2, a + 1

    x = rand(1, 1, 4, 4, 4, 4)
    cv, ca = torch.compile(f, fullgraph=True, backend="aot_eager")(x)
    ev, ea = f(x)
    assert torch.equal(cv, ev) and torch.equal(ca, ea)


@pytest.mark.parametrize("x,k,match", [
    (rand(1, 4, 4, 4, 4), 2, r"`x` must be a 6-D tensor \(B, C, H1, W1, H2, W2\), got shape \[1, 4, 4, 4, 4\]"),
    (rand(1, 1, 4, 4, 4, 4), (2, 0, 2, 2), r"`kernel_size` entries must be >= 1"),
    (torch.ones(1, 1, 2, 2, 2, 2, dtype=torch.int64), 2, r"`x` must be a floating"),
])
def test_bad_input(x, k, match):
    with pytest.raises(RuntimeError, match=match):
        ops.max_pool4d(x, k)
    with pytest.raises(ValueError, match="kernel_size"):
        ops.max_pool4d(rand(1, 1, 2, 2, 2, 2), (2, 2))
