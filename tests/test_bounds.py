"""Integer arguments that ask for the impossible raise an error naming the argument before anything is
allocated, and backward ops reject out-of-range indices instead of dropping them (issue #17, deliverable 2).

Every call runs under a lowered address-space limit (the current size + 3 GB): should a check be missing, the
allocation fails with an allocator error (which does not match the expected message, so the test fails)
instead of the operating system killing the test process."""
import contextlib
import resource

import pytest
import torch

import semcorr_ext  # noqa: F401  (registers torch.ops.semcorr)

O = torch.ops.semcorr
LONG = torch.long


@contextlib.contextmanager
def address_space_cap(extra_bytes=3 << 30):
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        vm_bytes = int(f.read().split()[0]) * resource.getpagesize()
    cap = vm_bytes + extra_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def f(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def zl(*shape):
    return torch.zeros(*shape, dtype=LONG)


def pts(m):
    return torch.zeros(m, 5, dtype=LONG)


ONE_COORD = torch.tensor([[0, 1, 1, 1, 1]])
BIG = 2**31 - 5  # "near 2^31": with 2 output rows it is past the 2^31 - 1 element limit

# (id, call, message regex). Calls of the dispatcher ops, as a caller of torch.ops.semcorr meets them.
CPU_CASES = [
    ("kernel_map4d/one-huge-dim", lambda: O.kernel_map4d(ONE_COORD, [1, 1, 1000000001, 1]),
     r"kernel_map4d: `kernel_size` \[1, 1, 1000000001, 1\] gives more than 1048576 \(2\^20\) kernel offsets"),
    ("kernel_map4d/product", lambda: O.kernel_map4d(ONE_COORD, [99]),
     r"`kernel_size` \[99\] gives more than 1048576"),
    ("kernel_map4d/int64-overflow", lambda: O.kernel_map4d(ONE_COORD, [2**40 + 1] * 4),
     r"`kernel_size` .* gives more than 1048576"),
    ("patchmatch_select_backward/n-near-2^31",
     lambda: O._patchmatch_select_backward(f(1, 1, 2, 1), zl(1, 1, 2, 1), BIG),
     r"_patchmatch_select_backward: `n` asks for a tensor of shape \[1, 1, 2, 2147483644\]"),
    ("patchmatch_select_backward/n-int64-max",
     lambda: O._patchmatch_select_backward(f(1, 1, 2, 1), zl(1, 1, 2, 1), 2**63 - 1),
     r"_patchmatch_select_backward: `n` = 9223372036854775807 candidates is more than"),
    ("patchmatch_select_backward/index-past-n",
     lambda: O._patchmatch_select_backward(f(1, 1, 2, 1), torch.tensor([[[[1], [7]]]]), 3),
     r"`indices` must lie in \[-1, n\) = \[-1, 3\) .*got values in \[1, 7\]"),
    ("patchmatch_select_backward/index-below-minus-1",
     lambda: O._patchmatch_select_backward(f(1, 1, 2, 1), torch.tensor([[[[-2], [0]]]]), 3),
     r"`indices` must lie in \[-1, n\) = \[-1, 3\) .*got values in \[-2, 0\]"),
    ("patchmatch_select/k",
     lambda: O.patchmatch_select(zl(1, 1, 1, 4, 2), f(1, 1, 1, 4), torch.ones(1, 1, 1, 4, dtype=torch.bool), 2**40),
     r"patchmatch_select: `k` asks for a tensor of shape \[1, 1, 1, 1099511627776, 2\]"),
    ("patchmatch_propagate/random_samples",
     lambda: O.patchmatch_propagate(zl(1, 1, 1, 4, 2), zl(1, 2), [2, 2], 2**30, 1, 0, 0),
     r"patchmatch_propagate: `random_samples` asks for a tensor of shape \[1, 1, 1, 4, 1073741834, 2\]"),
    ("patchmatch_propagate/random_samples-int64",
     lambda: O.patchmatch_propagate(zl(1, 1, 1, 4, 2), zl(1, 2), [2, 2], 2**63 - 1, 1, 0, 0),
     r"`random_samples` = 9223372036854775807 is more than"),
    ("gather_windows4d_backward/corr_size",
     lambda: O._gather_windows4d_backward(f(1, 2, 2, 3, 1, 1, 1, 1), zl(1, 2, 2, 3, 2), [1, 2, 2, 10**6, 10**6], 1),
     r"_gather_windows4d_backward: `corr_size` asks for a tensor of shape \[1, 2, 2, 1000000, 1000000\]"),
    ("gather_windows4d_points_backward/corr_size",
     lambda: O._gather_windows4d_points_backward(f(3, 1, 1, 1, 1), pts(3), [1, 10**5, 10**5, 2, 2], 1),
     r"_gather_windows4d_points_backward: `corr_size` asks for a tensor of shape"),
    ("hough_vote/nbins-overflow", lambda: O.hough_vote(f(1, 2, 2), zl(1, 2, 2), [10**6] * 3, None),
     r"hough_vote: `nbins` \[1000000, 1000000, 1000000\] gives more than 16777216 \(2\^24\) bins"),
    ("hough_vote/nbins-one-dim", lambda: O.hough_vote(f(1, 2, 2), zl(1, 2, 2), [2**24 + 1], None),
     r"`nbins` \[16777217\] gives more than 16777216"),
    ("hough_vote_backward/nbins",
     lambda: O._hough_vote_backward(f(1, 2, 2), f(1, 2, 2), zl(1, 2, 2), [2**13, 2**13, 2], None),
     r"_hough_vote_backward: `nbins` .* gives more than"),
    ("hough_match/ncells",
     lambda: O.hough_match(f(1, 2, 2), torch.rand(1, 2, 2), torch.rand(1, 2, 2), [10.0, 10.0], [10.0, 10.0],
                           2**40, False),
     r"hough_match: `ncells` must be <= 16777216 \(2\^24; HPF: 8192\), got 1099511627776"),
    ("hough_match/aspect-ratio",
     lambda: O.hough_match(f(1, 2, 2), torch.rand(1, 2, 2), torch.rand(1, 2, 2), [1e12, 1.0], [1e12, 1.0],
                           2**24, False),
     r"the Hough space of pair 0 is too large"),
    ("hough_match_backward/ncells",
     lambda: O._hough_match_backward(f(1, 2, 2), f(1, 2, 2), torch.rand(1, 2, 2), torch.rand(1, 2, 2),
                                     [10.0, 10.0], [10.0, 10.0], 2**30, True),
     r"_hough_match_backward: `ncells` must be <= 16777216"),
    ("conv4d/padding-int64", lambda: O.conv4d(f(1, 1, 2, 2, 2, 2), f(1, 1, 1, 1, 1, 1), None, [2**62, 0, 0, 0]),
     r"conv4d: `padding` must be >= 0 and < 2\^31 - 1"),
    ("conv4d/padding-output", lambda: O.conv4d(f(1, 1, 2, 2, 2, 2), f(1, 1, 1, 1, 1, 1), None, [10**5] * 4),
     r"conv4d: `padding` asks for a tensor of shape \[1, 1, 200002, 200002, 200002, 200002\]"),
    ("conv4d_backward/padding",
     lambda: O._conv4d_backward(f(1, 1, 2, 2, 2, 2), f(1, 1, 2, 2, 2, 2), f(1, 1, 1, 1, 1, 1), [10**5] * 4,
                                [True, True, True]),
     r"_conv4d_backward: `padding` asks for a tensor of shape"),
    ("max_pool4d_backward/x_size",
     lambda: O._max_pool4d_backward(f(1, 1, 1, 1, 1, 1), zl(1, 4, 1, 1, 1, 1), [1, 1, 10**9, 10**9, 1, 1],
                                    [10**9, 10**9, 1, 1]),
     r"_max_pool4d_backward: `x_size` asks for a tensor of shape \[1, 1, 1000000000, 1000000000, 1, 1\]"),
    ("max_pool4d_backward/argmax-out-of-range",
     lambda: O._max_pool4d_backward(f(1, 1, 1, 1, 1, 1), torch.tensor([0, 0, 2, 0]).view(1, 4, 1, 1, 1, 1),
                                    [1, 1, 2, 2, 2, 2], [2, 2, 2, 2]),
     r"_max_pool4d_backward: `argmax` offsets must be in \[0, kernel_size\), got 2 for kernel size 2"),
]


@pytest.mark.parametrize("call,message", [c[1:] for c in CPU_CASES], ids=[c[0] for c in CPU_CASES])
def test_absurd_arguments_raise_naming_the_argument(call, message):
    with address_space_cap(), pytest.raises(RuntimeError, match=message):
        call()


def test_limits_leave_ordinary_sizes_alone():
    """The same ops with ordinary arguments still run (the checks are limits, not new rules)."""
    with address_space_cap():
        _, _, ptr = O.kernel_map4d(ONE_COORD, [5, 5, 5, 5])
        assert ptr.shape == (626,)
        g = O._patchmatch_select_backward(torch.ones(1, 1, 2, 1), torch.tensor([[[[-1], [2]]]]), 3)
        assert torch.equal(g, torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]]))
        assert O.hough_vote(f(1, 2, 2), zl(1, 2, 2), [256, 256, 256], None).shape == (1, 2, 2)


# The emulated CUDA launch sequences share these checks; the argmax range check lives in the CUDA launch code
# (the CPU kernel checks inside its loop), and kernel_map4d's (K, N) neighbour table only exists on CUDA.
def test_emulated_cuda_paths_raise_too(emu):
    with address_space_cap():
        with pytest.raises(RuntimeError, match=r"_max_pool4d_backward: `argmax` offsets along dim 1 must be in "
                                               r"\[0, kernel_size\) = \[0, 2\), got values in \[5, 5\]"):
            emu.max_pool4d_backward(f(1, 1, 1, 1, 1, 1), torch.tensor([0, 5, 0, 0]).view(1, 4, 1, 1, 1, 1),
                                    [1, 1, 2, 2, 2, 2], [2, 2, 2, 2])
        with pytest.raises(RuntimeError, match=r"`argmax` offsets along dim 3 .* got values in \[-1, -1\]"):
            emu.max_pool4d_backward(f(1, 1, 1, 1, 1, 1), torch.tensor([0, 0, 0, -1]).view(1, 4, 1, 1, 1, 1),
                                    [1, 1, 2, 2, 2, 2], [2, 2, 2, 2])
        with pytest.raises(RuntimeError, match=r"`kernel_size` \[1, 1, 1000000001, 1\] gives more than"):
            emu.kernel_map4d(ONE_COORD, [1, 1, 1000000001, 1])
        with pytest.raises(RuntimeError, match=r"`kernel_size` asks for a tensor of shape \[923521, 4096\]"):
            coords = torch.stack(torch.meshgrid(*[torch.arange(n) for n in (1, 8, 8, 8, 8)], indexing="ij"), -1)
            emu.kernel_map4d(coords.reshape(-1, 5), [31])
        with pytest.raises(RuntimeError, match=r"patchmatch_select: `k` asks for a tensor"):
            emu.patchmatch_select(zl(1, 1, 1, 4, 2), f(1, 1, 1, 4), torch.ones(1, 1, 1, 4, dtype=torch.bool), 2**40)
        with pytest.raises(RuntimeError, match=r"_gather_windows4d_backward: `corr_size` asks for a tensor"):
            emu.gather_windows4d_backward(f(1, 2, 2, 3, 1, 1, 1, 1), zl(1, 2, 2, 3, 2), [1, 2, 2, 10**6, 10**6], 1)
