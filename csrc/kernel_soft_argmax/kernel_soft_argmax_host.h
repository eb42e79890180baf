// Argument checks of kernel_soft_argmax shared by the CPU, CUDA and emulated backends.
#pragma once
#include <ATen/core/Tensor.h>

#include <cmath>
#include <vector>

#include "common/checks.h"

namespace semcorr {
namespace kernel_soft_argmax_host {

struct Dims {
  int64_t B, Hs, Ws, Ht, Wt;
  int64_t rows() const { return B * Hs * Ws; }
  int64_t n() const { return Ht * Wt; }
};

inline Dims check_args(const at::Tensor& corr, double beta, double sigma, bool allow_half) {
  constexpr const char* op = "semcorr::kernel_soft_argmax";
  check_dim(corr, 5, op, "corr", "(B, Hs, Ws, Ht, Wt)");
  check_float(corr, op, "corr", allow_half);
  TORCH_CHECK(std::isfinite(beta) && beta >= 0.0, op, ": `beta` must be finite and >= 0, got ", beta);
  TORCH_CHECK(!std::isnan(sigma), op, ": `sigma` must be a number (<= 0 or None for no kernel), got ", sigma);
  const Dims d{corr.size(0), corr.size(1), corr.size(2), corr.size(3), corr.size(4)};
  TORCH_CHECK(d.rows() == 0 || d.n() > 0, op, ": the target grid (Ht, Wt) of `corr` must be non-empty when there are source "
              "positions (a soft-argmax over no targets is undefined), got shape ", shape_str(corr));
  return d;
}

inline void check_backward_args(const at::Tensor& grad, const at::Tensor& corr) {
  constexpr const char* op = "semcorr::_kernel_soft_argmax_backward";
  const std::vector<int64_t> shape{corr.size(0), corr.size(1), corr.size(2), 2};
  TORCH_CHECK(grad.sizes() == c10::IntArrayRef(shape), op, ": `grad` must have shape ", c10::IntArrayRef(shape),
              ", got ", shape_str(grad));
  check_same_dtype(grad, corr, op, "grad", "corr");
  check_same_device(grad, corr, op, "grad", "corr");
}

inline at::Tensor output_like(const at::Tensor& corr) {
  return at::empty({corr.size(0), corr.size(1), corr.size(2), 2}, corr.options());
}

}  // namespace kernel_soft_argmax_host
}  // namespace semcorr
