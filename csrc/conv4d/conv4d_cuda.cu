// CUDA host glue of conv4d: argument checks, device guard, current stream; the launch sequence is in
// conv4d_launch.h (shared with the host emulator) and the kernels in conv4d_kernel.cuh.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "conv4d/conv4d.h"
#include "conv4d/conv4d_launch.h"

namespace semcorr {

at::Tensor conv4d_cuda(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       at::IntArrayRef padding) {
  const auto g = conv4d_host::check_args(x, weight, bias, padding, /*allow_half=*/true);
  const c10::cuda::CUDAGuard guard(x.device());
  return conv4d_launch::forward(x.contiguous(), weight.contiguous(), bias, g, c10::cuda::getCurrentCUDAStream());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv4d_backward_cuda(const at::Tensor& grad, const at::Tensor& x,
                                                                    const at::Tensor& weight,
                                                                    at::IntArrayRef padding,
                                                                    std::array<bool, 3> output_mask) {
  const auto g = conv4d_host::check_backward_args(grad, x, weight, padding, /*allow_half=*/true);
  const c10::cuda::CUDAGuard guard(x.device());
  return conv4d_launch::backward(grad.contiguous(), x.contiguous(), weight.contiguous(), g, output_mask,
                                 c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("conv4d", &conv4d_cuda);
  m.impl("_conv4d_backward", &conv4d_backward_cuda);
}

}  // namespace semcorr
