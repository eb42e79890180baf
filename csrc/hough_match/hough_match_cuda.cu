// CUDA glue of hough_match: device guard and current stream around the entries of hough_match_launch.h (checks,
// empty inputs, launch sequence; shared with the host emulator); the kernels are in csrc/hough_common/.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "hough_match/hough_match.h"
#include "hough_match/hough_match_launch.h"

namespace semcorr {

at::Tensor hough_match_cuda(const at::Tensor& app, const at::Tensor& src_centers, const at::Tensor& tgt_centers,
                            c10::ArrayRef<double> src_size, c10::ArrayRef<double> tgt_size, int64_t ncells,
                            bool smooth) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(app));
  return hough_match_launch::hough_match(app, src_centers, tgt_centers, src_size, tgt_size, ncells, smooth,
                                         c10::cuda::getCurrentCUDAStream());
}

at::Tensor hough_match_backward_cuda(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& src_centers,
                                     const at::Tensor& tgt_centers, c10::ArrayRef<double> src_size,
                                     c10::ArrayRef<double> tgt_size, int64_t ncells, bool smooth) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(app));
  return hough_match_launch::hough_match_backward(grad, app, src_centers, tgt_centers, src_size, tgt_size, ncells,
                                                  smooth, c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("hough_match", &hough_match_cuda);
  m.impl("_hough_match_backward", &hough_match_backward_cuda);
}

}  // namespace semcorr
