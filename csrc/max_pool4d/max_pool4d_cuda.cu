// CUDA host glue of max_pool4d: checks, device guard, current stream; launch sequence in max_pool4d_launch.h.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "max_pool4d/max_pool4d.h"
#include "max_pool4d/max_pool4d_launch.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor> max_pool4d_cuda(const at::Tensor& x, at::IntArrayRef kernel_size) {
  const auto g = max_pool4d_host::check_args(x, kernel_size, /*allow_half=*/true);
  const c10::cuda::CUDAGuard guard(x.device());
  return max_pool4d_launch::forward(x, g, c10::cuda::getCurrentCUDAStream());
}

at::Tensor max_pool4d_backward_cuda(const at::Tensor& grad, const at::Tensor& argmax, at::IntArrayRef x_size,
                                    at::IntArrayRef kernel_size) {
  const auto g = max_pool4d_host::check_backward_args(grad, argmax, x_size, kernel_size, /*allow_half=*/true);
  const c10::cuda::CUDAGuard guard(grad.device());
  return max_pool4d_launch::backward(grad, argmax, g, c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("max_pool4d", &max_pool4d_cuda);
  m.impl("_max_pool4d_backward", &max_pool4d_backward_cuda);
}

}  // namespace semcorr
