// semcorr_ext._emu.selftest_mma: the warp-MMA self-test kernel (csrc/emu/mma_selftest_kernel.cuh) on the host
// emulator, for tests/test_emu_mma.py.
#include "emu/emu_registry.h"
// The kernel (and simt.h) last: simt.h defines CUDA's `__`-names.
#include "emu/mma_selftest_kernel.cuh"

#include <string>

namespace {
namespace st = semcorr::emu_selftest;
using semcorr::MmaKind;

// a (W, 16, k), b (W, k, 8) int32 operand bits; c (W, 16, 8) float32 -> d (W, 16, 8) float32.
at::Tensor selftest_mma(const std::string& kind, const at::Tensor& a, const at::Tensor& b, const at::Tensor& c,
                        int64_t threads) {
  const int K = kind == "tf32" ? 8 : 16;
  TORCH_CHECK(kind == "tf32" || kind == "f16" || kind == "bf16",
              "selftest_mma: `kind` must be \"tf32\", \"f16\" or \"bf16\", got \"", kind, "\"");
  TORCH_CHECK(a.dim() == 3 && a.size(1) == 16 && a.size(2) == K && a.scalar_type() == at::kInt && a.is_contiguous(),
              "selftest_mma: `a` must be contiguous int32 (W, 16, ", K, "), got ", a.sizes(), " ", a.scalar_type());
  const int64_t W = a.size(0);
  TORCH_CHECK(b.sizes() == at::IntArrayRef({W, K, 8}) && b.scalar_type() == at::kInt && b.is_contiguous(),
              "selftest_mma: `b` must be contiguous int32 (", W, ", ", K, ", 8), got ", b.sizes(), " ",
              b.scalar_type());
  TORCH_CHECK(c.sizes() == at::IntArrayRef({W, 16, 8}) && c.scalar_type() == at::kFloat && c.is_contiguous(),
              "selftest_mma: `c` must be contiguous float32 (", W, ", 16, 8), got ", c.sizes(), " ", c.scalar_type());
  TORCH_CHECK(threads > 0 && threads <= 32 * W, "selftest_mma: `threads` must be in [1, 32 * W], got ", threads);
  auto d = at::full({W, 16, 8}, -1.0, c.options());  // -1: entries the kernel misses stay visible
  const auto* pa = reinterpret_cast<const uint32_t*>(a.data_ptr<int>());
  const auto* pb = reinterpret_cast<const uint32_t*>(b.data_ptr<int>());
  if (kind == "tf32")
    st::launch_mma_selftest<MmaKind::tf32>(pa, pb, c.data_ptr<float>(), d.data_ptr<float>(), threads, nullptr);
  else if (kind == "f16")
    st::launch_mma_selftest<MmaKind::f16>(pa, pb, c.data_ptr<float>(), d.data_ptr<float>(), threads, nullptr);
  else
    st::launch_mma_selftest<MmaKind::bf16>(pa, pb, c.data_ptr<float>(), d.data_ptr<float>(), threads, nullptr);
  return d;
}

}  // namespace

SC_EMU_BINDINGS(mma_selftest) {
  m.def("selftest_mma", &selftest_mma, pybind11::arg("kind"), pybind11::arg("a"), pybind11::arg("b"),
        pybind11::arg("c"), pybind11::arg("threads"),
        "Per warp w: a[w] @ b[w] + c[w] by one emulated mma.sync m16n8k8 (kind \"tf32\") or m16n8k16 (\"f16\", "
        "\"bf16\"); a and b hold the operand bits (int32), fragments built by csrc/common/mma.cuh.");
}
