// CUDA host glue of corr4d_topk: argument checks, device guard, current stream, empty early-return; the
// launch sequence is in corr4d_topk_launch.h (shared with the host emulator).
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "corr4d_topk/corr4d_topk.h"
#include "corr4d_topk/corr4d_topk_launch.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor> corr4d_topk_cuda(const at::Tensor& src, const at::Tensor& tgt, int64_t k,
                                                    bool normalize, double eps) {
  corr4d_topk_host::check_args(src, tgt, k, eps, /*cuda_kernel=*/true);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * k == 0 || C == 0) return corr4d_topk_host::trivial_output(src, k);
  const c10::cuda::CUDAGuard guard(src.device());
  auto [v, i] = corr4d_topk_launch::forward(src.contiguous().view({B, C, Ns}), tgt.contiguous().view({B, C, Nt}), k,
                                            normalize, eps, c10::cuda::getCurrentCUDAStream());
  return {v.view({B, src.size(2), src.size(3), k}), i.view({B, src.size(2), src.size(3), k})};
}

std::tuple<at::Tensor, at::Tensor> corr4d_topk_backward_cuda(const at::Tensor& grad, const at::Tensor& src,
                                                             const at::Tensor& tgt, const at::Tensor& values,
                                                             const at::Tensor& indices, bool normalize, double eps) {
  corr4d_topk_host::check_args(src, tgt, values.dim() == 4 ? values.size(3) : 0, eps, /*cuda_kernel=*/true,
                               "semcorr::_corr4d_topk_backward");
  corr4d_topk_host::check_backward_args(grad, src, tgt, values, indices);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  const int64_t k = values.size(3);
  if (B * Ns * k * C == 0) return {at::zeros_like(src), at::zeros_like(tgt)};
  const c10::cuda::CUDAGuard guard(src.device());
  auto [gs, gt] = corr4d_topk_launch::backward(
      grad.contiguous().view({B, Ns, k}), values.contiguous().view({B, Ns, k}), indices.contiguous().view({B, Ns, k}),
      src.contiguous().view({B, C, Ns}), tgt.contiguous().view({B, C, Nt}), normalize, eps,
      c10::cuda::getCurrentCUDAStream());
  return {gs.view(src.sizes()), gt.view(tgt.sizes())};
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("corr4d_topk", &corr4d_topk_cuda);
  m.impl("_corr4d_topk_backward", &corr4d_topk_backward_cuda);
}

}  // namespace semcorr
