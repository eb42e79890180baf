// CUDA glue of gather_windows4d, gather_windows4d_points and gather_windows4d_linear: device guard and current
// stream around the entries of gather_windows4d_launch.h (checks, empty inputs, launch sequences).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "gather_windows4d/gather_windows4d.h"
#include "gather_windows4d/gather_windows4d_launch.h"

namespace semcorr {

at::Tensor gather_windows4d_cuda(const at::Tensor& corr, const at::Tensor& candidates, int64_t window) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(corr));
  return gather_windows4d_launch::gather_windows4d(corr, candidates, window, c10::cuda::getCurrentCUDAStream());
}

at::Tensor gather_windows4d_backward_cuda(const at::Tensor& grad, const at::Tensor& candidates,
                                          at::IntArrayRef corr_size, int64_t window) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(grad));
  return gather_windows4d_launch::gather_windows4d_backward(grad, candidates, corr_size, window,
                                                            c10::cuda::getCurrentCUDAStream());
}

at::Tensor gather_windows4d_points_cuda(const at::Tensor& corr, const at::Tensor& points, int64_t window) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(corr));
  return gather_windows4d_launch::gather_windows4d_points(corr, points, window, c10::cuda::getCurrentCUDAStream());
}

at::Tensor gather_windows4d_points_backward_cuda(const at::Tensor& grad, const at::Tensor& points,
                                                 at::IntArrayRef corr_size, int64_t window) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(grad));
  return gather_windows4d_launch::gather_windows4d_points_backward(grad, points, corr_size, window,
                                                                   c10::cuda::getCurrentCUDAStream());
}

at::Tensor gather_windows4d_linear_cuda(const at::Tensor& corr, const at::Tensor& points, const at::Tensor& weight,
                                        const std::optional<at::Tensor>& bias) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(corr));
  return gather_windows4d_launch::gather_windows4d_linear(corr, points, weight, bias,
                                                          c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("gather_windows4d", &gather_windows4d_cuda);
  m.impl("_gather_windows4d_backward", &gather_windows4d_backward_cuda);
  m.impl("gather_windows4d_points", &gather_windows4d_points_cuda);
  m.impl("_gather_windows4d_points_backward", &gather_windows4d_points_backward_cuda);
  m.impl("gather_windows4d_linear", &gather_windows4d_linear_cuda);
}

}  // namespace semcorr
