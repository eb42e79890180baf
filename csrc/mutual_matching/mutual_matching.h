// mutual_matching: NC-Net's soft mutual nearest-neighbour filtering of a 4D correlation volume.
//
//   corr  (B, Hs, Ws, Ht, Wt) or (B, 1, Hs, Ws, Ht, Wt); float32/float64 (CPU), + float16/bfloat16 (CUDA)
//   eps   added to both maxima (NC-Net uses 1e-5)
//   returns out, same shape: out = corr * (corr / (max_t + eps)) * (corr / (max_s + eps)), where max_t is the
//   maximum over target positions for each source position and max_s over source positions for each target.
//
// _mutual_matching_backward(grad, corr, eps) -> grad_corr. The maxima route their gradient to the first
// (lowest flat index) maximal entry, as torch.max(dim) does.
#pragma once
#include <ATen/core/Tensor.h>

namespace semcorr {

at::Tensor mutual_matching_cpu(const at::Tensor& corr, double eps);
at::Tensor mutual_matching_backward_cpu(const at::Tensor& grad, const at::Tensor& corr, double eps);

}  // namespace semcorr
