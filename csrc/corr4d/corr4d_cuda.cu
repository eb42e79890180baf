// CUDA host glue of corr4d: argument checks, device guard, current stream; the launch sequence is in
// corr4d_launch.h (shared with the host emulator) and the kernels in corr4d_kernel.cuh.
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "corr4d/corr4d.h"
#include "corr4d/corr4d_launch.h"

namespace semcorr {

at::Tensor corr4d_cuda(const at::Tensor& src, const at::Tensor& tgt, bool normalize, bool relu, double power,
                       double eps) {
  corr4d_host::check_args(src, tgt, relu, power, eps, /*allow_half=*/true);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * Nt == 0) return corr4d_host::empty_output(src, tgt);
  const c10::cuda::CUDAGuard guard(src.device());
  const auto out = corr4d_launch::forward(src.contiguous().view({B, C, Ns}), tgt.contiguous().view({B, C, Nt}),
                                          normalize, relu, power, eps, c10::cuda::getCurrentCUDAStream());
  return out.view({B, src.size(2), src.size(3), tgt.size(2), tgt.size(3)});
}

std::tuple<at::Tensor, at::Tensor> corr4d_backward_cuda(const at::Tensor& grad, const at::Tensor& src,
                                                        const at::Tensor& tgt, const at::Tensor& out,
                                                        bool normalize, bool relu, double power, double eps) {
  corr4d_host::check_args(src, tgt, relu, power, eps, /*allow_half=*/true);
  corr4d_host::check_backward_args(grad, src, tgt, out);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * Nt * C == 0) return {at::zeros_like(src), at::zeros_like(tgt)};
  const c10::cuda::CUDAGuard guard(src.device());
  auto [gs, gt] = corr4d_launch::backward(grad.contiguous().view({B, Ns, Nt}), out.contiguous().view({B, Ns, Nt}),
                                          src.contiguous().view({B, C, Ns}), tgt.contiguous().view({B, C, Nt}),
                                          normalize, relu, power, eps, c10::cuda::getCurrentCUDAStream());
  return {gs.view(src.sizes()), gt.view(tgt.sizes())};
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("corr4d", &corr4d_cuda);
  m.impl("_corr4d_backward", &corr4d_backward_cuda);
}

}  // namespace semcorr
