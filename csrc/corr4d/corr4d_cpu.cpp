// CPU kernels of corr4d: the dot products are one batched BLAS GEMM on the raw features; normalisation is
// applied to the output in place (out = epilogue(raw * inv_s * inv_t)), so no normalised copy of either input
// is ever made and nothing beyond the output is allocated.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/bmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include "common/checks_cpu.h"
#include "corr4d/corr4d.h"
#include "corr4d/corr4d_cpu.h"
#include "corr4d/corr4d_host.h"
#include "corr4d/corr4d_math.h"

namespace semcorr {
namespace {

// The epilogue of a bfloat16 output in one pass: each raw dot product is read once, finished in float32 and
// rounded once (the in-place ATen ops below would round after every step).
void epilogue_bf16(at::Tensor& out, const at::Tensor& inv_s, const at::Tensor& inv_t, bool relu, double power) {
  const int64_t rows = out.size(0) * out.size(1), Ns = out.size(1), Nt = out.size(2);
  at::BFloat16* o = out.mutable_data_ptr<at::BFloat16>();
  const float* is = inv_s.const_data_ptr<float>();
  const float* it = inv_t.const_data_ptr<float>();
  const float p = static_cast<float>(power);
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float ns = is[row];
      const float* nt = it + (row / Ns) * Nt;
      at::BFloat16* orow = o + row * Nt;
      for (int64_t t = 0; t < Nt; ++t)
        orow[t] = corr_epilogue(static_cast<float>(orow[t]) * ns * nt[t], relu, p);
    }
  });
}

void check_dtype(const at::Tensor& src) { check_float_or_bf16(src, "semcorr::corr4d", "src"); }

}  // namespace

at::Tensor corr4d_cpu(const at::Tensor& src, const at::Tensor& tgt, bool normalize, bool relu, double power,
                      double eps, std::optional<at::ScalarType> out_dtype) {
  check_dtype(src);
  corr4d_host::check_args(src, tgt, relu, power, eps, /*allow_half=*/is_bf16(src));
  // float32 out of bfloat16 inputs: the float32 kernel on the inputs upcast (exactly: every bfloat16 is a float32),
  // so the products are exact and summed and finished in float32. MKL's cblas_gemm_bf16bf16f32 (in libtorch_cpu)
  // computes the same without the copies but was measured no faster on a 2-core AVX512 EPYC, 1 thread, C = 1024
  // (25x25 grids 8.7 ms vs 9.1 ms; 50x50 229 ms vs 164 ms; bfloat16 out: 2.3 / 32 ms): not worth a dlsym.
  if (out_dtype_of(src, out_dtype, "semcorr::corr4d") != src.scalar_type())
    return corr4d_cpu(src.to(at::kFloat), tgt.to(at::kFloat), normalize, relu, power, eps, std::nullopt);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * Nt == 0) return corr4d_host::empty_output(src, tgt);
  const auto src3 = src.contiguous().view({B, C, Ns});
  const auto tgt3 = tgt.contiguous().view({B, C, Nt});
  const auto inv_s = inv_norms_cpu(src3, normalize, eps);
  const auto inv_t = inv_norms_cpu(tgt3, normalize, eps);
  auto out = at::empty({B, Ns, Nt}, src.options());
  at::bmm_out(out, src3.transpose(1, 2), tgt3);
  if (is_bf16(src)) {
    epilogue_bf16(out, inv_s, inv_t, relu, power);
    return out.view({B, src.size(2), src.size(3), tgt.size(2), tgt.size(3)});
  }
  // The epilogue as in-place ATen element-wise ops: each is one vectorised pass over the output and
  // allocates nothing. A hand-written fused loop was measured slower: the compiler did not
  // vectorise the relu/power variants and branch mispredictions on the sign dominated.
  if (normalize) out.mul_(inv_s.unsqueeze(2)).mul_(inv_t.unsqueeze(1));
  if (relu) out.clamp_min_(0);
  if (power != 1.0) out.pow_(power);
  return out.view({B, src.size(2), src.size(3), tgt.size(2), tgt.size(3)});
}

std::tuple<at::Tensor, at::Tensor> corr4d_backward_cpu(const at::Tensor& grad, const at::Tensor& src,
                                                       const at::Tensor& tgt, const at::Tensor& out,
                                                       bool normalize, bool relu, double power, double eps) {
  check_dtype(src);
  corr4d_host::check_args(src, tgt, relu, power, eps, /*allow_half=*/is_bf16(src));
  corr4d_host::check_backward_args(grad, src, tgt, out);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * Nt * C == 0) return {at::zeros_like(src), at::zeros_like(tgt)};
  const auto src3 = src.contiguous().view({B, C, Ns});
  const auto tgt3 = tgt.contiguous().view({B, C, Nt});
  // The element-wise part runs in `acc` (float32 for bfloat16), only dp goes back to bfloat16 for the GEMMs.
  const auto acc = src.options().dtype(cpu_acc_dtype(src.scalar_type()));
  const auto g = grad.contiguous().view({B, Ns, Nt}).to(acc.dtype());
  const auto o = out.contiguous().view({B, Ns, Nt}).to(acc.dtype());
  const auto inv_s = inv_norms_cpu(src3, normalize, eps);
  const auto inv_t = inv_norms_cpu(tgt3, normalize, eps);
  auto dp = at::empty({B, Ns, Nt}, acc);
  auto rowsum = at::empty({B, Ns}, acc);
  auto colsum = at::zeros({B, Nt}, acc);
  AT_DISPATCH_FLOATING_TYPES(acc.dtype().toScalarType(), "corr4d_backward_cpu", [&] {
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const scalar_t* op = o.const_data_ptr<scalar_t>();
    const scalar_t* is = inv_s.const_data_ptr<scalar_t>();
    const scalar_t* it = inv_t.const_data_ptr<scalar_t>();
    scalar_t* dpp = dp.mutable_data_ptr<scalar_t>();
    scalar_t* rs = rowsum.mutable_data_ptr<scalar_t>();
    scalar_t* cs = colsum.mutable_data_ptr<scalar_t>();
    const scalar_t p = static_cast<scalar_t>(power);
    at::parallel_for(0, B * Ns, 16, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const scalar_t ns = is[row];
        const scalar_t* nt = it + (row / Ns) * Nt;
        const scalar_t* gr = gp + row * Nt;
        const scalar_t* orow = op + row * Nt;
        scalar_t* d = dpp + row * Nt;
        scalar_t sum = 0;
        for (int64_t t = 0; t < Nt; ++t) {
          d[t] = corr_epilogue_grad(gr[t], orow[t], relu, p) * ns * nt[t];
          sum += gr[t] * orow[t];
        }
        rs[row] = sum * p;
      }
    });
    if (normalize) {
      // Column sums: each task owns a slice of target positions and walks all rows (deterministic).
      constexpr int64_t kChunk = 512;
      const int64_t chunks = (Nt + kChunk - 1) / kChunk;
      at::parallel_for(0, B * chunks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t w = begin; w < end; ++w) {
          const int64_t b = w / chunks, t0 = (w % chunks) * kChunk, t1 = std::min(Nt, t0 + kChunk);
          scalar_t* c = cs + b * Nt;
          for (int64_t s = 0; s < Ns; ++s) {
            const scalar_t* gr = gp + (b * Ns + s) * Nt;
            const scalar_t* orow = op + (b * Ns + s) * Nt;
            for (int64_t t = t0; t < t1; ++t) c[t] += gr[t] * orow[t];
          }
          for (int64_t t = t0; t < t1; ++t) c[t] *= p;
        }
      });
    }
  });
  auto [gs, gt] = corr4d_host::finish_backward(src3, tgt3, dp.to(src.scalar_type()), normalize, inv_s, inv_t, rowsum,
                                               colsum);
  return {gs.view(src.sizes()), gt.view(tgt.sizes())};
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("corr4d", &corr4d_cpu);
  m.impl("_corr4d_backward", &corr4d_backward_cpu);
}

}  // namespace semcorr
