// CUDA glue of corr4d: device guard and current stream around the entries of corr4d_launch.h (checks, empty
// inputs, launch sequence; shared with the host emulator); the kernels are in corr4d_kernel.cuh.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "corr4d/corr4d.h"
#include "corr4d/corr4d_launch.h"

namespace semcorr {

at::Tensor corr4d_cuda(const at::Tensor& src, const at::Tensor& tgt, bool normalize, bool relu, double power,
                       double eps, std::optional<at::ScalarType> out_dtype) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(src));
  return corr4d_launch::corr4d(src, tgt, normalize, relu, power, eps, out_dtype, c10::cuda::getCurrentCUDAStream());
}

std::tuple<at::Tensor, at::Tensor> corr4d_backward_cuda(const at::Tensor& grad, const at::Tensor& src,
                                                        const at::Tensor& tgt, const at::Tensor& out, bool normalize,
                                                        bool relu, double power, double eps) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(src));
  return corr4d_launch::corr4d_backward(grad, src, tgt, out, normalize, relu, power, eps,
                                        c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("corr4d", &corr4d_cuda);
  m.impl("_corr4d_backward", &corr4d_backward_cuda);
}

}  // namespace semcorr
