// Host-side pieces of conv4d shared by the CPU, CUDA and emulated backends: argument checks, output
// geometry and the weight transform of the input gradient.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/flip.h>
#include <ATen/ops/zeros.h>

#include <array>
#include <optional>

#include "common/checks.h"

namespace semcorr {
namespace conv4d_host {

// Sizes of one conv4d call. pad may be negative internally (the input gradient of a convolution whose
// padding exceeds k - 1 is a convolution that crops).
struct Geometry {
  int64_t B = 0, Cin = 0, Cout = 0;
  std::array<int64_t, 4> in{}, k{}, pad{}, out{};
  int64_t in_numel() const { return in[0] * in[1] * in[2] * in[3]; }
  int64_t out_numel() const { return out[0] * out[1] * out[2] * out[3]; }
  int64_t taps() const { return k[0] * k[1] * k[2] * k[3]; }
  std::vector<int64_t> out_shape() const { return {B, Cout, out[0], out[1], out[2], out[3]}; }
};

inline std::array<int64_t, 4> padding4(at::IntArrayRef padding, const char* op) {
  TORCH_CHECK(padding.size() == 4, op, ": `padding` must have 4 entries (p1, p2, p3, p4), got ", padding);
  return {padding[0], padding[1], padding[2], padding[3]};
}

inline Geometry geometry(const at::Tensor& x, const at::Tensor& weight, std::array<int64_t, 4> pad,
                         const char* op) {
  Geometry g;
  g.B = x.size(0);
  g.Cin = x.size(1);
  g.Cout = weight.size(0);
  const bool empty = x.numel() == 0 && g.Cin > 0;  // a zero-sized batch or spatial dim
  for (int d = 0; d < 4; ++d) {
    g.in[d] = x.size(2 + d);
    g.k[d] = weight.size(2 + d);
    g.pad[d] = pad[d];
    g.out[d] = g.in[d] + 2 * pad[d] - g.k[d] + 1;
    if (g.in[d] == 0) g.out[d] = 0;
    TORCH_CHECK(empty || g.out[d] >= 1, op, ": `x` dim ", 2 + d, " (size ", g.in[d], ") with padding ",
                pad[d], " is smaller than the `weight` kernel (size ", g.k[d], "): the output would be empty; x ",
                shape_str(x), ", weight ", shape_str(weight));
    if (g.out[d] < 0) g.out[d] = 0;
  }
  return g;
}

inline Geometry check_args(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                           at::IntArrayRef padding, bool allow_half, const char* op = "semcorr::conv4d") {
  check_operands(x, 6, "(B, Cin, H1, W1, H2, W2)", weight, 6, "(Cout, Cin, k1, k2, k3, k4)", op, "x", "weight",
                 allow_half);
  TORCH_CHECK(weight.size(1) == x.size(1), op, ": `weight` dim 1 (Cin) must equal `x` dim 1, got x ",
              shape_str(x), " and weight ", shape_str(weight));
  for (int d = 2; d < 6; ++d)
    TORCH_CHECK(weight.size(d) >= 1, op, ": `weight` kernel sizes must be >= 1, got weight ", shape_str(weight));
  const auto pad = padding4(padding, op);
  for (int d = 0; d < 4; ++d)
    TORCH_CHECK(pad[d] >= 0 && pad[d] < kMaxAllocNumel, op, ": `padding` must be >= 0 and < 2^31 - 1, got ", padding);
  if (bias.has_value() && bias->defined()) {
    check_dim(*bias, 1, op, "bias", "(Cout,)");
    TORCH_CHECK(bias->size(0) == weight.size(0), op, ": `bias` must have Cout = ", weight.size(0),
                " entries, got shape ", shape_str(*bias));
    check_same_dtype(x, *bias, op, "x", "bias");
    check_same_device(x, *bias, op, "x", "bias");
  }
  const auto g = geometry(x, weight, pad, op);
  checked_numel(g.out_shape(), op, "padding");  // the output grows with the padding
  return g;
}

inline Geometry check_backward_args(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& weight,
                                    at::IntArrayRef padding, bool allow_half) {
  constexpr const char* op = "semcorr::_conv4d_backward";
  const auto g = check_args(x, weight, std::nullopt, padding, allow_half, op);
  TORCH_CHECK(grad.sizes() == c10::IntArrayRef(g.out_shape()), op, ": `grad` must have shape ",
              c10::IntArrayRef(g.out_shape()), ", got ", shape_str(grad));
  check_output_dtype(grad, x, op, "grad", "x");
  check_same_device(x, grad, op, "x", "grad");
  return g;
}

// The forward's operands in the dtype of its output (`dtype`, from out_dtype_of): upcast to float32 for a float32
// out_dtype of float16/bfloat16 inputs (exact), else unchanged.
struct Operands {
  at::Tensor x, weight;
  std::optional<at::Tensor> bias;
};
inline Operands operands_in(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                            at::ScalarType dtype) {
  if (dtype == x.scalar_type()) return {x, weight, bias};
  const bool has_bias = bias.has_value() && bias->defined();
  return {x.to(dtype), weight.to(dtype), has_bias ? std::optional<at::Tensor>(bias->to(dtype)) : std::nullopt};
}

// The input gradient of conv4d(x, w, pad) is conv4d(grad, flip(w)^T, k - 1 - pad): this is the weight.
inline at::Tensor transposed_weight(const at::Tensor& weight) {
  return weight.flip({2, 3, 4, 5}).transpose(0, 1).contiguous();
}
inline std::array<int64_t, 4> transposed_padding(const Geometry& g) {
  return {g.k[0] - 1 - g.pad[0], g.k[1] - 1 - g.pad[1], g.k[2] - 1 - g.pad[2], g.k[3] - 1 - g.pad[3]};
}

}  // namespace conv4d_host
}  // namespace semcorr
