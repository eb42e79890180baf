"""max_pool4d's own cases: NC-Net's maxpool4d, ties, NaN, argmax, gradient routing.
The op contract (reference, gradcheck, opcheck, compile, empty and bad input) is in tests/test_op_contract.py."""
import torch

from benchmarks import baselines_consensus as bl
from semcorr_ext import ops


def rand(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


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


def test_remainder_dropped():
    values, argmax = ops.max_pool4d(rand(1, 1, 5, 4, 3, 3), 2)
    assert values.shape == (1, 1, 2, 2, 1, 1) and argmax.shape == (1, 4, 2, 2, 1, 1)


def test_gradient_routing():
    x = rand(1, 2, 4, 2, 2, 4, dtype=torch.float64).requires_grad_()
    values, _ = ops.max_pool4d(x, 2)
    values.sum().backward()
    assert x.grad.sum() == values.numel() and set(x.grad.unique().tolist()) <= {0.0, 1.0}
