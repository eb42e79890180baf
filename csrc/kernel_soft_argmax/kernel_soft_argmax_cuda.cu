// CUDA host glue of kernel_soft_argmax: checks, device guard, current stream, empty early-return. Launch
// sequence in kernel_soft_argmax_launch.h (shared with the host emulator), kernels in kernel_soft_argmax_kernel.cuh.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "kernel_soft_argmax/kernel_soft_argmax.h"
#include "kernel_soft_argmax/kernel_soft_argmax_host.h"
#include "kernel_soft_argmax/kernel_soft_argmax_launch.h"

namespace semcorr {

at::Tensor kernel_soft_argmax_cuda(const at::Tensor& corr, double beta, double sigma, bool normalize) {
  const auto d = kernel_soft_argmax_host::check_args(corr, beta, sigma, /*allow_half=*/true);
  if (d.rows() == 0) return kernel_soft_argmax_host::output_like(corr);
  const c10::cuda::CUDAGuard guard(corr.device());
  return kernel_soft_argmax_launch::forward(corr.contiguous(), beta, sigma, normalize,
                                            c10::cuda::getCurrentCUDAStream());
}

at::Tensor kernel_soft_argmax_backward_cuda(const at::Tensor& grad, const at::Tensor& corr, double beta,
                                            double sigma, bool normalize) {
  const auto d = kernel_soft_argmax_host::check_args(corr, beta, sigma, /*allow_half=*/true);
  kernel_soft_argmax_host::check_backward_args(grad, corr);
  if (corr.numel() == 0) return at::empty(corr.sizes(), corr.options());
  const c10::cuda::CUDAGuard guard(corr.device());
  return kernel_soft_argmax_launch::backward(grad.contiguous(), corr.contiguous(), beta, sigma, normalize,
                                             c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("kernel_soft_argmax", &kernel_soft_argmax_cuda);
  m.impl("_kernel_soft_argmax_backward", &kernel_soft_argmax_backward_cuda);
}

}  // namespace semcorr
