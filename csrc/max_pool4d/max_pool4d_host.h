// Host-side pieces of max_pool4d shared by the CPU, CUDA and emulated backends: argument checks and shapes.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/amax.h>
#include <ATen/ops/amin.h>

#include <array>
#include <vector>

#include "common/checks.h"

namespace semcorr {
namespace max_pool4d_host {

struct Geometry {
  int64_t B = 0, C = 0;
  std::array<int64_t, 4> in{}, k{}, out{};
  int64_t out_numel() const { return B * C * out[0] * out[1] * out[2] * out[3]; }
  std::vector<int64_t> values_shape() const { return {B, C, out[0], out[1], out[2], out[3]}; }
  std::vector<int64_t> argmax_shape() const { return {B, 4 * C, out[0], out[1], out[2], out[3]}; }
  std::vector<int64_t> x_shape() const { return {B, C, in[0], in[1], in[2], in[3]}; }
};

inline Geometry geometry(at::IntArrayRef x_size, at::IntArrayRef kernel_size, const char* op) {
  TORCH_CHECK(kernel_size.size() == 4, op, ": `kernel_size` must have 4 entries (k1, k2, k3, k4), got ", kernel_size);
  TORCH_CHECK(x_size.size() == 6, op, ": `x` must be a 6-D tensor (B, C, H1, W1, H2, W2), got shape ", x_size);
  Geometry g;
  g.B = x_size[0], g.C = x_size[1];
  for (int d = 0; d < 4; ++d) {
    TORCH_CHECK(kernel_size[d] >= 1, op, ": `kernel_size` entries must be >= 1, got ", kernel_size);
    g.in[d] = x_size[2 + d], g.k[d] = kernel_size[d], g.out[d] = g.in[d] / g.k[d];
  }
  return g;
}

inline Geometry check_args(const at::Tensor& x, at::IntArrayRef kernel_size, bool allow_half) {
  constexpr const char* op = "semcorr::max_pool4d";
  check_dim(x, 6, op, "x", "(B, C, H1, W1, H2, W2)");
  check_float(x, op, "x", allow_half);
  return geometry(x.sizes(), kernel_size, op);
}

inline Geometry check_backward_args(const at::Tensor& grad, const at::Tensor& argmax, at::IntArrayRef x_size,
                                    at::IntArrayRef kernel_size, bool allow_half) {
  constexpr const char* op = "semcorr::_max_pool4d_backward";
  const auto g = geometry(x_size, kernel_size, op);
  checked_numel(x_size, op, "x_size");  // grad_x is allocated with this shape
  check_float(grad, op, "grad", allow_half);
  TORCH_CHECK(grad.sizes() == c10::IntArrayRef(g.values_shape()), op, ": `grad` must have shape ",
              c10::IntArrayRef(g.values_shape()), ", got ", shape_str(grad));
  TORCH_CHECK(argmax.sizes() == c10::IntArrayRef(g.argmax_shape()), op, ": `argmax` must have shape ",
              c10::IntArrayRef(g.argmax_shape()), ", got ", shape_str(argmax));
  TORCH_CHECK(argmax.scalar_type() == at::kLong, op, ": `argmax` must be int64, got ", argmax.scalar_type());
  check_same_device(grad, argmax, op, "grad", "argmax");
  return g;
}

// Rejects argmax offsets outside [0, k_d) (a corrupted or foreign argmax), as the CPU kernel does, instead of
// letting the CUDA kernel skip them: one min/max pass over the (non-empty, contiguous) argmax, a device sync.
inline void check_argmax_range(const at::Tensor& argmax, const Geometry& g,
                               const char* op = "semcorr::_max_pool4d_backward") {
  const auto per_dim = argmax.view({g.B, g.C, 4, -1});
  const auto lo = at::amin(per_dim, {0, 1, 3}).cpu(), hi = at::amax(per_dim, {0, 1, 3}).cpu();
  const int64_t* lp = lo.const_data_ptr<int64_t>();
  const int64_t* hp = hi.const_data_ptr<int64_t>();
  for (int d = 0; d < 4; ++d)
    TORCH_CHECK(lp[d] >= 0 && hp[d] < g.k[d], op, ": `argmax` offsets along dim ", d, " must be in [0, kernel_size) = "
                "[0, ", g.k[d], "), got values in [", lp[d], ", ", hp[d], "]");
}

}  // namespace max_pool4d_host
}  // namespace semcorr
