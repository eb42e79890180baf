// CUDA glue of hough_vote: device guard and current stream around the entries of hough_vote_launch.h (checks,
// empty inputs, launch sequence; shared with the host emulator); the kernels are in csrc/hough_common/.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "hough_vote/hough_vote.h"
#include "hough_vote/hough_vote_launch.h"

namespace semcorr {

at::Tensor hough_vote_cuda(const at::Tensor& app, const at::Tensor& bins, c10::IntArrayRef nbins,
                           const std::optional<at::Tensor>& smooth_kernel) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(app));
  return hough_vote_launch::hough_vote(app, bins, nbins, smooth_kernel, c10::cuda::getCurrentCUDAStream());
}

at::Tensor hough_vote_backward_cuda(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& bins,
                                    c10::IntArrayRef nbins, const std::optional<at::Tensor>& smooth_kernel) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(app));
  return hough_vote_launch::hough_vote_backward(grad, app, bins, nbins, smooth_kernel,
                                                c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("hough_vote", &hough_vote_cuda);
  m.impl("_hough_vote_backward", &hough_vote_backward_cuda);
}

}  // namespace semcorr
