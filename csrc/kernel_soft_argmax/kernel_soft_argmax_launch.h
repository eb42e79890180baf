// Launch sequence of kernel_soft_argmax's CUDA kernels, shared by kernel_soft_argmax_cuda.cu and the host
// emulator (kernel_soft_argmax_emu.cpp). The launch sequences take corr (B, Hs, Ws, Ht, Wt) contiguous
// with rows > 0, N > 0; the entries at the end check the arguments and handle empty inputs, their callers set
// the device guard and pass the stream.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include "kernel_soft_argmax/kernel_soft_argmax_host.h"
#include "common/launch.h"
#include "kernel_soft_argmax/kernel_soft_argmax_kernel.cuh"

namespace semcorr {
namespace kernel_soft_argmax_launch {

inline dim3 grid_for(int64_t rows) {
  const int64_t blocks = ceil_div<int64_t>(rows, kernel_soft_argmax_kernels::kWarpsPerBlock);
  TORCH_CHECK(blocks <= 2147483647LL, "semcorr::kernel_soft_argmax: too many source positions for one launch (",
              rows, ")");
  return dim3(static_cast<unsigned>(blocks));
}

inline dim3 block_dim() { return dim3(32, kernel_soft_argmax_kernels::kWarpsPerBlock); }

inline at::Tensor forward(const at::Tensor& c, double beta, double sigma, bool normalize, cudaStream_t stream) {
  const int64_t B = c.size(0), Hs = c.size(1), Ws = c.size(2), Ht = c.size(3), Wt = c.size(4);
  const int64_t rows = B * Hs * Ws;
  auto out = at::empty({B, Hs, Ws, 2}, c.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "kernel_soft_argmax_forward", [&] {
    using acc = acc_t<scalar_t>;
    const auto prm = ksa_params<acc>(beta, sigma, normalize);
    const auto forward_kernel_fn = &kernel_soft_argmax_kernels::forward_kernel<scalar_t, acc>;
    SC_LAUNCH(forward_kernel_fn, grid_for(rows), block_dim(), 0, stream)(
        c.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(), rows, Ht, Wt, prm);
    SEMCORR_LAUNCH_CHECK();
  });
  return out;
}

inline at::Tensor backward(const at::Tensor& g, const at::Tensor& c, double beta, double sigma, bool normalize,
                           cudaStream_t stream) {
  const int64_t B = c.size(0), Hs = c.size(1), Ws = c.size(2), Ht = c.size(3), Wt = c.size(4);
  const int64_t rows = B * Hs * Ws;
  auto gin = at::empty(c.sizes(), c.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "kernel_soft_argmax_backward", [&] {
    using acc = acc_t<scalar_t>;
    const auto prm = ksa_params<acc>(beta, sigma, normalize);
    const auto backward_kernel_fn = &kernel_soft_argmax_kernels::backward_kernel<scalar_t, acc>;
    SC_LAUNCH(backward_kernel_fn, grid_for(rows), block_dim(), 0, stream)(
        g.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(), gin.mutable_data_ptr<scalar_t>(), rows, Ht,
        Wt, prm);
    SEMCORR_LAUNCH_CHECK();
  });
  return gin;
}

// The CUDA entries of semcorr::kernel_soft_argmax and its backward: argument checks and empty inputs around the
// launch sequences above.
inline at::Tensor kernel_soft_argmax(const at::Tensor& corr, double beta, double sigma, bool normalize,
                                     cudaStream_t stream) {
  const auto d = kernel_soft_argmax_host::check_args(corr, beta, sigma, /*allow_half=*/true);
  if (d.rows() == 0) return kernel_soft_argmax_host::output_like(corr);
  return forward(corr.contiguous(), beta, sigma, normalize, stream);
}

inline at::Tensor kernel_soft_argmax_backward(const at::Tensor& grad, const at::Tensor& corr, double beta,
                                              double sigma, bool normalize, cudaStream_t stream) {
  kernel_soft_argmax_host::check_args(corr, beta, sigma, /*allow_half=*/true);
  kernel_soft_argmax_host::check_backward_args(grad, corr);
  if (corr.numel() == 0) return at::empty(corr.sizes(), corr.options());
  return backward(grad.contiguous(), corr.contiguous(), beta, sigma, normalize, stream);
}

}  // namespace kernel_soft_argmax_launch
}  // namespace semcorr
