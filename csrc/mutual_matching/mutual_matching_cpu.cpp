// CPU kernels of mutual_matching: one pass for the row and column maxima, one for the output; the backward
// adds the gradient through the maxima to their (first) argmax entries, deterministically.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <vector>

#include "mutual_matching/mutual_matching.h"
#include "mutual_matching/mutual_matching_host.h"
#include "mutual_matching/mutual_matching_math.h"

namespace semcorr {
namespace {

template <typename T>
struct Maxima {
  std::vector<T> max_t, max_s;        // (B*Ns), (B*Nt)
  std::vector<int64_t> arg_t, arg_s;  // first maximal index
};

template <typename T>
Maxima<T> maxima(const T* c, int64_t B, int64_t Ns, int64_t Nt) {
  Maxima<T> m{std::vector<T>(B * Ns), std::vector<T>(B * Nt), std::vector<int64_t>(B * Ns),
              std::vector<int64_t>(B * Nt)};
  at::parallel_for(0, B * Ns, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const T* r = c + row * Nt;
      T best = r[0];
      int64_t bi = 0;
      for (int64_t t = 1; t < Nt; ++t)
        if (r[t] > best) { best = r[t]; bi = t; }
      m.max_t[row] = best;
      m.arg_t[row] = bi;
    }
  });
  // Column maxima: each task owns a slice of columns and walks the rows in order, so reads stay sequential.
  constexpr int64_t kChunk = 256;
  const int64_t chunks = (Nt + kChunk - 1) / kChunk;
  at::parallel_for(0, B * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t w = begin; w < end; ++w) {
      const int64_t b = w / chunks, t0 = (w % chunks) * kChunk, t1 = std::min(Nt, t0 + kChunk);
      T* mx = m.max_s.data() + b * Nt;
      int64_t* ax = m.arg_s.data() + b * Nt;
      const T* base = c + b * Ns * Nt;
      for (int64_t t = t0; t < t1; ++t) { mx[t] = base[t]; ax[t] = 0; }
      for (int64_t s = 1; s < Ns; ++s) {
        const T* r = base + s * Nt;
        for (int64_t t = t0; t < t1; ++t)
          if (r[t] > mx[t]) { mx[t] = r[t]; ax[t] = s; }
      }
    }
  });
  return m;
}

}  // namespace

at::Tensor mutual_matching_cpu(const at::Tensor& corr, double eps) {
  const auto d = mutual_matching_host::check_args(corr, eps, /*allow_half=*/false);
  if (corr.numel() == 0) return at::empty_like(corr);
  const auto c = corr.contiguous();
  auto out = at::empty(corr.sizes(), corr.options());
  AT_DISPATCH_FLOATING_TYPES(corr.scalar_type(), "mutual_matching_cpu", [&] {
    const scalar_t* cp = c.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const auto m = maxima(cp, d.B, d.Ns, d.Nt);
    const scalar_t e = static_cast<scalar_t>(eps);
    at::parallel_for(0, d.B * d.Ns, 16, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const scalar_t* ms = m.max_s.data() + (row / d.Ns) * d.Nt;
        for (int64_t t = 0; t < d.Nt; ++t)
          op[row * d.Nt + t] = mutual_filtered(cp[row * d.Nt + t], m.max_t[row], ms[t], e);
      }
    });
  });
  return out;
}

at::Tensor mutual_matching_backward_cpu(const at::Tensor& grad, const at::Tensor& corr, double eps) {
  const auto d = mutual_matching_host::check_args(corr, eps, /*allow_half=*/false);
  mutual_matching_host::check_backward_args(grad, corr);
  if (corr.numel() == 0) return at::empty_like(corr);
  const auto c = corr.contiguous();
  const auto g = grad.contiguous();
  auto gin = at::empty(corr.sizes(), corr.options());
  AT_DISPATCH_FLOATING_TYPES(corr.scalar_type(), "mutual_matching_backward_cpu", [&] {
    const scalar_t* cp = c.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* gi = gin.mutable_data_ptr<scalar_t>();
    const auto m = maxima(cp, d.B, d.Ns, d.Nt);
    const scalar_t e = static_cast<scalar_t>(eps);
    const int64_t Ns = d.Ns, Nt = d.Nt;
    // Direct term and the gradient through each row maximum (a row's tasks write only that row).
    at::parallel_for(0, d.B * Ns, 16, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const scalar_t mt = m.max_t[row];
        const scalar_t* ms = m.max_s.data() + (row / Ns) * Nt;
        scalar_t through_max = 0;
        for (int64_t t = 0; t < Nt; ++t) {
          const int64_t i = row * Nt + t;
          const scalar_t ci = cp[i];
          gi[i] = gp[i] * scalar_t(3) * (ci / (mt + e)) * (ci / (ms[t] + e));
          through_max += gp[i] * mutual_filtered(ci, mt, ms[t], e);
        }
        gi[row * Nt + m.arg_t[row]] -= through_max / (mt + e);
      }
    });
    // The gradient through each column maximum (a column's tasks write only that column).
    constexpr int64_t kChunk = 256;
    const int64_t chunks = (Nt + kChunk - 1) / kChunk;
    at::parallel_for(0, d.B * chunks, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> acc(kChunk);
      for (int64_t w = begin; w < end; ++w) {
        const int64_t b = w / chunks, t0 = (w % chunks) * kChunk, t1 = std::min(Nt, t0 + kChunk);
        std::fill(acc.begin(), acc.end(), scalar_t(0));
        const scalar_t* ms = m.max_s.data() + b * Nt;
        for (int64_t s = 0; s < Ns; ++s) {
          const int64_t row = b * Ns + s;
          for (int64_t t = t0; t < t1; ++t)
            acc[t - t0] += gp[row * Nt + t] * mutual_filtered(cp[row * Nt + t], m.max_t[row], ms[t], e);
        }
        for (int64_t t = t0; t < t1; ++t) gi[(b * Ns + m.arg_s[b * Nt + t]) * Nt + t] -= acc[t - t0] / (ms[t] + e);
      }
    });
  });
  return gin;
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("mutual_matching", &mutual_matching_cpu);
  m.impl("_mutual_matching_backward", &mutual_matching_backward_cpu);
}

}  // namespace semcorr
