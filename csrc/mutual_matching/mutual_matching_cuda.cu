// CUDA host glue of mutual_matching: checks, device guard, current stream. Launch sequence in
// mutual_matching_launch.h (shared with the host emulator), kernels in mutual_matching_kernel.cuh.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "mutual_matching/mutual_matching.h"
#include "mutual_matching/mutual_matching_host.h"
#include "mutual_matching/mutual_matching_launch.h"

namespace semcorr {

at::Tensor mutual_matching_cuda(const at::Tensor& corr, double eps) {
  const auto d = mutual_matching_host::check_args(corr, eps, /*allow_half=*/true);
  if (corr.numel() == 0) return at::empty_like(corr);
  const c10::cuda::CUDAGuard guard(corr.device());
  return mutual_matching_launch::forward(corr.contiguous().view({d.B, d.Ns, d.Nt}), eps,
                                         c10::cuda::getCurrentCUDAStream())
      .view(corr.sizes());
}

at::Tensor mutual_matching_backward_cuda(const at::Tensor& grad, const at::Tensor& corr, double eps) {
  const auto d = mutual_matching_host::check_args(corr, eps, /*allow_half=*/true);
  mutual_matching_host::check_backward_args(grad, corr);
  if (corr.numel() == 0) return at::empty_like(corr);
  const c10::cuda::CUDAGuard guard(corr.device());
  return mutual_matching_launch::backward(grad.contiguous().view({d.B, d.Ns, d.Nt}),
                                          corr.contiguous().view({d.B, d.Ns, d.Nt}), eps,
                                          c10::cuda::getCurrentCUDAStream())
      .view(corr.sizes());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("mutual_matching", &mutual_matching_cuda);
  m.impl("_mutual_matching_backward", &mutual_matching_backward_cuda);
}

}  // namespace semcorr
