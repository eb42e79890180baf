"""Every op with a CUDA kernel on a real GPU against the CPU op (issue #20, deliverable 3), table-driven
(tests/cuda_op_cases.py): op x option set x dtype (float32, and float16/bfloat16 where docs/OPS.md#precision
says CUDA accepts them) x {contiguous, non-contiguous, empty inputs}, forward and backward, plus the
determinism alert (`torch.use_deterministic_algorithms(True)`: the Hough ops, which vote with float atomics,
must raise on CUDA, in the forward and in the backward; every other op must run and be bitwise reproducible).

Reference: the CPU op in float32 on the same inputs (for float16/bfloat16 rows the inputs are rounded to the
storage dtype first, and the reference output rounded to it), as tests/test_emu_half.py does under the emulator.
TF32 rows (ops with tensor-core kernels): float32 inputs with PyTorch's TF32 switches on (the tensor-core TF32
kernel on sm_80+), tolerance 8 tf32 ulps (rtol = atol = 4e-3, as float16: the same 10-bit mantissa); the float32
rows turn both switches off (matmul, and cuDNN's, which defaults to True) so they test the exact SIMT kernels.
Tolerances: float32 rtol 1e-4 / atol 1e-5; float16 / bfloat16 8 ulps (rtol 4e-3 / 3.2e-2, atol the same times
the row's output scale), twice those of the emulated tests, for the GPU's different summation orders (cuBLAS,
atomics); gradients use the row's `grad_scale`. Index outputs must be equal.

The device is a parameter. The "cuda" rows need a GPU (none here: skipped with "needs a CUDA GPU") and first
run in `make gpu-check`. The "cpu" rows are the harness's self-check, run by `make test`: the same table, the
same code paths, with the op under test being the CPU op in float64 (the CPU kernels refuse half), compared
with the same float32 reference and tolerances; only the "must raise" branch of the determinism test is
CUDA-only (the CPU Hough kernels are deterministic, so there they must reproduce bitwise)."""
import contextlib
import os
import re

import pytest
import torch
from conftest import requires_cuda
from cuda_op_cases import CASES, HALF, TF32, F, I, X

# cuBLAS (backward of corr4d, gather_windows4d_linear) refuses deterministic mode without a fixed workspace
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

DEVICES = [pytest.param("cuda", marks=[pytest.mark.cuda, requires_cuda], id="cuda"), pytest.param("cpu", id="cpu")]
TOL = {torch.float32: (1e-4, 1e-5), torch.float16: (4e-3, 4e-3), torch.bfloat16: (3.2e-2, 3.2e-2), None: (0, 0),
       TF32: (4e-3, 4e-3)}
ROWS = [pytest.param(c, d, id=f"{c.id}-{str(d).replace('torch.', '') if d else 'int'}") for c in CASES for d in c.dtypes]


def _exec_dtype(device, dtype):
    """dtype the op under test runs in: the row's dtype on CUDA (float32 for TF32 rows), float64 on the CPU
    (self-check)."""
    return (torch.float32 if dtype == TF32 else dtype) if device == "cuda" else torch.float64


@contextlib.contextmanager
def _tf32_switches(dtype):
    """PyTorch's TF32 switches (matmul and cuDNN) on for TF32 rows, off for every other row; restored after."""
    old_prec, old_cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = dtype == TF32
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old_prec)  # also restores matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = old_cudnn


def _ref_inputs(case, dtype, empty):
    """Inputs of the float32 CPU reference (X inputs already rounded to the row's storage dtype)."""
    args = case.make(empty)
    for a in args:
        if a.kind == X and dtype in HALF:
            a.t = a.t.to(dtype).float()
    return args


def _noncontig(t):
    """Same values, non-contiguous (every other element of a wider buffer holding other values): a kernel
    that ignores strides reads the filler."""
    filler = torch.ones_like(t) if t.dtype == torch.bool else torch.full_like(t, 3 if not t.is_floating_point() else 77)
    out = torch.stack([t, filler], -1)[..., 0]
    assert not out.is_contiguous() or t.numel() <= 1
    return out


def _device_inputs(args, device, dtype, noncontig):
    out = []
    for a in args:
        t = a.t.to(device, dtype if a.kind == X and dtype is not None else a.t.dtype)
        if noncontig:
            t = _noncontig(t)
        out.append(t.requires_grad_(a.kind == X))
    return out


def _tuple(o):
    return tuple(o) if isinstance(o, (tuple, list)) else (o,)


def _compare(got, ref, case, dtype, what, grad=False):
    rtol, atol = TOL[dtype]
    atol *= case.grad_scale if grad else case.scale
    if not ref.is_floating_point():
        assert got.dtype == ref.dtype, what
        assert torch.equal(got.cpu(), ref), what
        return
    if dtype in HALF:
        ref = ref.to(dtype).float()
    assert got.shape == ref.shape, what
    torch.testing.assert_close(got.detach().double().cpu(), ref.double(), rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def _run(case, dtype, device, empty=False, noncontig=False):
    with _tf32_switches(dtype):
        _run_rows(case, dtype, device, empty, noncontig)


def _run_rows(case, dtype, device, empty, noncontig):
    """The op on `device` against the float32 CPU op, forward and (for floating outputs) backward."""
    ref_args = _ref_inputs(case, dtype, empty)
    exec_dtype = _exec_dtype(device, dtype) if dtype is not None else None
    dev = _device_inputs(ref_args, device, exec_dtype, noncontig)
    ref = [a.t.clone().requires_grad_(a.kind == X) for a in ref_args]
    out_r, out_d = _tuple(case.fn(*ref)), _tuple(case.fn(*dev))
    assert len(out_r) == len(out_d)
    for k, (d, r) in enumerate(zip(out_d, out_r)):
        if d.is_floating_point():
            assert d.dtype == exec_dtype, f"output {k} dtype {d.dtype}, expected the input dtype {exec_dtype}"
            assert d.device.type == device
        _compare(d, r.detach(), case, dtype, f"{case.id} {dtype} output {k}")
        if empty:
            assert d.numel() == 0 or r.numel() == d.numel(), f"output {k}"
    diff = [k for k, r in enumerate(out_r) if r.requires_grad]
    if not diff:
        return
    # gradient weights representable in the storage dtype (the CUDA backward receives them in that dtype)
    w = [torch.randn(out_r[k].shape, generator=torch.Generator().manual_seed(7 + k)) for k in diff]
    w = [wi.to(dtype).float() if dtype in HALF else wi for wi in w]
    sum((out_r[k] * wi).sum() for k, wi in zip(diff, w)).backward()
    sum((out_d[k].double() * wi.to(device, torch.float64)).sum() for k, wi in zip(diff, w)).backward()
    for j, (d, r, a) in enumerate(zip(dev, ref, ref_args)):
        if a.kind == X:
            assert d.grad is not None and d.grad.dtype == exec_dtype, f"input {j} gradient"
            _compare(d.grad, r.grad, case, dtype, f"{case.id} {dtype} grad of input {j}", grad=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case,dtype", ROWS)
def test_op(case, dtype, device):
    _run(case, dtype, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case,dtype", ROWS)
def test_op_noncontiguous(case, dtype, device):
    _run(case, dtype, device, noncontig=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case,dtype", ROWS)
def test_op_empty(case, dtype, device):
    _run(case, dtype, device, empty=True)


def _forward_backward(case, dev_args):
    args = [t.detach().clone().requires_grad_(t.requires_grad) for t in dev_args]
    outs = _tuple(case.fn(*args))
    diff = [o for o in outs if o.requires_grad]
    if diff:
        sum((o.double() * (k + 1)).sin().sum() for k, o in enumerate(diff)).backward()
    return [o.detach() for o in outs] + [a.grad for a in args if a.grad is not None]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case,dtype", ROWS)
def test_determinism_alert(case, dtype, device):
    with _tf32_switches(dtype):
        _determinism(case, dtype, device)


def _determinism(case, dtype, device):
    exec_dtype = _exec_dtype(device, dtype) if dtype is not None else None
    dev = _device_inputs(_ref_inputs(case, dtype, False), device, exec_dtype, False)
    was, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if case.atomics and device == "cuda":
            torch.use_deterministic_algorithms(True)
            with pytest.raises(RuntimeError, match="deterministic"):
                case.fn(*dev)
            # the backward votes with atomics too: it must raise on its own
            torch.use_deterministic_algorithms(False)
            out = _tuple(case.fn(*dev))[0]
            torch.use_deterministic_algorithms(True)
            with pytest.raises(RuntimeError, match="deterministic"):
                out.sum().backward()
        else:
            torch.use_deterministic_algorithms(True)
            first, second = _forward_backward(case, dev), _forward_backward(case, dev)
            assert len(first) == len(second) and len(first) >= 1
            for k, (a, b) in enumerate(zip(first, second)):
                assert torch.equal(a, b), f"{case.id}: result {k} differs between two calls"
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn_only)


def test_table_covers_every_cuda_op():
    """Every op of docs/OPS.md's precision table (each has a CUDA kernel) has rows, and the rows run fp16/bf16
    exactly for the ops whose CUDA column adds them."""
    with open(os.path.join(os.path.dirname(__file__), "..", "docs", "OPS.md")) as f:
        doc = f.read()
    table = dict(re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \|", doc, re.MULTILINE))
    assert len(table) >= 15, table
    from semcorr_ext import ops
    assert set(table) <= set(ops.__all__)
    assert {c.op for c in CASES} == set(table)
    for c in CASES:
        assert (torch.float16 in c.dtypes and torch.bfloat16 in c.dtypes) == ("float16, bfloat16" in table[c.op]
                                                                               and "+" in table[c.op]), c.id
        assert c.atomics == (c.op in ("hough_match", "hough_vote")), c.id
    assert {k for c in CASES for k in [a.kind for a in c.make(False)]} <= {X, F, I}
