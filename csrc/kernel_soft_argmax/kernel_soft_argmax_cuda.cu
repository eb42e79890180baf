// CUDA glue of kernel_soft_argmax: device guard and current stream around the entries of
// kernel_soft_argmax_launch.h (checks, empty inputs, launch sequence; shared with the host emulator).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "kernel_soft_argmax/kernel_soft_argmax.h"
#include "kernel_soft_argmax/kernel_soft_argmax_launch.h"

namespace semcorr {

at::Tensor kernel_soft_argmax_cuda(const at::Tensor& corr, double beta, double sigma, bool normalize) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(corr));
  return kernel_soft_argmax_launch::kernel_soft_argmax(corr, beta, sigma, normalize, c10::cuda::getCurrentCUDAStream());
}

at::Tensor kernel_soft_argmax_backward_cuda(const at::Tensor& grad, const at::Tensor& corr, double beta, double sigma,
                                            bool normalize) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(corr));
  return kernel_soft_argmax_launch::kernel_soft_argmax_backward(grad, corr, beta, sigma, normalize,
                                                                c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("kernel_soft_argmax", &kernel_soft_argmax_cuda);
  m.impl("_kernel_soft_argmax_backward", &kernel_soft_argmax_backward_cuda);
}

}  // namespace semcorr
