// Launch sequences of conv4d's CUDA kernels, shared by the GPU host glue (conv4d_cuda.cu) and the host
// emulator (conv4d_emu.cpp), so tests exercise exactly what runs on a GPU. The entries at the end
// (conv4d, conv4d_backward) check the arguments; their callers set the device guard and pass the stream.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>

#include <algorithm>
#include <array>
#include <optional>

#include "common/launch.h"
#include "common/tensor_cores.h"
#include "conv4d/conv4d_host.h"
#include "conv4d/conv4d_kernel.cuh"
#include "conv4d/conv4d_tc_kernel.cuh"

// Kernels are launched through pointers: a template-id's comma would split the SC_LAUNCH macro.
namespace semcorr {
namespace conv4d_launch {

inline conv4d_kernels::Dims dims(const conv4d_host::Geometry& g) {
  conv4d_kernels::Dims d{};
  d.B = g.B, d.Cin = g.Cin, d.Cout = g.Cout;
  for (int i = 0; i < 4; ++i) d.in[i] = g.in[i], d.k[i] = g.k[i], d.pad[i] = g.pad[i], d.out[i] = g.out[i];
  return d;
}

// The tensor-core forward (scalar_t float for tf32, at::Half / at::BFloat16 otherwise); Cin > 0, out non-empty.
template <MmaKind kind, typename scalar_t>
inline void forward_tc(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, at::Tensor& out,
                       const conv4d_host::Geometry& g, cudaStream_t stream) {
  using namespace conv4d_kernels;
  const int fm = g.Cout <= 16 ? 1 : 2;
  const int64_t mtiles = ceil_div<int64_t>(g.Cout, 16 * fm);
  TORCH_CHECK(mtiles <= 65535, "semcorr::conv4d: too many output channels for CUDA, got ", g.Cout);
  const dim3 grid(ceil_div<int64_t>(g.out_numel(), kTcTN), mtiles, g.B);
  const scalar_t* bp = b.defined() ? b.const_data_ptr<scalar_t>() : nullptr;
  const auto kernel =
      fm == 1 ? &conv4d_forward_tc_kernel<kind, scalar_t, 1> : &conv4d_forward_tc_kernel<kind, scalar_t, 2>;
  SC_LAUNCH(kernel, grid, dim3(kTcThreads), 0, stream)(x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(),
                                                         bp, out.mutable_data_ptr<scalar_t>(), dims(g));
  SEMCORR_LAUNCH_CHECK();
}

// x (B, Cin, ...) and w (Cout, Cin, ...) contiguous, g from conv4d_host::geometry (pad may be negative);
// returns (B, Cout, out...). Tensor cores or SIMT as common/tensor_cores.h decides (TF32 for float32 follows
// torch.backends.cudnn.allow_tf32, as PyTorch's convolutions, unless `sw` says the inputs are exact in TF32).
inline at::Tensor forward(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& bias,
                          const conv4d_host::Geometry& g, cudaStream_t stream, Tf32Switch sw = Tf32Switch::conv) {
  auto out = at::empty(g.out_shape(), x.options());
  if (out.numel() == 0) return out;
  const bool has_bias = bias.has_value() && bias->defined();
  if (g.Cin == 0) {
    if (has_bias) out.copy_(bias->view({1, g.Cout, 1, 1, 1, 1}).expand_as(out));
    else out.zero_();
    return out;
  }
  TORCH_CHECK(g.B <= 65535, "semcorr::conv4d: batch size must be <= 65535 on CUDA, got ", g.B);
  using namespace conv4d_kernels;
  const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  if (launch_tensor_cores(x.scalar_type(), sw,
                          [&]<MmaKind kind, typename T>() { forward_tc<kind, T>(x, w, b, out, g, stream); }))
    return out;
  const auto d = dims(g);
  const int64_t npos = g.out_numel();
  const int mi = g.Cout <= 8 ? 1 : 2;
  const int64_t mtiles = ceil_div<int64_t>(g.Cout, 8 * mi);
  TORCH_CHECK(mtiles <= 65535, "semcorr::conv4d: too many output channels for CUDA, got ", g.Cout);
  const dim3 grid(ceil_div<int64_t>(npos, kFwdTN), mtiles, g.B);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "conv4d_forward", [&] {
    using acc = acc_t<scalar_t>;
    const scalar_t* bp = has_bias ? b.const_data_ptr<scalar_t>() : nullptr;
    if (mi == 1) {
      const auto conv4d_forward_kernel_fn = &conv4d_forward_kernel<scalar_t, acc, 1>;
      SC_LAUNCH(conv4d_forward_kernel_fn, grid, dim3(kFwdThreads), 0, stream)(
          x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), bp, out.mutable_data_ptr<scalar_t>(), d);
    } else {
      const auto conv4d_forward_kernel_fn = &conv4d_forward_kernel<scalar_t, acc, 2>;
      SC_LAUNCH(conv4d_forward_kernel_fn, grid, dim3(kFwdThreads), 0, stream)(
          x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(), bp, out.mutable_data_ptr<scalar_t>(), d);
    }
    SEMCORR_LAUNCH_CHECK();
  });
  return out;
}

// The tensor-core weight gradient into partial (splits, Cout, K) float32, on the SIMT kernel's grid (same tiles).
template <MmaKind kind, typename scalar_t>
inline void weight_grad_tc(const at::Tensor& grad, const at::Tensor& x, at::Tensor& partial, dim3 grid,
                           const conv4d_kernels::Dims& d, int64_t per_split, cudaStream_t stream) {
  using namespace conv4d_kernels;
  static_assert(kTcWgTK == kWgTK && kTcWgTM == kWgTM, "the tensor-core kernel uses the SIMT kernel's grid");
  const auto kernel = &conv4d_weight_grad_tc_kernel<kind, scalar_t>;
  SC_LAUNCH(kernel, grid, dim3(kTcThreads), 0, stream)(grad.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                                         partial.mutable_data_ptr<float>(), d, per_split);
  SEMCORR_LAUNCH_CHECK();
}

// grad (B, Cout, out...) and x contiguous -> grad_weight (Cout, Cin, k...), deterministic. Tensor cores or SIMT as
// the forward.
inline at::Tensor weight_grad(const at::Tensor& grad, const at::Tensor& x, const conv4d_host::Geometry& g,
                              cudaStream_t stream) {
  using namespace conv4d_kernels;
  const int64_t K = g.Cin * g.taps(), P = g.B * g.out_numel();
  const int64_t base_blocks = ceil_div<int64_t>(K, kWgTK) * ceil_div<int64_t>(g.Cout, kWgTM);
  TORCH_CHECK(ceil_div<int64_t>(g.Cout, kWgTM) <= 65535, "semcorr::_conv4d_backward: too many output channels");
  // Split the position reduction so that the grid fills a GPU (~512 blocks), each split at least 256
  // positions, the partial sums at most 16 Mi elements.
  int64_t splits = std::max<int64_t>(1, ceil_div<int64_t>(512, base_blocks));
  splits = std::min<int64_t>(splits, std::max<int64_t>(1, P / 256));
  splits = std::min<int64_t>(splits, std::max<int64_t>(1, (int64_t(1) << 24) / std::max<int64_t>(1, g.Cout * K)));
  splits = std::min<int64_t>(splits, 65535);
  const int64_t per_split = ceil_div<int64_t>(ceil_div<int64_t>(P, splits), kWgTP) * kWgTP;
  splits = ceil_div<int64_t>(P, per_split);
  const auto acc_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  auto partial = at::empty({splits, g.Cout, K}, x.options().dtype(acc_dtype));
  const dim3 grid(ceil_div<int64_t>(K, kWgTK), ceil_div<int64_t>(g.Cout, kWgTM), splits);
  const auto d = dims(g);
  const auto finish = [&] {
    return partial.sum(0).to(x.scalar_type()).view({g.Cout, g.Cin, g.k[0], g.k[1], g.k[2], g.k[3]});
  };
  if (launch_tensor_cores(x.scalar_type(), Tf32Switch::conv, [&]<MmaKind kind, typename T>() {
        weight_grad_tc<kind, T>(grad, x, partial, grid, d, per_split, stream);
      }))
    return finish();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "conv4d_weight_grad", [&] {
    using acc = acc_t<scalar_t>;
    const auto conv4d_weight_grad_kernel_fn = &conv4d_weight_grad_kernel<scalar_t, acc>;
    SC_LAUNCH(conv4d_weight_grad_kernel_fn, grid, dim3(kWgThreads), 0, stream)(
        grad.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(), partial.mutable_data_ptr<acc>(), d, per_split);
    SEMCORR_LAUNCH_CHECK();
  });
  return finish();
}

// The whole backward (inputs contiguous; g is the forward geometry).
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& x,
                                                               const at::Tensor& w, const conv4d_host::Geometry& g,
                                                               std::array<bool, 3> mask, cudaStream_t stream) {
  const bool empty = grad.numel() == 0 || x.numel() == 0 || g.Cin == 0;
  at::Tensor gx, gw, gb;
  if (mask[0] && !empty) {
    const auto wt = conv4d_host::transposed_weight(w);
    const auto gt = conv4d_host::geometry(grad, wt, conv4d_host::transposed_padding(g), "semcorr::_conv4d_backward");
    gx = forward(grad, wt, std::nullopt, gt, stream);
  } else {
    gx = at::zeros_like(x, at::MemoryFormat::Contiguous);
  }
  gw = mask[1] && !empty ? weight_grad(grad, x, g, stream) : at::zeros_like(w, at::MemoryFormat::Contiguous);
  if (mask[2] && grad.numel() > 0) {
    const auto acc_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    gb = grad.sum({0, 2, 3, 4, 5}, false, acc_dtype).to(x.scalar_type());
  } else {
    gb = at::zeros({g.Cout}, x.options());
  }
  return {gx, gw, gb};
}

// The CUDA entries of semcorr::conv4d and semcorr::_conv4d_backward: argument checks around the launch
// sequences above. A float32 out_dtype of float16/bfloat16 inputs runs the float32 path on the operands upcast, on
// tensor cores whatever the TF32 switch (exact: common/tensor_cores.h, Tf32Switch::exact_inputs); the backward
// takes that float32 grad and runs in x's dtype, as after a forward in that dtype.
inline at::Tensor conv4d(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                         at::IntArrayRef padding, std::optional<at::ScalarType> out_dtype, cudaStream_t stream) {
  const auto g = conv4d_host::check_args(x, weight, bias, padding, /*allow_half=*/true);
  const auto dtype = out_dtype_of(x, out_dtype, "semcorr::conv4d");
  const auto in = conv4d_host::operands_in(x, weight, bias, dtype);
  return forward(in.x.contiguous(), in.weight.contiguous(), in.bias, g, stream,
                 dtype != x.scalar_type() ? Tf32Switch::exact_inputs : Tf32Switch::conv);
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> conv4d_backward(const at::Tensor& grad, const at::Tensor& x,
                                                                      const at::Tensor& weight,
                                                                      at::IntArrayRef padding,
                                                                      std::array<bool, 3> output_mask,
                                                                      cudaStream_t stream) {
  const auto g = conv4d_host::check_backward_args(grad, x, weight, padding, /*allow_half=*/true);
  return backward(grad.to(x.scalar_type()).contiguous(), x.contiguous(), weight.contiguous(), g, output_mask, stream);
}

}  // namespace conv4d_launch
}  // namespace semcorr
