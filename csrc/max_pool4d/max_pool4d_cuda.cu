// CUDA glue of max_pool4d: device guard and current stream around the entries of max_pool4d_launch.h.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "max_pool4d/max_pool4d.h"
#include "max_pool4d/max_pool4d_launch.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor> max_pool4d_cuda(const at::Tensor& x, at::IntArrayRef kernel_size) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(x));
  return max_pool4d_launch::max_pool4d(x, kernel_size, c10::cuda::getCurrentCUDAStream());
}

at::Tensor max_pool4d_backward_cuda(const at::Tensor& grad, const at::Tensor& argmax, at::IntArrayRef x_size,
                                    at::IntArrayRef kernel_size) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(grad));
  return max_pool4d_launch::max_pool4d_backward(grad, argmax, x_size, kernel_size, c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("max_pool4d", &max_pool4d_cuda);
  m.impl("_max_pool4d_backward", &max_pool4d_backward_cuda);
}

}  // namespace semcorr
