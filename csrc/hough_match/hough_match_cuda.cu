// CUDA host glue of hough_match: argument checks, device guard, current stream; the launch sequence is in
// hough_launch.h (shared with the host emulator) and the kernels in hough_kernel.cuh.
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "hough_match/hough_match.h"
#include "hough_match/hough_launch.h"

namespace semcorr {

at::Tensor hough_match_cuda(const at::Tensor& app, const at::Tensor& src_centers, const at::Tensor& tgt_centers,
                            c10::ArrayRef<double> src_size, c10::ArrayRef<double> tgt_size, int64_t ncells,
                            bool smooth) {
  hough_match_host::check_args(app, src_centers, tgt_centers, src_size, tgt_size, ncells, /*allow_half=*/true);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  const c10::cuda::CUDAGuard guard(app.device());
  return hough_launch::hough_match(nullptr, app, src_centers, tgt_centers, src_size, tgt_size, ncells, smooth,
                                   c10::cuda::getCurrentCUDAStream());
}

at::Tensor hough_match_backward_cuda(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& src_centers,
                                     const at::Tensor& tgt_centers, c10::ArrayRef<double> src_size,
                                     c10::ArrayRef<double> tgt_size, int64_t ncells, bool smooth) {
  constexpr const char* op = "semcorr::_hough_match_backward";
  hough_match_host::check_args(app, src_centers, tgt_centers, src_size, tgt_size, ncells, true, op);
  hough_match_host::check_backward_args(grad, app, op);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  const c10::cuda::CUDAGuard guard(app.device());
  return hough_launch::hough_match(&grad, app, src_centers, tgt_centers, src_size, tgt_size, ncells, smooth,
                                   c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("hough_match", &hough_match_cuda);
  m.impl("_hough_match_backward", &hough_match_backward_cuda);
}

}  // namespace semcorr
