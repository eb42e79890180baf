// CUDA glue of conv4d: device guard and current stream around the entries of conv4d_launch.h (checks and
// launch sequence, shared with the host emulator); the kernels are in conv4d_kernel.cuh.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "conv4d/conv4d.h"
#include "conv4d/conv4d_launch.h"

namespace semcorr {

at::Tensor conv4d_cuda(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       at::IntArrayRef padding, std::optional<at::ScalarType> out_dtype) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(x));
  return conv4d_launch::conv4d(x, weight, bias, padding, out_dtype, c10::cuda::getCurrentCUDAStream());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv4d_backward_cuda(const at::Tensor& grad, const at::Tensor& x,
                                                                    const at::Tensor& weight, at::IntArrayRef padding,
                                                                    std::array<bool, 3> output_mask) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(x));
  return conv4d_launch::conv4d_backward(grad, x, weight, padding, output_mask, c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("conv4d", &conv4d_cuda);
  m.impl("_conv4d_backward", &conv4d_backward_cuda);
}

}  // namespace semcorr
