// patchmatch_select: the selection step of PatchMatch neighbourhood consensus (PMNC).
//
//   candidates (B, Hs, Ws, N, 2) int64, scores (B, Hs, Ws, N) float32/float64 (+ float16/bfloat16 on CUDA),
//   valid (B, Hs, Ws, N) bool, k >= 0.
//   returns (matches (B, Hs, Ws, k, 2) int64, scores (B, Hs, Ws, k), indices (B, Hs, Ws, k) int64): the k best
//   valid candidates of each source pixel in rank order. Rank: higher score first, NaN scores after all others,
//   equal scores by lower candidate index. Slots beyond the number of valid candidates get index -1, match
//   (-1, -1) and score -inf.
//
// _patchmatch_select_backward(grad (B, Hs, Ws, k), indices, N) -> grad_scores (B, Hs, Ws, N): grad routed back to
// the selected candidates (each valid candidate is selected at most once, so this is a plain scatter).
#pragma once
#include <ATen/core/Tensor.h>

#include <tuple>

namespace semcorr {

std::tuple<at::Tensor, at::Tensor, at::Tensor> patchmatch_select_cpu(const at::Tensor& candidates,
                                                                     const at::Tensor& scores,
                                                                     const at::Tensor& valid, int64_t k);
at::Tensor patchmatch_select_backward(const at::Tensor& grad, const at::Tensor& indices, int64_t n);

}  // namespace semcorr
