"""The emulated warp-level MMA (csrc/common/mma.cuh) against a float64 matmul of the rounded operands.

One m16n8 multiply-accumulate per warp (m16n8k8 .tf32, m16n8k16 .f16 / .bf16), fragments built by the same
mma_load_a / mma_load_b the kernels use, so a wrong PTX fragment layout fails here. Semantics checked: tf32
operands use only their top 19 bits (the low 13 are ignored, not rounded), f16/bf16 values are exact, products
are exact in float32, accumulation is float32. Bounds: integer-valued operands make every product and partial sum
exact, so those results must be bit-equal to the float64 matmul; otherwise the k + 1 float32 additions onto c
are off by at most (k + 1) * 2^-24 * (|c| + sum_k |a b|)."""
import pytest
import torch

pytestmark = pytest.mark.emu

K = {"tf32": 8, "f16": 16, "bf16": 16}
DTYPE = {"f16": torch.float16, "bf16": torch.bfloat16}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def operands(kind, a, b):
    """(bits of a, bits of b, float64 value the instruction must see for a, b). tf32: the float bits as given,
    valued with the low 13 bits cleared; f16/bf16: a and b rounded to the type, 16 bits zero-extended."""
    if kind == "tf32":
        a, b = a.float(), b.float()
        ab, bb = a.view(torch.int32), b.view(torch.int32)
        trunc = lambda bits: (bits & ~0x1FFF).view(torch.float32).double()  # noqa: E731
        return ab.contiguous(), bb.contiguous(), trunc(ab), trunc(bb)
    a, b = a.to(DTYPE[kind]), b.to(DTYPE[kind])
    bits = lambda x: (x.view(torch.int16).to(torch.int32) & 0xFFFF).contiguous()  # noqa: E731
    return bits(a), bits(b), a.double(), b.double()


def run(emu, kind, a, b, c, threads=None):
    ab, bb, av, bv = operands(kind, a, b)
    d = emu.selftest_mma(kind, ab, bb, c.float().contiguous(), threads or 32 * a.shape[0])
    return d, av @ bv + c.double(), av.abs() @ bv.abs() + c.double().abs()


@pytest.mark.parametrize("kind", ["tf32", "f16", "bf16"])
def test_mma_selftest_integer_operands_are_exact(emu, kind):
    # |values| <= 8: products and all partial sums are small integers, exact in every format -> bit-equal.
    # A layout mistake (wrong row, k or column of any register) changes some entry.
    k = K[kind]
    a = torch.randint(-8, 9, (3, 16, k), generator=gen(0)).float()
    b = torch.randint(-8, 9, (3, k, 8), generator=gen(1)).float()
    c = torch.randint(-50, 51, (3, 16, 8), generator=gen(2)).float()
    d, ref, _ = run(emu, kind, a, b, c)
    assert torch.equal(d.double(), ref)


@pytest.mark.parametrize("kind", ["tf32", "f16", "bf16"])
def test_mma_selftest_random_operands_within_float32_accumulation_bound(emu, kind):
    k = K[kind]
    a = torch.randn(4, 16, k, generator=gen(3)) * 3
    b = torch.randn(4, k, 8, generator=gen(4))
    c = torch.randn(4, 16, 8, generator=gen(5)) * 10
    d, ref, mag = run(emu, kind, a, b, c)
    bound = (k + 1) * 2.0**-24 * mag
    assert ((d.double() - ref).abs() <= bound).all()


def test_mma_selftest_tf32_ignores_the_low_13_bits(emu):
    # The hardware reads only the tf32 bits of each register: operands that differ only in the low 13 bits give
    # bit-identical results, and the result differs from the float32 product of the untruncated values.
    a = torch.randn(2, 16, 8, generator=gen(6))
    b = torch.randn(2, 8, 8, generator=gen(7))
    c = torch.zeros(2, 16, 8)
    clear = lambda x: (x.view(torch.int32) & ~0x1FFF).view(torch.float32)  # noqa: E731
    d1, _, _ = run(emu, "tf32", a, b, c)
    d2, _, _ = run(emu, "tf32", clear(a), clear(b), c)
    assert torch.equal(d1, d2)
    exact = a.double() @ b.double()
    assert (d1.double() - exact).abs().max() > 1e-4  # random mantissas: truncation is visible


@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_mma_selftest_half_special_values(emu, kind):
    # subnormals, the largest finite value, signed zeros, and infinities through the 16-bit decoding
    dt = DTYPE[kind]
    fi = torch.finfo(dt)
    big = fi.max if kind == "f16" else 2.0**120  # bf16's max twice in a row would overflow float32 itself
    vals = torch.tensor([fi.tiny / 4, -fi.tiny / 8, big, -0.0, 0.0, 1.0, -2.5, fi.smallest_normal], dtype=dt)
    a = vals.repeat(16 * 16 // 8)[: 16 * 16].view(1, 16, 16).float()
    b = torch.zeros(1, 16, 8)
    b[0, :, 0] = 1.0  # column 0 sums a row of a; other columns multiply by 0
    b[0, 2, 1] = 2.0 ** -10  # column 1 picks one element, scaled (fi.max * 2^-10 stays finite)
    d, ref, mag = run(emu, kind, a, b, torch.zeros(1, 16, 8))
    bound = 17 * 2.0**-24 * mag
    assert ((d.double() - ref).abs() <= bound).all()
    inf = torch.tensor([float("inf")] * 16, dtype=dt).view(1, 16, 1).float()
    a2 = torch.cat([inf, torch.ones(1, 16, 15)], dim=2)
    d2, _, _ = run(emu, kind, a2, torch.ones(1, 16, 8), torch.zeros(1, 16, 8))
    assert torch.isinf(d2).all() and (d2 > 0).all()


def test_mma_selftest_partial_warp_is_an_error(emu):
    a, b, c = torch.zeros(2, 16, 8), torch.zeros(2, 8, 8), torch.zeros(2, 16, 8)
    with pytest.raises(RuntimeError, match="needs all 32 lanes"):
        run(emu, "tf32", a, b, c, threads=48)


def test_mma_count(emu):
    a, b, c = torch.ones(3, 16, 16), torch.ones(3, 16, 8), torch.zeros(3, 16, 8)
    emu.reset_mma_count()
    run(emu, "bf16", a, b, c)
    assert emu.mma_count() == 3  # one per warp, not per lane
