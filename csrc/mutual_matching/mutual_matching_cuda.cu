// CUDA glue of mutual_matching: device guard and current stream around the entries of mutual_matching_launch.h
// (checks, empty inputs, launch sequence; shared with the host emulator).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "mutual_matching/mutual_matching.h"
#include "mutual_matching/mutual_matching_launch.h"

namespace semcorr {

at::Tensor mutual_matching_cuda(const at::Tensor& corr, double eps) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(corr));
  return mutual_matching_launch::mutual_matching(corr, eps, c10::cuda::getCurrentCUDAStream());
}

at::Tensor mutual_matching_backward_cuda(const at::Tensor& grad, const at::Tensor& corr, double eps) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(corr));
  return mutual_matching_launch::mutual_matching_backward(grad, corr, eps, c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("mutual_matching", &mutual_matching_cuda);
  m.impl("_mutual_matching_backward", &mutual_matching_backward_cuda);
}

}  // namespace semcorr
