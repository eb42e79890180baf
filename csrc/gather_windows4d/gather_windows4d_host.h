// Argument checks of gather_windows4d shared by the CPU, CUDA and emulated backends.
#pragma once
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/argsort.h>
#include <ATen/ops/bincount.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/where.h>

#include <optional>
#include <tuple>
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

inline void check_corr_size(at::IntArrayRef corr_size, const char* op) {
  TORCH_CHECK(corr_size.size() == 5, op, ": `corr_size` must have 5 entries (B, Hs, Ws, Ht, Wt), got ", corr_size);
  for (auto s : corr_size) TORCH_CHECK(s >= 0, op, ": `corr_size` must be non-negative, got ", corr_size);
  checked_numel(corr_size, op, "corr_size");  // the gradient allocated with this shape
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

// The checks both backwards start with, in this order: corr_size, the index tensor `index` (candidates or points,
// by its own check), window, then grad's dtype and device.
inline void check_backward_common(const at::Tensor& grad, const at::Tensor& index, const char* index_name,
                                  void (*check_index)(const at::Tensor&, const char*), at::IntArrayRef corr_size,
                                  int64_t window, bool allow_half, const char* op) {
  check_corr_size(corr_size, op);
  check_index(index, op);
  check_window(window, op);
  check_float(grad, op, "grad", allow_half);
  check_same_device(grad, index, op, "grad", index_name);
}

inline void check_grad_shape(const at::Tensor& grad, const std::vector<int64_t>& expect, const char* op) {
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(expect), op, ": `grad` must have shape ", at::IntArrayRef(expect),
              ", got ", shape_str(grad));
}

inline gw::Dims check_backward_args(const at::Tensor& grad, const at::Tensor& candidates, at::IntArrayRef corr_size,
                                    int64_t window, bool allow_half) {
  constexpr const char* op = "semcorr::_gather_windows4d_backward";
  check_backward_common(grad, candidates, "candidates", &check_candidates, corr_size, window, allow_half, op);
  TORCH_CHECK(candidates.size(0) == corr_size[0] && candidates.size(1) == corr_size[1] &&
                  candidates.size(2) == corr_size[2],
              op, ": `candidates` must be (B, Hs, Ws, N, 2) with (B, Hs, Ws) of `corr_size` ", corr_size, ", got ",
              shape_str(candidates));
  const int64_t N = candidates.size(3);
  check_grad_shape(grad, {corr_size[0], corr_size[1], corr_size[2], N, window, window, window, window}, op);
  return dims(corr_size, candidates, window);
}

// ---- gather_windows4d_points

inline void check_points(const at::Tensor& points, const char* op) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) == 5, op,
              ": `points` must be a 2-D tensor (M, 5) of (b, i, j, u, v), got shape ", shape_str(points));
  TORCH_CHECK(points.scalar_type() == at::kLong, op, ": `points` must be int64, got ", points.scalar_type());
}

inline gw::Dims points_dims(at::IntArrayRef corr, const at::Tensor& points, int64_t window) {
  return {corr[0], corr[1], corr[2], corr[3], corr[4], points.size(0), window};
}

inline gw::Dims check_points_args(const at::Tensor& corr, const at::Tensor& points, int64_t window,
                                  bool allow_half) {
  constexpr const char* op = "semcorr::gather_windows4d_points";
  check_dim(corr, 5, op, "corr", "(B, Hs, Ws, Ht, Wt)");
  check_float(corr, op, "corr", allow_half);
  check_points(points, op);
  check_same_device(corr, points, op, "corr", "points");
  check_window(window, op);
  return points_dims(corr.sizes(), points, window);
}

inline gw::Dims check_points_backward_args(const at::Tensor& grad, const at::Tensor& points,
                                           at::IntArrayRef corr_size, int64_t window, bool allow_half) {
  constexpr const char* op = "semcorr::_gather_windows4d_points_backward";
  check_backward_common(grad, points, "points", &check_points, corr_size, window, allow_half, op);
  check_grad_shape(grad, {points.size(0), window, window, window, window}, op);
  return points_dims(corr_size, points, window);
}

// gather_windows4d_linear: weight (C, w, w, w, w) gives the window; bias (C) optional.
inline gw::Dims check_linear_args(const at::Tensor& corr, const at::Tensor& points, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, bool allow_half) {
  constexpr const char* op = "semcorr::gather_windows4d_linear";
  check_dim(corr, 5, op, "corr", "(B, Hs, Ws, Ht, Wt)");
  check_float(corr, op, "corr", allow_half);
  check_points(points, op);
  check_same_device(corr, points, op, "corr", "points");
  check_dim(weight, 5, op, "weight", "(C, w, w, w, w)");
  const int64_t w = weight.size(1);
  TORCH_CHECK(weight.size(2) == w && weight.size(3) == w && weight.size(4) == w, op,
              ": `weight` must be (C, w, w, w, w) with one window side w, got shape ", shape_str(weight));
  check_window(w, op);
  check_same_dtype(corr, weight, op, "corr", "weight");
  check_same_device(corr, weight, op, "corr", "weight");
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == weight.size(0), op, ": `bias` must be (C) = (",
                weight.size(0), "), got shape ", shape_str(*bias));
    check_same_dtype(corr, *bias, op, "corr", "bias");
    check_same_device(corr, *bias, op, "corr", "bias");
  }
  return points_dims(corr.sizes(), points, w);
}

// The points listed by window centre for gw::CsrWindows: (start, order) over the source grid padded by r (points
// whose window misses the volume are left out). ATen ops, so the same on every backend.
inline std::tuple<at::Tensor, at::Tensor> points_by_centre(const gw::Dims& d, const at::Tensor& points) {
  const int64_t r = d.r(), Hp = d.Hs + 2 * r, Wp = d.Ws + 2 * r, ncells = d.B * Hp * Wp;
  const auto b = points.select(1, 0), i = points.select(1, 1), j = points.select(1, 2);
  const auto reach = b.ge(0) & b.lt(d.B) & i.ge(-r) & i.lt(d.Hs + r) & j.ge(-r) & j.lt(d.Ws + r);
  auto cell = at::where(reach, (b * Hp + i + r) * Wp + j + r, ncells);  // the sentinel sorts last
  const auto order = at::argsort(cell, /*stable=*/true);
  const auto counts = at::bincount(cell, {}, ncells + 1);  // the last bin (the sentinel) is never read
  return {at::cumsum(counts, 0) - counts, order.contiguous()};
}

}  // namespace gather_windows4d_host
}  // namespace semcorr
