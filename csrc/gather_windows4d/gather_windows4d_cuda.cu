// CUDA host glue of gather_windows4d, gather_windows4d_points and gather_windows4d_linear: checks, device guard, current stream; launch sequences in
// gather_windows4d_launch.h (shared with the host emulator).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "gather_windows4d/gather_windows4d.h"
#include "gather_windows4d/gather_windows4d_host.h"
#include "gather_windows4d/gather_windows4d_launch.h"

namespace semcorr {

at::Tensor gather_windows4d_cuda(const at::Tensor& corr, const at::Tensor& candidates, int64_t window) {
  const auto d = gather_windows4d_host::check_args(corr, candidates, window, /*allow_half=*/true);
  if (d.B * d.Hs * d.Ws * d.N == 0)
    return at::empty({d.B, d.Hs, d.Ws, d.N, d.w, d.w, d.w, d.w}, corr.options());
  const c10::cuda::CUDAGuard guard(corr.device());
  return gather_windows4d_launch::forward(d, corr.contiguous(), candidates.contiguous(),
                                          c10::cuda::getCurrentCUDAStream());
}

at::Tensor gather_windows4d_backward_cuda(const at::Tensor& grad, const at::Tensor& candidates,
                                          at::IntArrayRef corr_size, int64_t window) {
  const auto d = gather_windows4d_host::check_backward_args(grad, candidates, corr_size, window, true);
  if (d.B * d.Hs * d.Ws * d.Ht * d.Wt == 0 || grad.numel() == 0) return at::zeros(corr_size, grad.options());
  const c10::cuda::CUDAGuard guard(grad.device());
  return gather_windows4d_launch::backward(d, grad.contiguous(), candidates.contiguous(), corr_size,
                                           c10::cuda::getCurrentCUDAStream());
}

at::Tensor gather_windows4d_points_cuda(const at::Tensor& corr, const at::Tensor& points, int64_t window) {
  const auto d = gather_windows4d_host::check_points_args(corr, points, window, /*allow_half=*/true);
  if (d.N == 0) return at::empty({0, d.w, d.w, d.w, d.w}, corr.options());
  const c10::cuda::CUDAGuard guard(corr.device());
  return gather_windows4d_launch::points_forward(d, corr.contiguous(), points.contiguous(),
                                                 c10::cuda::getCurrentCUDAStream());
}

at::Tensor gather_windows4d_points_backward_cuda(const at::Tensor& grad, const at::Tensor& points,
                                                 at::IntArrayRef corr_size, int64_t window) {
  const auto d = gather_windows4d_host::check_points_backward_args(grad, points, corr_size, window, true);
  if (d.B * d.Hs * d.Ws * d.Ht * d.Wt == 0 || grad.numel() == 0) return at::zeros(corr_size, grad.options());
  const c10::cuda::CUDAGuard guard(grad.device());
  return gather_windows4d_launch::points_backward(d, grad.contiguous(), points.contiguous(), corr_size,
                                                  c10::cuda::getCurrentCUDAStream());
}

at::Tensor gather_windows4d_linear_cuda(const at::Tensor& corr, const at::Tensor& points, const at::Tensor& weight,
                                        const std::optional<at::Tensor>& bias) {
  const auto d = gather_windows4d_host::check_linear_args(corr, points, weight, bias, /*allow_half=*/true);
  if (d.N == 0 || weight.size(0) == 0) return at::empty({d.N, weight.size(0)}, corr.options());
  const c10::cuda::CUDAGuard guard(corr.device());
  return gather_windows4d_launch::linear_forward(d, corr.contiguous(), points.contiguous(), weight, bias,
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
