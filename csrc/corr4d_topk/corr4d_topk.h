// corr4d_topk: the k largest entries of each source row of the 4D correlation volume, computed in tiles
// without materialising the (Hs*Ws) x (Ht*Wt) volume (Sparse NC-Net's input).
//
//   src   (B, C, Hs, Ws)  source features, float32/float64 (CPU), + float16/bfloat16 (CUDA)
//   tgt   (B, C, Ht, Wt)  target features, same dtype and device
//   k                     0 <= k <= Ht*Wt (CUDA and its emulation: k <= kTopkMaxK = 32)
//   normalize, eps        as corr4d: S = <s, t> / (sqrt(|s|^2 + eps) sqrt(|t|^2 + eps)), else the raw dot product
//   returns (values (B, Hs, Ws, k) in the input dtype, indices (B, Hs, Ws, k) int64): for each source position
//           the k largest S over all target positions, sorted descending, ties to the smaller flat target index
//           t = l + Wt * k; NaN ranks above everything (as torch.topk).
//
// _corr4d_topk_backward(grad, src, tgt, values, indices, normalize, eps) -> (grad_src, grad_tgt):
//   grad and values (B, Hs, Ws, k), indices (B, Hs, Ws, k) int64 (the forward outputs). Deterministic.
//
// CUDA paths of the forward (csrc/common/tensor_cores.h), as corr4d's: on compute capability >= 8.0 float16 /
// bfloat16 inputs take tensor cores (mma.sync m16n8k16, float32 accumulation), float32 takes TF32 tensor cores
// (m16n8k8) iff PyTorch's matmul TF32 switch allows it; otherwise (and float64) the SIMT kernel. Near-ties may rank
// differently on the TF32 / 16-bit paths than on the exact path. The backward is gathers and reductions (no GEMM).
#pragma once
#include <ATen/core/Tensor.h>

#include <tuple>

namespace semcorr {

constexpr int64_t kTopkMaxK = 32;  // the CUDA kernel keeps k entries per row in shared memory

std::tuple<at::Tensor, at::Tensor> corr4d_topk_cpu(const at::Tensor& src, const at::Tensor& tgt, int64_t k,
                                                   bool normalize, double eps);
std::tuple<at::Tensor, at::Tensor> corr4d_topk_backward_cpu(const at::Tensor& grad, const at::Tensor& src,
                                                            const at::Tensor& tgt, const at::Tensor& values,
                                                            const at::Tensor& indices, bool normalize, double eps);

}  // namespace semcorr
