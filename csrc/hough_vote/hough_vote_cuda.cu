// CUDA host glue of hough_vote: argument checks, device guard, current stream; the launch sequence is in
// csrc/hough_match/hough_launch.h (shared with hough_match and the host emulator).
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "hough_vote/hough_vote.h"
#include "hough_match/hough_launch.h"

namespace semcorr {

at::Tensor hough_vote_cuda(const at::Tensor& app, const at::Tensor& bins, c10::IntArrayRef nbins,
                           const std::optional<at::Tensor>& smooth_kernel) {
  hough_vote_host::check_args(app, bins, nbins, smooth_kernel, /*allow_half=*/true);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  const c10::cuda::CUDAGuard guard(app.device());
  return hough_launch::hough_vote(nullptr, app, bins, nbins, smooth_kernel, "semcorr::hough_vote",
                                  c10::cuda::getCurrentCUDAStream());
}

at::Tensor hough_vote_backward_cuda(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& bins,
                                    c10::IntArrayRef nbins, const std::optional<at::Tensor>& smooth_kernel) {
  constexpr const char* op = "semcorr::_hough_vote_backward";
  hough_vote_host::check_args(app, bins, nbins, smooth_kernel, true, op);
  hough_vote_host::check_backward_args(grad, app, op);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  const c10::cuda::CUDAGuard guard(app.device());
  return hough_launch::hough_vote(&grad, app, bins, nbins, smooth_kernel, op, c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("hough_vote", &hough_vote_cuda);
  m.impl("_hough_vote_backward", &hough_vote_backward_cuda);
}

}  // namespace semcorr
