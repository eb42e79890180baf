// Launch sequences of max_pool4d's CUDA kernels, shared by the GPU host glue (max_pool4d_cuda.cu) and the
// host emulator (max_pool4d_emu.cpp). The entries at the end check the arguments; their callers set
// the device guard and pass the stream.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <tuple>

#include "common/launch.h"
#include "max_pool4d/max_pool4d_host.h"
#include "max_pool4d/max_pool4d_kernel.cuh"

namespace semcorr {
namespace max_pool4d_launch {

constexpr int kThreads = 256;

inline max_pool4d_math::Dims dims(const max_pool4d_host::Geometry& g) {
  max_pool4d_math::Dims d{};
  d.BC = g.B * g.C, d.C = g.C;
  for (int i = 0; i < 4; ++i) d.in[i] = g.in[i], d.k[i] = g.k[i], d.out[i] = g.out[i];
  return d;
}

inline std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& x, const max_pool4d_host::Geometry& g,
                                                  cudaStream_t stream) {
  auto values = at::empty(g.values_shape(), x.options());
  auto argmax = at::empty(g.argmax_shape(), x.options().dtype(at::kLong));
  const int64_t n = g.out_numel();
  if (n == 0) return {values, argmax};
  const auto xc = x.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "max_pool4d_forward", [&] {
    using acc = acc_t<scalar_t>;
    const auto forward_kernel_fn = &max_pool4d_kernels::forward_kernel<scalar_t, acc>;
    SC_LAUNCH(forward_kernel_fn, dim3(ceil_div<int64_t>(n, kThreads)), dim3(kThreads), 0, stream)(
        xc.const_data_ptr<scalar_t>(), values.mutable_data_ptr<scalar_t>(), argmax.mutable_data_ptr<int64_t>(),
        dims(g), n);
    SEMCORR_LAUNCH_CHECK();
  });
  return {values, argmax};
}

inline at::Tensor backward(const at::Tensor& grad, const at::Tensor& argmax, const max_pool4d_host::Geometry& g,
                           cudaStream_t stream) {
  auto gx = at::zeros(g.x_shape(), grad.options());
  const int64_t n = g.out_numel();
  if (n == 0) return gx;
  const auto gc = grad.contiguous();
  const auto ac = argmax.contiguous();
  max_pool4d_host::check_argmax_range(ac, g);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "max_pool4d_backward", [&] {
    const auto backward_kernel_fn = &max_pool4d_kernels::backward_kernel<scalar_t>;
    SC_LAUNCH(backward_kernel_fn, dim3(ceil_div<int64_t>(n, kThreads)), dim3(kThreads), 0, stream)(
        gc.const_data_ptr<scalar_t>(), ac.const_data_ptr<int64_t>(), gx.mutable_data_ptr<scalar_t>(), dims(g), n);
    SEMCORR_LAUNCH_CHECK();
  });
  return gx;
}

// The CUDA entries of semcorr::max_pool4d and semcorr::_max_pool4d_backward: argument checks around the launch
// sequences above.
inline std::tuple<at::Tensor, at::Tensor> max_pool4d(const at::Tensor& x, at::IntArrayRef kernel_size,
                                                     cudaStream_t stream) {
  const auto g = max_pool4d_host::check_args(x, kernel_size, /*allow_half=*/true);
  return forward(x, g, stream);
}

inline at::Tensor max_pool4d_backward(const at::Tensor& grad, const at::Tensor& argmax, at::IntArrayRef x_size,
                                      at::IntArrayRef kernel_size, cudaStream_t stream) {
  const auto g = max_pool4d_host::check_backward_args(grad, argmax, x_size, kernel_size, /*allow_half=*/true);
  return backward(grad, argmax, g, stream);
}

}  // namespace max_pool4d_launch
}  // namespace semcorr
