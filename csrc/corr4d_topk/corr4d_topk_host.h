// Host-side pieces of corr4d_topk shared by the CPU, CUDA and emulated backends: argument checks and the
// empty outputs.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>

#include <vector>

#include "common/checks.h"
#include "corr4d_topk/corr4d_topk.h"

namespace semcorr {
namespace corr4d_topk_host {

inline void check_args(const at::Tensor& src, const at::Tensor& tgt, int64_t k, double eps, bool cuda_kernel,
                       const char* op = "semcorr::corr4d_topk") {
  // bfloat16 passes on every backend: the CPU kernel refuses float16 itself, with its own message.
  check_feature_maps(src, tgt, op, /*allow_half=*/cuda_kernel || src.scalar_type() == at::kBFloat16);
  const int64_t Nt = tgt.size(2) * tgt.size(3);
  TORCH_CHECK(k >= 0 && k <= Nt, op, ": `k` must be in [0, Ht*Wt] = [0, ", Nt, "], got k=", k, " (tgt shape ",
              shape_str(tgt), ")");
  TORCH_CHECK(!cuda_kernel || k <= kTopkMaxK, op, ": `k` must be <= ", kTopkMaxK,
              " on CUDA (the kernel keeps each row's top-k in shared memory), got k=", k);
  TORCH_CHECK(!cuda_kernel || Nt <= 2147483647, op, ": Ht*Wt must be < 2^31 on CUDA, got ", Nt);
  TORCH_CHECK(eps >= 0.0, op, ": `eps` must be >= 0, got ", eps);
}

// Sizes of a backward: Ns = Hs*Ws, Nt = Ht*Wt, k = values' last size.
struct BackwardDims {
  int64_t B, C, Ns, Nt, k;
};

// Every check of the backward (the forward's on src, tgt and k = values' last size, then the gradient's own) and
// its sizes.
inline BackwardDims check_backward_args(const at::Tensor& grad, const at::Tensor& src, const at::Tensor& tgt,
                                        const at::Tensor& values, const at::Tensor& indices, double eps,
                                        bool cuda_kernel) {
  constexpr const char* op = "semcorr::_corr4d_topk_backward";
  check_args(src, tgt, values.dim() == 4 ? values.size(3) : 0, eps, cuda_kernel, op);
  const int64_t k = values.dim() == 4 ? values.size(3) : -1;
  const std::vector<int64_t> shape{src.size(0), src.size(2), src.size(3), k};
  TORCH_CHECK(values.sizes() == shape, op, ": `values` must have shape (B, Hs, Ws, k) = ",
              c10::IntArrayRef(shape), ", got ", shape_str(values));
  TORCH_CHECK(grad.sizes() == shape, op, ": `grad` must have shape ", c10::IntArrayRef(shape), ", got ",
              shape_str(grad));
  TORCH_CHECK(indices.sizes() == shape, op, ": `indices` must have shape ", c10::IntArrayRef(shape), ", got ",
              shape_str(indices));
  TORCH_CHECK(indices.scalar_type() == at::kLong, op, ": `indices` must be int64, got ", indices.scalar_type());
  check_same_dtype(grad, src, op, "grad", "src");
  check_same_dtype(values, src, op, "values", "src");
  check_same_device(grad, src, op, "grad", "src");
  check_same_device(values, src, op, "values", "src");
  check_same_device(indices, src, op, "indices", "src");
  return {src.size(0), src.size(1), src.size(2) * src.size(3), tgt.size(2) * tgt.size(3), values.size(3)};
}

// Outputs when B*Hs*Ws*k == 0, or when C == 0 (every correlation is 0: the first k target indices).
inline std::tuple<at::Tensor, at::Tensor> trivial_output(const at::Tensor& src, int64_t k) {
  const int64_t B = src.size(0), Hs = src.size(2), Ws = src.size(3);
  auto values = at::zeros({B, Hs, Ws, k}, src.options());
  auto indices = at::arange(k, src.options().dtype(at::kLong)).view({1, 1, 1, k}).expand({B, Hs, Ws, k}).contiguous();
  return {values, indices};
}

}  // namespace corr4d_topk_host
}  // namespace semcorr
