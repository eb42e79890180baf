// CUDA glue of kernel_map4d and sparse_conv4d: device guard and current stream around the entries of
// sparse_conv4d_launch.h (checks, empty inputs, launch sequences; shared with the host emulator).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "sparse_conv4d/sparse_conv4d.h"
#include "sparse_conv4d/sparse_conv4d_launch.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_map4d_cuda(const at::Tensor& coords,
                                                                 at::IntArrayRef kernel_size) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(coords));
  return sparse_conv4d_launch::kernel_map4d(coords, kernel_size, c10::cuda::getCurrentCUDAStream());
}

at::Tensor sparse_conv4d_cuda(const at::Tensor& feats, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                              const at::Tensor& in_rows, const at::Tensor& out_rows, const at::Tensor& offsets_ptr) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(feats));
  return sparse_conv4d_launch::sparse_conv4d(feats, weight, bias, in_rows, out_rows, offsets_ptr,
                                             c10::cuda::getCurrentCUDAStream());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_conv4d_backward_cuda(
    const at::Tensor& grad, const at::Tensor& feats, const at::Tensor& weight, const at::Tensor& in_rows,
    const at::Tensor& out_rows, const at::Tensor& offsets_ptr) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(feats));
  return sparse_conv4d_launch::sparse_conv4d_backward(grad, feats, weight, in_rows, out_rows, offsets_ptr,
                                                      c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("kernel_map4d", &kernel_map4d_cuda);
  m.impl("sparse_conv4d", &sparse_conv4d_cuda);
  m.impl("_sparse_conv4d_backward", &sparse_conv4d_backward_cuda);
}

}  // namespace semcorr
