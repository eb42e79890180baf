// CUDA glue of corr4d_topk: device guard and current stream around the entries of corr4d_topk_launch.h
// (checks, empty inputs, launch sequence; shared with the host emulator).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "corr4d_topk/corr4d_topk.h"
#include "corr4d_topk/corr4d_topk_launch.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor> corr4d_topk_cuda(const at::Tensor& src, const at::Tensor& tgt, int64_t k,
                                                    bool normalize, double eps) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(src));
  return corr4d_topk_launch::corr4d_topk(src, tgt, k, normalize, eps, c10::cuda::getCurrentCUDAStream());
}

std::tuple<at::Tensor, at::Tensor> corr4d_topk_backward_cuda(const at::Tensor& grad, const at::Tensor& src,
                                                             const at::Tensor& tgt, const at::Tensor& values,
                                                             const at::Tensor& indices, bool normalize, double eps) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(src));
  return corr4d_topk_launch::corr4d_topk_backward(grad, src, tgt, values, indices, normalize, eps,
                                                  c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("corr4d_topk", &corr4d_topk_cuda);
  m.impl("_corr4d_topk_backward", &corr4d_topk_backward_cuda);
}

}  // namespace semcorr
