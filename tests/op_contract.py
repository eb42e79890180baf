"""The op-contract harness (issue #14, point 6): what every op must satisfy, as data, torchvision style
(test/test_ops.py). tests/op_rows.py holds one `OpRow` per public op; tests/test_op_contract.py runs every check
on every row. A per-op test file keeps only what is specific to its op (values by hand, published baselines,
ties, tiles, fuzzing).

A check is a list of `Case`s on the row. Each case builds its own inputs (`make`) so that inputs are fresh per
test (gradients, in-place `requires_grad_`) and seeded (no global RNG). The checks:

  reference       forward against the float64 reference (semcorr_ext.reference), in float32 and float64
  grad_reference  float64 vector-Jacobian product against the reference's autograd
  gradcheck       torch.autograd.gradcheck; rows with `double_backward` also gradgradcheck, the others must raise
                  a "double backward" error
  opcheck         torch.library.opcheck of the registered op
  compile         torch.compile(fullgraph=True) against eager, outputs and (inputs requiring grad) gradients
  empty           zero-sized inputs: output shapes, gradients of the input's shape (zero when the output is empty)
  bad_input       the error, whose message names the offending argument
  emu             the emulated CUDA kernel (semcorr_ext._emu) against the CPU kernel, forward and backward
  emu_empty       the emulated kernel on zero-sized inputs, equal to the CPU kernel
  emu_bad_input   the emulated kernel's errors
"""
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

F32, F64 = torch.float32, torch.float64


@dataclass
class Case:
    id: str
    make: Callable                 # make() -> tuple of inputs; reference cases: make(dtype)
    fn: Callable = None            # the op under test, fn(*inputs); emu cases: fn(O, *inputs), O = emulator or CPU
    ref: Callable = None           # reference(*inputs) (reference / grad_reference); empty cases: outputs must equal it
    tol: tuple = (1e-5, 1e-6)      # (rtol, atol) of floating outputs; None: bitwise equal
    tol64: tuple = "tol"           # float64 (rtol, atol) of reference cases; "tol": the same as `tol`
    rel_atol: bool = False         # atol times max(1, |expected|.max()) (sums of many products)
    check: Callable = None         # op-specific assertions check(outputs, inputs)
    match: str = None              # bad input: regex the error message must match
    error: type = RuntimeError     # bad input: the exception type
    opts: dict = field(default_factory=dict)  # gradcheck / opcheck / compile kwargs
    xfail: str = None              # a known bug (strict xfail: the test fails once the bug is fixed, to drop this)


@dataclass
class OpRow:
    name: str
    dtypes: tuple = (F32, F64)     # reference dtypes; (None,) for integer-only ops
    double_backward: bool = False  # supports double backward (gradgradcheck); otherwise it must raise
    reference: list = field(default_factory=list)
    grad_reference: list = field(default_factory=list)
    gradcheck: list = field(default_factory=list)
    opcheck: list = field(default_factory=list)
    compile: list = field(default_factory=list)
    empty: list = field(default_factory=list)
    bad_input: list = field(default_factory=list)
    emu: list = field(default_factory=list)
    emu_empty: list = field(default_factory=list)
    emu_bad_input: list = field(default_factory=list)


class CpuOps:
    """The CPU kernels under the emulator's names: `x_backward` is the registered `_x_backward`."""

    def __getattr__(self, name):
        return getattr(torch.ops.semcorr, "_" + name if name.endswith("_backward") else name)


CPU = CpuOps()


# ---- inputs -----------------------------------------------------------------------------------------------------
def gen(seed):
    return torch.Generator().manual_seed(seed)


def rnd(*shape, dtype=F64, seed=0):
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


def f64(*ts):
    """Floating tensors promoted to float64 (the reference's precision), others unchanged."""
    out = tuple(t.double() if isinstance(t, torch.Tensor) and t.is_floating_point() else t for t in ts)
    return out if len(out) > 1 else out[0]


def grad_(*ts):
    return tuple(t.requires_grad_() for t in ts)


def as_tuple(o):
    return tuple(o) if isinstance(o, (tuple, list)) else (o,)


def dense_coords(B, *dims):
    grids = torch.meshgrid(torch.arange(B), *[torch.arange(d) for d in dims], indexing="ij")
    return torch.stack(grids, -1).reshape(-1, 5)


def sparse_coords(B, dims, n, seed=0, dtype=torch.int64):
    """n distinct random points per batch inside dims (shuffled row order)."""
    g = gen(seed)
    full = dense_coords(1, *dims)[:, 1:]
    rows = []
    for b in range(B):
        pick = full[torch.randperm(full.shape[0], generator=g)[:n]]
        rows.append(torch.cat([torch.full((pick.shape[0], 1), b), pick], 1))
    c = torch.cat(rows)
    return c[torch.randperm(c.shape[0], generator=g)].to(dtype)


def grid_pairs(B, Hs, Ws, N, Ht, Wt, seed=0, spill=0):
    """(B, Hs, Ws, N, 2) random target positions (rows, cols), up to `spill` cells outside the grid: PatchMatch
    matches and gather_windows4d candidates."""
    g = gen(seed)
    r = torch.randint(-spill, Ht + spill, (B, Hs, Ws, N, 1), generator=g)
    c = torch.randint(-spill, Wt + spill, (B, Hs, Ws, N, 1), generator=g)
    return torch.cat([r, c], -1)


def points(M, shape, seed=0, spill=3):
    """M random (b, i, j, u, v), up to `spill` cells outside the volume in every coordinate (b by 1)."""
    g = gen(seed)
    cols = [torch.randint(-1, shape[0] + 1, (M,), generator=g)]
    cols += [torch.randint(-spill, n + spill, (M,), generator=g) for n in shape[1:]]
    return torch.stack(cols, 1)


def hough_inputs(B, Ns, Nt, src_wh=(50.0, 40.0), tgt_wh=(60.0, 30.0), dtype=F32, cdtype=F32, seed=0):
    """hough_match's (app, src_centers, tgt_centers): cubed uniform appearance, centres inside the images."""
    g = gen(seed)
    app = torch.rand(B, Ns, Nt, generator=g, dtype=F64).pow(3).to(dtype)
    sc = (torch.rand(B, Ns, 2, generator=g, dtype=F64) * torch.tensor(src_wh, dtype=F64)).to(cdtype)
    tc = (torch.rand(B, Nt, 2, generator=g, dtype=F64) * torch.tensor(tgt_wh, dtype=F64)).to(cdtype)
    return app, sc, tc


def vote_inputs(B, Ns, Nt, nbins, dtype=F32, seed=0, p_none=0.2):
    """hough_vote's (app, bins): about `p_none` of the matches vote for no bin (-1)."""
    g = gen(seed)
    total = 1
    for n in nbins:
        total *= n
    app = torch.rand(B, Ns, Nt, generator=g, dtype=F64).to(dtype)
    bins = torch.randint(0, total, (B, Ns, Nt), generator=g)
    bins[torch.rand(B, Ns, Nt, generator=g) < p_none] = -1
    return app, bins


# ---- helpers the family tables share -----------------------------------------------------------------------
def kw_id(kw):
    return "-".join(f"{k}={v}" for k, v in kw.items()) or "default"


def shape_id(*shapes):
    return "_".join("x".join(map(str, s)) for s in shapes)


def out_shapes(*fns):
    """An empty-case check: output k has the shape fns[k](*inputs)."""
    def check(outs, inputs):
        for k, (o, f) in enumerate(zip(outs, fns)):
            assert tuple(o.shape) == tuple(f(*inputs)), f"output {k}: {tuple(o.shape)} != {tuple(f(*inputs))}"
    return check


def bad(id, make, fn, match, error=RuntimeError):
    return Case(id, make, fn, match=match, error=error)


def pair(s_shape, t_shape, dtype=F32):
    return rnd(*s_shape, dtype=dtype), rnd(*t_shape, dtype=dtype, seed=1)
