"""Every op against its contract: the checks of tests/op_contract.py on every row of tests/op_rows.py. Test ids
are `<op>-<case>`; a new op plugs in with a row (docs/OPS.md lists the ops, test_every_op_has_a_row keeps the
table complete)."""
import re

import pytest
import torch
from op_contract import CPU, F64, as_tuple
from op_rows import ROWS

from semcorr_ext import ops


def _cases(check, with_dtype=False):
    return [pytest.param(row, case, *([d] if with_dtype else []),
                         id=f"{row.name}-{case.id}" + (f"-{str(d)[6:]}" if d is not None else ""),
                         marks=[pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else [])
            for row in ROWS for case in getattr(row, check) for d in (row.dtypes if with_dtype else (None,))]


def _tol(case, dtype):
    return case.tol if dtype != F64 or case.tol64 == "tol" else case.tol64


def _compare(got, expected, tol, rel_atol=False, what=""):
    """Each output: same shape; integer outputs and `tol=None` bitwise (NaN equal to NaN); floating outputs in
    the output's dtype with (rtol, atol)."""
    got, expected = as_tuple(got), as_tuple(expected)
    assert len(got) == len(expected), what
    for k, (g, e) in enumerate(zip(got, expected)):
        assert g.shape == e.shape, f"{what} output {k}: shape {tuple(g.shape)}, expected {tuple(e.shape)}"
        if not e.is_floating_point() or tol is None:
            assert g.dtype == e.dtype or e.is_floating_point(), f"{what} output {k}: dtype {g.dtype} vs {e.dtype}"
            torch.testing.assert_close(g, e.to(g.dtype), rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what} {k}: {m}")
            continue
        rtol, atol = tol
        if rel_atol and e.numel():
            atol *= max(float(e.abs().max()), 1.0)
        torch.testing.assert_close(g, e.to(g.dtype), rtol=rtol, atol=atol, msg=lambda m: f"{what} output {k}: {m}")


@pytest.mark.parametrize("row,case,dtype", _cases("reference", with_dtype=True))
def test_reference(row, case, dtype):
    inputs = case.make(dtype)
    got = as_tuple(case.fn(*inputs))
    for g in got:  # floating outputs keep the input dtype
        assert not g.is_floating_point() or dtype is None or g.dtype == dtype, g.dtype
    _compare(got, case.ref(*inputs), _tol(case, dtype), case.rel_atol, case.id)
    if case.check:
        case.check(got, inputs)


@pytest.mark.parametrize("row,case", _cases("grad_reference"))
def test_grad_reference(row, case):
    """float64 vector-Jacobian products with random weights, the op's backward against autograd through the
    reference."""
    inputs = case.make()
    diff = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    out = case.fn(*inputs)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(99), dtype=F64)
    got = torch.autograd.grad((out * w).sum(), diff)
    expected = torch.autograd.grad((case.ref(*inputs) * w).sum(), diff)
    _compare(got, expected, case.tol, what=case.id)


@pytest.mark.parametrize("row,case", _cases("gradcheck"))
def test_gradcheck(row, case):
    inputs = case.make()
    assert torch.autograd.gradcheck(case.fn, inputs, **case.opts)


@pytest.mark.parametrize("row,case", _cases("gradcheck"))
def test_double_backward(row, case):
    """Rows with double backward pass gradgradcheck (fast mode: the full Jacobian of a window op has one backward
    per output element); every other op refuses with an error saying so, never a silently wrong gradient."""
    inputs = case.make()
    if row.double_backward:
        assert torch.autograd.gradgradcheck(case.fn, inputs, fast_mode=True)
        return
    out = as_tuple(case.fn(*inputs))[0]
    (g,) = torch.autograd.grad(out.pow(2).sum(), inputs[0], create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        g.sum().backward()


@pytest.mark.parametrize("row,case", _cases("opcheck"))
def test_opcheck(row, case):
    torch.library.opcheck(case.fn, case.make(), **case.opts)


@pytest.mark.parametrize("row,case", _cases("compile"))
def test_torch_compile_fullgraph(row, case):
    """The compiled function (fullgraph: no graph break around the op) equals eager; inputs requiring grad get
    the same gradients (the op's backward inside AOT autograd)."""
    inputs = case.make()
    compiled = torch.compile(case.fn, fullgraph=True, **case.opts)
    got, expected = as_tuple(compiled(*inputs)), as_tuple(case.fn(*inputs))
    _compare([g.detach() for g in got], [e.detach() for e in expected], case.tol, what=case.id)
    diff = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    if diff:
        loss = lambda outs: sum(o.sum() for o in outs if o.requires_grad)  # noqa: E731
        _compare(torch.autograd.grad(loss(got), diff), torch.autograd.grad(loss(expected), diff), case.tol,
                 what=case.id + " gradient")


@pytest.mark.parametrize("row,case", _cases("empty"))
def test_empty(row, case):
    """Zero-sized inputs: the documented output shapes (case.check), the reference's values where given, and a
    backward that returns gradients of the inputs' shapes (all zero when no output element exists)."""
    inputs = case.make()
    outs = as_tuple(case.fn(*inputs))
    case.check(outs, inputs)
    if case.ref is not None:
        _compare(outs, case.ref(*[t.detach() if isinstance(t, torch.Tensor) else t for t in inputs]), None,
                 what=case.id)
    diff = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    floating = [o for o in outs if o.requires_grad]
    if not diff or not floating:
        return
    sum(o.sum() for o in floating).backward()
    for t in diff:
        assert t.grad is not None and t.grad.shape == t.shape
        if all(o.numel() == 0 for o in floating):
            assert torch.equal(t.grad, torch.zeros_like(t))


@pytest.mark.parametrize("row,case", _cases("bad_input"))
def test_bad_input(row, case):
    with pytest.raises(case.error, match=case.match) as e:
        case.fn(*case.make())
    assert re.search(r"`\w+`", str(e.value)), f"the error names no argument: {e.value}"


@pytest.mark.emu
@pytest.mark.parametrize("row,case", _cases("emu"))
def test_emulated_kernel(emu, row, case):
    """The CUDA kernel under the host emulator against the CPU kernel, on the row's small inputs (the per-op
    tests/test_emu_*.py cross the kernels' tile edges under both serial thread orders)."""
    inputs = case.make()
    _compare(case.fn(emu, *inputs), case.fn(CPU, *inputs), case.tol, what=case.id)


@pytest.mark.emu
@pytest.mark.parametrize("row,case", _cases("emu_empty"))
def test_emulated_kernel_empty(emu, row, case):
    inputs = case.make()
    outs = as_tuple(case.fn(emu, *inputs))
    case.check(outs, inputs)
    _compare(outs, case.fn(CPU, *inputs), None, what=case.id)


@pytest.mark.emu
@pytest.mark.parametrize("row,case", _cases("emu_bad_input"))
def test_emulated_kernel_bad_input(emu, row, case):
    with pytest.raises(case.error, match=case.match):
        case.fn(emu, *case.make())


def test_every_op_has_a_row():
    """Every public op has a row, with every check that applies to it: a new op cannot skip the contract."""
    names = [r.name for r in ROWS]
    assert len(names) == len(set(names))
    assert set(names) == set(ops.__all__) - {"KernelMap"}  # KernelMap: kernel_map4d's result type
    for r in ROWS:
        for check in ("reference", "opcheck", "compile", "empty", "bad_input", "emu", "emu_empty", "emu_bad_input"):
            assert getattr(r, check), f"{r.name} has no {check} case"
        if r.dtypes != (None,):  # floating ops: a backward
            assert r.gradcheck, f"{r.name} has no gradcheck case"
