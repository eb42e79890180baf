// CPU inverse feature norms shared by corr4d and corr4d_topk (both fold the L2 normalisation into their
// epilogue instead of making normalised copies of the inputs).
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/ones.h>

#include <algorithm>
#include <cmath>

namespace semcorr {
namespace corr4d_cpu_detail {

// inv[b, n] = 1 / sqrt(sum_c f[b, c, n]^2 + eps) for f (B, C, N) contiguous; n is the inner loop so it
// vectorises and reads memory in order.
template <typename scalar_t>
void inv_norm(const at::Tensor& f, at::Tensor& inv, double eps) {
  const int64_t B = f.size(0), C = f.size(1), N = f.size(2);
  const scalar_t* fp = f.const_data_ptr<scalar_t>();
  scalar_t* ip = inv.mutable_data_ptr<scalar_t>();
  constexpr int64_t kChunk = 256;
  const int64_t chunks = (N + kChunk - 1) / kChunk;
  at::parallel_for(0, B * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      const int64_t b = w / chunks, n0 = (w % chunks) * kChunk, n1 = std::min(N, n0 + kChunk);
      scalar_t acc[kChunk] = {};
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* row = fp + (b * C + c) * N;
        for (int64_t n = n0; n < n1; ++n) acc[n - n0] += row[n] * row[n];
      }
      for (int64_t n = n0; n < n1; ++n) ip[b * N + n] = scalar_t(1) / std::sqrt(acc[n - n0] + scalar_t(eps));
    }
  });
}

}  // namespace corr4d_cpu_detail

// (B, N) inverse norms of f3 (B, C, N) in its dtype, or ones when not normalising.
inline at::Tensor inv_norms_cpu(const at::Tensor& f3, bool normalize, double eps) {
  if (!normalize) return at::ones({f3.size(0), f3.size(2)}, f3.options());
  auto inv = at::empty({f3.size(0), f3.size(2)}, f3.options());
  AT_DISPATCH_FLOATING_TYPES(f3.scalar_type(), "corr4d_inv_norm_cpu",
                             [&] { corr4d_cpu_detail::inv_norm<scalar_t>(f3, inv, eps); });
  return inv;
}

}  // namespace semcorr
