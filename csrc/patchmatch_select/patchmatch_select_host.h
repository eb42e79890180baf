// Argument checks of patchmatch_select (shared by the CPU, CUDA and emulated backends) and its backward, which is
// written with ATen ops and so runs on every device.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/lt.h>
#include <ATen/ops/scatter.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>

#include <tuple>

#include "common/checks.h"

namespace semcorr {
namespace patchmatch_select_host {

struct Dims {
  int64_t B, Hs, Ws, N, k;
};

inline Dims check_args(const at::Tensor& candidates, const at::Tensor& scores, const at::Tensor& valid, int64_t k,
                       bool allow_half) {
  constexpr const char* op = "semcorr::patchmatch_select";
  TORCH_CHECK(candidates.dim() == 5 && candidates.size(4) == 2, op,
              ": `candidates` must be a 5-D tensor (B, Hs, Ws, N, 2) of (row, col), got shape ",
              shape_str(candidates));
  TORCH_CHECK(candidates.scalar_type() == at::kLong, op, ": `candidates` must be int64, got ",
              candidates.scalar_type());
  check_float(scores, op, "scores", allow_half);
  const auto expect = candidates.sizes().slice(0, 4);
  TORCH_CHECK(scores.sizes() == expect, op, ": `scores` must have shape ", expect, " (B, Hs, Ws, N), got ",
              shape_str(scores));
  TORCH_CHECK(valid.scalar_type() == at::kBool, op, ": `valid` must be a bool tensor, got ", valid.scalar_type());
  TORCH_CHECK(valid.sizes() == expect, op, ": `valid` must have shape ", expect, " (B, Hs, Ws, N), got ",
              shape_str(valid));
  check_same_device(candidates, scores, op, "candidates", "scores");
  check_same_device(candidates, valid, op, "candidates", "valid");
  TORCH_CHECK(k >= 0, op, ": `k` must be >= 0, got ", k);
  checked_numel({candidates.size(0), candidates.size(1), candidates.size(2), k, 2}, op, "k");
  return {candidates.size(0), candidates.size(1), candidates.size(2), candidates.size(3), k};
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> empty_outputs(const Dims& d, const at::Tensor& candidates,
                                                                    const at::Tensor& scores) {
  return {at::empty({d.B, d.Hs, d.Ws, d.k, 2}, candidates.options()), at::empty({d.B, d.Hs, d.Ws, d.k}, scores.options()),
          at::empty({d.B, d.Hs, d.Ws, d.k}, candidates.options())};
}

// grad (B, Hs, Ws, k) -> (B, Hs, Ws, n): selected indices are distinct within a pixel; empty slots (-1) go to an
// extra column that is dropped.
inline at::Tensor select_backward(const at::Tensor& grad, const at::Tensor& indices, int64_t n) {
  constexpr const char* op = "semcorr::_patchmatch_select_backward";
  TORCH_CHECK(indices.dim() == 4 && indices.scalar_type() == at::kLong, op,
              ": `indices` must be a 4-D int64 tensor (B, Hs, Ws, k), got ", indices.scalar_type(), " ",
              shape_str(indices));
  TORCH_CHECK(grad.sizes() == indices.sizes(), op, ": `grad` must have the shape of `indices` ", shape_str(indices),
              ", got ", shape_str(grad));
  TORCH_CHECK(n >= 0, op, ": `n` must be >= 0, got ", n);
  check_same_device(grad, indices, op, "grad", "indices");
  TORCH_CHECK(n < kMaxAllocNumel, op, ": `n` = ", n, " candidates is more than an op allocates (2^31 - 2)");
  checked_numel({indices.size(0), indices.size(1), indices.size(2), n + 1}, op, "n");
  // Every index must name a candidate or the empty slot (-1); anything else would be dropped by the scatter
  // below (or fault on a GPU). One device sync: this is a backward, not a hot loop.
  if (indices.numel() > 0) {
    const auto [lo, hi] = at::aminmax(indices);
    const int64_t lo_v = lo.item<int64_t>(), hi_v = hi.item<int64_t>();
    TORCH_CHECK(lo_v >= -1 && hi_v < n, op, ": `indices` must lie in [-1, n) = [-1, ", n, ") (-1: empty slot), got "
                "values in [", lo_v, ", ", hi_v, "]");
  }
  auto full = at::zeros({indices.size(0), indices.size(1), indices.size(2), n + 1}, grad.options());
  const auto empty_slot = at::lt(indices, 0);
  const auto idx = at::where(empty_slot, n, indices);
  const auto g = at::where(empty_slot, at::zeros({}, grad.options()), grad);
  return full.scatter(3, idx, g).narrow(3, 0, n).contiguous();
}

}  // namespace patchmatch_select_host
}  // namespace semcorr
