// Host-side pieces of corr4d shared by the CPU, CUDA and emulated backends: argument checks and the
// GEMM half of the backward (ATen bmm, i.e. MKL/OpenBLAS on CPU and cuBLAS on GPU).
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/baddbmm.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/zeros.h>

#include <vector>

#include "common/checks.h"

namespace semcorr {
namespace corr4d_host {

inline void check_args(const at::Tensor& src, const at::Tensor& tgt, bool relu, double power, double eps,
                       bool allow_half) {
  constexpr const char* op = "semcorr::corr4d";
  check_feature_maps(src, tgt, op, allow_half);
  TORCH_CHECK(power == 1.0 || relu, op, ": `power` != 1 requires `relu=True` (negative correlations have no "
              "real power), got power=", power);
  TORCH_CHECK(power > 0.0, op, ": `power` must be > 0, got ", power);
  TORCH_CHECK(eps >= 0.0, op, ": `eps` must be >= 0, got ", eps);
}

inline void check_backward_args(const at::Tensor& grad, const at::Tensor& src, const at::Tensor& tgt,
                                const at::Tensor& out) {
  constexpr const char* op = "semcorr::_corr4d_backward";
  const std::vector<int64_t> shape{src.size(0), src.size(2), src.size(3), tgt.size(2), tgt.size(3)};
  TORCH_CHECK(grad.sizes() == shape, op, ": `grad` must have shape ", c10::IntArrayRef(shape), ", got ",
              shape_str(grad));
  TORCH_CHECK(out.sizes() == shape, op, ": `out` must have shape ", c10::IntArrayRef(shape), ", got ",
              shape_str(out));
  check_output_dtype(grad, src, op, "grad", "src");
  check_output_dtype(out, src, op, "out", "src");
  check_same_device(grad, src, op, "grad", "src");
  check_same_device(out, src, op, "out", "src");
}

inline at::Tensor empty_output(const at::Tensor& src, const at::Tensor& tgt) {
  return at::zeros({src.size(0), src.size(2), src.size(3), tgt.size(2), tgt.size(3)}, src.options());
}

// Given dp = dL/d(raw dot product) (B, Ns, Nt) and, when normalising, the inverse norms and
// rowsum[b,s] = sum_t dL/dS * S (colsum likewise over s), returns (grad_src, grad_tgt) shaped like the
// inputs:
//   grad_src = tgt @ dp^T - src * inv_s^2 * rowsum      (the second term is the gradient through the norm)
//   grad_tgt = src @ dp   - tgt * inv_t^2 * colsum
inline std::tuple<at::Tensor, at::Tensor> finish_backward(const at::Tensor& src3, const at::Tensor& tgt3,
                                                          const at::Tensor& dp, bool normalize,
                                                          const at::Tensor& inv_s, const at::Tensor& inv_t,
                                                          const at::Tensor& rowsum, const at::Tensor& colsum) {
  at::Tensor grad_src, grad_tgt;
  if (normalize) {
    const auto ks = inv_s.mul(inv_s).mul(rowsum).neg().to(src3.scalar_type()).unsqueeze(1);
    const auto kt = inv_t.mul(inv_t).mul(colsum).neg().to(src3.scalar_type()).unsqueeze(1);
    grad_src = at::baddbmm(src3.mul(ks), tgt3, dp.transpose(1, 2));
    grad_tgt = at::baddbmm(tgt3.mul(kt), src3, dp);
  } else {
    grad_src = at::bmm(tgt3, dp.transpose(1, 2));
    grad_tgt = at::bmm(src3, dp);
  }
  return {grad_src, grad_tgt};
}

}  // namespace corr4d_host
}  // namespace semcorr
