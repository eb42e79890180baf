// Argument checks of gather_windows4d shared by the CPU, CUDA and emulated backends.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "common/checks.h"
#include "gather_windows4d/gather_windows4d_math.h"

namespace semcorr {
namespace gather_windows4d_host {

inline void check_candidates(const at::Tensor& candidates, const char* op) {
  TORCH_CHECK(candidates.dim() == 5 && candidates.size(4) == 2, op,
              ": `candidates` must be a 5-D tensor (B, Hs, Ws, N, 2) of (row, col), got shape ",
              shape_str(candidates));
  TORCH_CHECK(candidates.scalar_type() == at::kLong, op, ": `candidates` must be int64, got ",
              candidates.scalar_type());
}

inline void check_window(int64_t window, const char* op) {
  TORCH_CHECK(window >= 1 && window % 2 == 1 && window <= 63, op, ": `window` must be odd and in [1, 63], got ",
              window);
}

inline gw::Dims dims(at::IntArrayRef corr, const at::Tensor& candidates, int64_t window) {
  return {corr[0], corr[1], corr[2], corr[3], corr[4], candidates.size(3), window};
}

inline gw::Dims check_args(const at::Tensor& corr, const at::Tensor& candidates, int64_t window, bool allow_half) {
  constexpr const char* op = "semcorr::gather_windows4d";
  check_dim(corr, 5, op, "corr", "(B, Hs, Ws, Ht, Wt)");
  check_float(corr, op, "corr", allow_half);
  check_candidates(candidates, op);
  check_same_device(corr, candidates, op, "corr", "candidates");
  TORCH_CHECK(candidates.size(0) == corr.size(0) && candidates.size(1) == corr.size(1) &&
                  candidates.size(2) == corr.size(2),
              op, ": `candidates` must be (B, Hs, Ws, N, 2) with (B, Hs, Ws) of `corr` ", shape_str(corr), ", got ",
              shape_str(candidates));
  check_window(window, op);
  return dims(corr.sizes(), candidates, window);
}

inline gw::Dims check_backward_args(const at::Tensor& grad, const at::Tensor& candidates, at::IntArrayRef corr_size,
                                    int64_t window, bool allow_half) {
  constexpr const char* op = "semcorr::_gather_windows4d_backward";
  TORCH_CHECK(corr_size.size() == 5, op, ": `corr_size` must have 5 entries (B, Hs, Ws, Ht, Wt), got ", corr_size);
  for (auto s : corr_size) TORCH_CHECK(s >= 0, op, ": `corr_size` must be non-negative, got ", corr_size);
  check_candidates(candidates, op);
  check_window(window, op);
  check_float(grad, op, "grad", allow_half);
  check_same_device(grad, candidates, op, "grad", "candidates");
  TORCH_CHECK(candidates.size(0) == corr_size[0] && candidates.size(1) == corr_size[1] &&
                  candidates.size(2) == corr_size[2],
              op, ": `candidates` must be (B, Hs, Ws, N, 2) with (B, Hs, Ws) of `corr_size` ", corr_size, ", got ",
              shape_str(candidates));
  const int64_t N = candidates.size(3);
  std::vector<int64_t> expect{corr_size[0], corr_size[1], corr_size[2], N, window, window, window, window};
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(expect), op, ": `grad` must have shape ", at::IntArrayRef(expect),
              ", got ", shape_str(grad));
  return dims(corr_size, candidates, window);
}

}  // namespace gather_windows4d_host
}  // namespace semcorr
