// CPU inverse feature norms shared by corr4d and corr4d_topk (both fold the L2 normalisation into their
// epilogue instead of making normalised copies of the inputs).
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/ones.h>

#include <algorithm>
#include <cmath>

namespace semcorr {
namespace corr4d_cpu_detail {

// inv[b, n] = 1 / sqrt(sum_c f[b, c, n]^2 + eps) for f (B, C, N) contiguous; n is the inner loop so it
// vectorises and reads memory in order. Accumulated and written in acc_t (float for bfloat16 features).
template <typename scalar_t, typename acc_t = at::opmath_type<scalar_t>>
void inv_norm(const at::Tensor& f, at::Tensor& inv, double eps) {
  const int64_t B = f.size(0), C = f.size(1), N = f.size(2);
  const scalar_t* fp = f.const_data_ptr<scalar_t>();
  acc_t* ip = inv.mutable_data_ptr<acc_t>();
  constexpr int64_t kChunk = 256;
  const int64_t chunks = (N + kChunk - 1) / kChunk;
  at::parallel_for(0, B * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      const int64_t b = w / chunks, n0 = (w % chunks) * kChunk, n1 = std::min(N, n0 + kChunk);
      acc_t acc[kChunk] = {};
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* row = fp + (b * C + c) * N;
        for (int64_t n = n0; n < n1; ++n) {
          const acc_t x = static_cast<acc_t>(row[n]);
          acc[n - n0] += x * x;
        }
      }
      for (int64_t n = n0; n < n1; ++n) ip[b * N + n] = acc_t(1) / std::sqrt(acc[n - n0] + acc_t(eps));
    }
  });
}

}  // namespace corr4d_cpu_detail

// The dtype the CPU kernels compute their epilogues in: float for bfloat16 inputs, else the input dtype.
inline at::ScalarType cpu_acc_dtype(at::ScalarType s) { return s == at::kBFloat16 ? at::kFloat : s; }

// (B, N) inverse norms of f3 (B, C, N) in cpu_acc_dtype, or ones when not normalising.
inline at::Tensor inv_norms_cpu(const at::Tensor& f3, bool normalize, double eps) {
  const auto opts = f3.options().dtype(cpu_acc_dtype(f3.scalar_type()));
  if (!normalize) return at::ones({f3.size(0), f3.size(2)}, opts);
  auto inv = at::empty({f3.size(0), f3.size(2)}, opts);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, f3.scalar_type(), "corr4d_inv_norm_cpu",
                             [&] { corr4d_cpu_detail::inv_norm<scalar_t>(f3, inv, eps); });
  return inv;
}

}  // namespace semcorr
