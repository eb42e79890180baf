// Argument checks of mutual_matching shared by the CPU, CUDA and emulated backends.
#pragma once
#include <ATen/core/Tensor.h>

#include "common/checks.h"

namespace semcorr {
namespace mutual_matching_host {

struct Dims {
  int64_t B, Ns, Nt;
};

inline Dims check_args(const at::Tensor& corr, double eps, bool allow_half) {
  constexpr const char* op = "semcorr::mutual_matching";
  TORCH_CHECK(corr.dim() == 5 || (corr.dim() == 6 && corr.size(1) == 1), op,
              ": `corr` must be (B, Hs, Ws, Ht, Wt) or (B, 1, Hs, Ws, Ht, Wt), got shape ", shape_str(corr));
  check_float(corr, op, "corr", allow_half);
  TORCH_CHECK(eps >= 0.0, op, ": `eps` must be >= 0, got ", eps);
  const int64_t o = corr.dim() - 4;
  return {corr.size(0), corr.size(o) * corr.size(o + 1), corr.size(o + 2) * corr.size(o + 3)};
}

inline void check_backward_args(const at::Tensor& grad, const at::Tensor& corr) {
  TORCH_CHECK(grad.sizes() == corr.sizes(), "semcorr::_mutual_matching_backward: `grad` must have the shape of "
              "`corr` ", shape_str(corr), ", got ", shape_str(grad));
  check_same_device(grad, corr, "semcorr::_mutual_matching_backward", "grad", "corr");
}

}  // namespace mutual_matching_host
}  // namespace semcorr
