// semcorr_ext._emu self-test launchers: the kernels of csrc/emu/selftest_kernel.cuh run on the host emulator
// (csrc/common/simt.h) for tests/test_emu_simt.py. Inputs are contiguous CPU tensors; results are new tensors.
#include "emu/emu_registry.h"
// The kernels (and simt.h) last: simt.h defines CUDA's `__`-names.
#include "emu/selftest_kernel.cuh"

#include <array>
#include <cstring>
#include <tuple>

namespace {
namespace st = semcorr::emu_selftest;

void check_cpu(const at::Tensor& t, const char* fn, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous(), fn, ": `", name,
              "` must be a contiguous CPU tensor, got device ", t.device(), ", strides ", t.strides());
}
void check_threads(int64_t threads, const char* fn) {
  TORCH_CHECK(threads > 0 && threads <= 1024 && threads % 32 == 0, fn,
              ": `threads` must be a multiple of 32 in [32, 1024], got ", threads);
}

at::Tensor matmul_tiled(const at::Tensor& a, const at::Tensor& b) {
  check_cpu(a, "matmul_tiled", "a");
  check_cpu(b, "matmul_tiled", "b");
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0) && a.scalar_type() == b.scalar_type(),
              "matmul_tiled: expected (M, K) @ (K, N) of one dtype, got ", a.sizes(), " ", a.scalar_type(), " and ",
              b.sizes(), " ", b.scalar_type());
  const int M = a.size(0), K = a.size(1), N = b.size(1);
  auto c = at::full({M, N}, -1.0, a.options());  // -1: entries the kernel misses stay visible
  if (a.scalar_type() == at::kFloat) {
    st::launch_matmul_tiled(a.data_ptr<float>(), b.data_ptr<float>(), c.data_ptr<float>(), M, K, N, nullptr);
  } else {
    TORCH_CHECK(a.scalar_type() == at::kDouble, "matmul_tiled: float32 or float64 expected, got ", a.scalar_type());
    st::launch_matmul_tiled(a.data_ptr<double>(), b.data_ptr<double>(), c.data_ptr<double>(), M, K, N, nullptr);
  }
  return c;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> row_sum_argmax(const at::Tensor& x, int64_t threads) {
  check_cpu(x, "row_sum_argmax", "x");
  check_threads(threads, "row_sum_argmax");
  TORCH_CHECK(x.dim() == 2, "row_sum_argmax: `x` must be 2-D (rows, cols), got ", x.sizes());
  const int rows = x.size(0), cols = x.size(1);
  auto sums = at::full({rows}, -7.0, x.options());
  auto maxs = at::full({rows}, -7.0, x.options());
  auto idx = at::full({rows}, -7, x.options().dtype(at::kLong));
  if (x.scalar_type() == at::kFloat) {
    st::launch_row_sum_argmax(x.data_ptr<float>(), rows, cols, sums.data_ptr<float>(), maxs.data_ptr<float>(),
                              idx.data_ptr<int64_t>(), threads, nullptr);
  } else {
    TORCH_CHECK(x.scalar_type() == at::kDouble, "row_sum_argmax: float32 or float64 expected, got ", x.scalar_type());
    st::launch_row_sum_argmax(x.data_ptr<double>(), rows, cols, sums.data_ptr<double>(), maxs.data_ptr<double>(),
                              idx.data_ptr<int64_t>(), threads, nullptr);
  }
  return {sums, maxs, idx};
}

std::tuple<at::Tensor, at::Tensor> histogram(const at::Tensor& bins, const at::Tensor& weights, int64_t nbins,
                                             int64_t blocks, int64_t threads) {
  check_cpu(bins, "histogram", "bins");
  check_cpu(weights, "histogram", "weights");
  TORCH_CHECK(bins.scalar_type() == at::kInt && bins.dim() == 1 && weights.sizes() == bins.sizes(),
              "histogram: `bins` must be 1-D int32 and `weights` of the same shape");
  const int n = bins.numel();
  auto counts = at::zeros({nbins}, bins.options());
  auto wsums = at::zeros({nbins}, weights.options());
  if (weights.scalar_type() == at::kFloat) {
    st::launch_histogram(bins.data_ptr<int>(), weights.data_ptr<float>(), n, nbins, counts.data_ptr<int>(),
                         wsums.data_ptr<float>(), blocks, threads, nullptr);
  } else {
    TORCH_CHECK(weights.scalar_type() == at::kDouble, "histogram: float32 or float64 weights expected");
    st::launch_histogram(bins.data_ptr<int>(), weights.data_ptr<double>(), n, nbins, counts.data_ptr<int>(),
                         wsums.data_ptr<double>(), blocks, threads, nullptr);
  }
  return {counts, wsums};
}

pybind11::dict atomic_vote(const at::Tensor& v, int64_t blocks, int64_t threads) {
  check_cpu(v, "atomic_vote", "v");
  TORCH_CHECK(v.scalar_type() == at::kInt && v.dim() == 1, "atomic_vote: `v` must be 1-D int32");
  st::AtomicVoteOut out{};
  out.max_v = INT_MIN;
  out.min_v = INT_MAX;
  st::launch_atomic_vote(v.data_ptr<int>(), v.numel(), &out, blocks, threads, nullptr);
  pybind11::dict d;
  d["max"] = out.max_v;
  d["min"] = out.min_v;
  d["sum"] = out.sum;
  d["ballot_pos"] = out.ballot_pos;
  d["count_pos"] = out.count_pos;
  d["any_warps"] = out.any_warps;
  d["all_warps"] = out.all_warps;
  d["cas_count"] = out.cas_count;
  return d;
}

at::Tensor shfl_variants(const at::Tensor& x, int64_t threads) {
  check_cpu(x, "shfl_variants", "x");
  check_threads(threads, "shfl_variants");
  TORCH_CHECK(x.dim() == 1 && x.numel() % threads == 0, "shfl_variants: numel must be a multiple of `threads`");
  auto y = at::empty({x.numel(), 4}, x.options());
  const int blocks = x.numel() / threads;
  if (x.scalar_type() == at::kInt) {
    st::launch_shfl_variants(x.data_ptr<int>(), y.data_ptr<int>(), blocks, threads, nullptr);
  } else {
    TORCH_CHECK(x.scalar_type() == at::kDouble, "shfl_variants: int32 or float64 expected");
    st::launch_shfl_variants(x.data_ptr<double>(), y.data_ptr<double>(), blocks, threads, nullptr);
  }
  return y;
}

at::Tensor neighbour_sum(const at::Tensor& x, bool with_barrier, int64_t threads) {
  check_cpu(x, "neighbour_sum", "x");
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.dim() == 1, "neighbour_sum: `x` must be 1-D float32");
  auto y = at::empty_like(x);
  st::launch_neighbour_sum(x.data_ptr<float>(), y.data_ptr<float>(), x.numel(), with_barrier, threads, nullptr);
  return y;
}

at::Tensor dynamic_smem_poison(const at::Tensor& x, int64_t threads) {
  check_cpu(x, "dynamic_smem_poison", "x");
  TORCH_CHECK(x.dim() == 1, "dynamic_smem_poison: `x` must be 1-D");
  auto y = at::empty_like(x);
  if (x.scalar_type() == at::kFloat) {
    st::launch_dynamic_smem_poison(x.data_ptr<float>(), y.data_ptr<float>(), x.numel(), threads, nullptr);
  } else if (x.scalar_type() == at::kDouble) {
    st::launch_dynamic_smem_poison(x.data_ptr<double>(), y.data_ptr<double>(), x.numel(), threads, nullptr);
  } else {
    TORCH_CHECK(x.scalar_type() == at::kInt, "dynamic_smem_poison: float32, float64 or int32 expected");
    st::launch_dynamic_smem_poison(x.data_ptr<int>(), y.data_ptr<int>(), x.numel(), threads, nullptr);
  }
  return y;
}

at::Tensor shfl_inactive_lane(const at::Tensor& x, int64_t threads) {
  check_cpu(x, "shfl_inactive_lane", "x");
  check_threads(threads, "shfl_inactive_lane");
  TORCH_CHECK(x.dim() == 1 && x.numel() % threads == 0, "shfl_inactive_lane: numel must be a multiple of `threads`");
  auto y = at::empty_like(x);
  const int blocks = x.numel() / threads;
  if (x.scalar_type() == at::kFloat) {
    st::launch_shfl_inactive_lane(x.data_ptr<float>(), y.data_ptr<float>(), blocks, threads, nullptr);
  } else {
    TORCH_CHECK(x.scalar_type() == at::kInt, "shfl_inactive_lane: float32 or int32 expected");
    st::launch_shfl_inactive_lane(x.data_ptr<int>(), y.data_ptr<int>(), blocks, threads, nullptr);
  }
  return y;
}

// Kernels that must fail: they return their output only if the emulator (wrongly) lets them finish.
at::Tensor buggy(const std::string& which, int64_t threads) {
  auto y = at::zeros({threads}, at::kFloat);
  float* p = y.data_ptr<float>();
  if (which == "divergent_barrier") st::launch_divergent_barrier(p, threads, nullptr);
  else if (which == "early_exit_barrier") st::launch_early_exit_barrier(p, threads, nullptr);
  else if (which == "shfl_exited_lane") st::launch_shfl_exited_lane(p, threads, nullptr);
  else if (which == "shfl_barrier_deadlock") st::launch_shfl_barrier_deadlock(p, threads, nullptr);
  else if (which == "throwing") st::launch_throwing(p, threads, nullptr);
  else if (which == "smem_oob_read") st::launch_smem_oob_read(p, threads, nullptr);  // only a sanitizer sees it
  else TORCH_CHECK(false, "buggy: unknown kernel \"", which, "\"");
  return y;
}

std::tuple<at::Tensor, int64_t> coverage(std::array<int64_t, 3> grid, std::array<int64_t, 3> block, int64_t smem) {
  // Sized only for valid configurations; invalid ones must fail in the launch before touching memory.
  const int64_t nb = grid[0] * grid[1] * grid[2], nt = block[0] * block[1] * block[2];
  const bool valid = nb > 0 && nt > 0 && nt <= 1024 && nb <= (1 << 20);
  auto hits = at::zeros({valid ? nb * nt : 1}, at::kInt);
  int bad = 0;
  st::launch_coverage(hits.data_ptr<int>(), &bad, dim3(grid[0], grid[1], grid[2]), dim3(block[0], block[1], block[2]),
                      smem, nullptr);
  return {hits, bad};
}

}  // namespace

SC_EMU_BINDINGS(selftest) {
  namespace py = pybind11;
  m.def("selftest_matmul_tiled", &matmul_tiled, py::arg("a"), py::arg("b"),
        "a @ b by the 16x16-tiled shared-memory kernel (k summed in increasing order).");
  m.def("selftest_row_sum_argmax", &row_sum_argmax, py::arg("x"), py::arg("threads"),
        "(sum, max, argmax) of each row of x by warp-shuffle + shared-memory block reductions.");
  m.def("selftest_histogram", &histogram, py::arg("bins"), py::arg("weights"), py::arg("nbins"), py::arg("blocks"),
        py::arg("threads"), "(counts, weight sums) per bin by shared + global atomicAdd.");
  m.def("selftest_atomic_vote", &atomic_vote, py::arg("v"), py::arg("blocks"), py::arg("threads"),
        "atomicMax/Min/CAS, unsigned long long atomicAdd, __ballot/__any/__all_sync and __syncthreads_count.");
  m.def("selftest_shfl_variants", &shfl_variants, py::arg("x"), py::arg("threads"),
        "(n, 4): __shfl_up_sync(3, width 8), __shfl_down_sync(5, width 16), __shfl_xor_sync(6), "
        "__shfl_sync(lane*7+1, width 16) of x.");
  m.def("selftest_neighbour_sum", &neighbour_sum, py::arg("x"), py::arg("with_barrier"), py::arg("threads"),
        "y[i] = x[i] + x[block start + (t+1) % threads] through shared memory; without the barrier it races.");
  m.def("selftest_dynamic_smem_poison", &dynamic_smem_poison, py::arg("x"), py::arg("threads"),
        "y = x at even thread slots, the unwritten (poisoned) dynamic shared memory at odd ones.");
  m.def("selftest_shfl_inactive_lane", &shfl_inactive_lane, py::arg("x"), py::arg("threads"),
        "Lanes 0-15 shuffle down by 8 with mask 0xffff: lanes 8-15 read lanes outside the mask.");
  m.def("selftest_buggy", &buggy, py::arg("which"), py::arg("threads"),
        "Launch a kernel the emulator must reject: divergent_barrier, early_exit_barrier, shfl_exited_lane, "
        "shfl_barrier_deadlock, throwing; and smem_oob_read, which only AddressSanitizer catches (make sanitize).");
  m.def("selftest_coverage", &coverage, py::arg("grid"), py::arg("block"), py::arg("smem") = 0,
        "(hits, bad): run count of every (linear block, linear thread) and count of inconsistent built-ins.");
}
