// CPU kernels of corr4d_topk. Forward: for each batch and chunk of source rows, a loop over tiles of target
// positions; each tile of raw dot products is one BLAS GEMM (at::mm into a reused buffer), then every row
// merges the tile into its running top-k list (written in place in the outputs) with the inverse norms
// applied on the fly. Extra memory: one Sc x T tile (<= 1M elements) + the outputs.
// Backward: deterministic gathers/scatters in a channel-last layout (no atomics, fixed summation order).
// bfloat16: the tiles are bfloat16 GEMMs (oneDNN, float32 accumulation), but a tile rounded to bfloat16 (8
// significant bits) ties near-equal scores and so misranks them: each row keeps a longer list (k + kRescoreExtra)
// by the tile values, whose entries are then rescored exactly (float32 dot products of the bfloat16 features)
// and ranked again, so the selection is float32's unless more than kRescoreExtra scores tie at the k-th value.
// The norms, the lists and the backward (which has no GEMM) are float32; values are rounded once at the end.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "common/checks_cpu.h"
#include "corr4d/corr4d_cpu.h"
#include "corr4d_topk/corr4d_topk.h"
#include "corr4d_topk/corr4d_topk_math.h"
#include "corr4d_topk/corr4d_topk_host.h"

namespace semcorr {
namespace {

constexpr int64_t kRowChunk = 1024;     // source rows per GEMM tile
constexpr int64_t kTileElems = 1 << 20;  // elements of the GEMM tile buffer
constexpr int64_t kRescoreExtra = 32;    // bfloat16: candidates kept beyond k for the exact rescoring

// bfloat16: rescores the kk candidates of each row (lists in vals/idx, (B, Ns, kk) float32/int64) with exact
// float32 dot products and returns the k best as (values float32, indices), ranked like topk_insert.
std::tuple<at::Tensor, at::Tensor> rescore_bf16(const at::Tensor& src3, const at::Tensor& tgt3, const at::Tensor& vals,
                                                const at::Tensor& idx, const at::Tensor& inv_s,
                                                const at::Tensor& inv_t, int64_t k) {
  const int64_t B = src3.size(0), C = src3.size(1), Ns = src3.size(2), Nt = tgt3.size(2), kk = vals.size(2);
  const auto srcT = src3.transpose(1, 2).contiguous();  // (B, Ns, C): one row per source position
  const auto tgtT = tgt3.transpose(1, 2).contiguous();  // (B, Nt, C)
  auto out_v = at::empty({B, Ns, k}, vals.options());
  auto out_i = at::empty({B, Ns, k}, idx.options());
  const at::BFloat16* sp = srcT.const_data_ptr<at::BFloat16>();
  const at::BFloat16* tp = tgtT.const_data_ptr<at::BFloat16>();
  const int64_t* ip = idx.const_data_ptr<int64_t>();
  const float* is = inv_s.const_data_ptr<float>();
  const float* it = inv_t.const_data_ptr<float>();
  float* ov = out_v.mutable_data_ptr<float>();
  int64_t* oi = out_i.mutable_data_ptr<int64_t>();
  at::parallel_for(0, B * Ns, 8, [&](int64_t begin, int64_t end) {
    std::vector<float> srow(C);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / Ns;
      for (int64_t c = 0; c < C; ++c) srow[c] = static_cast<float>(sp[row * C + c]);
      float* rv = ov + row * k;
      int64_t* ri = oi + row * k;
      std::fill(rv, rv + k, -std::numeric_limits<float>::infinity());
      std::fill(ri, ri + k, std::numeric_limits<int64_t>::max());
      for (int64_t r = 0; r < kk; ++r) {
        const int64_t t = ip[row * kk + r];
        if (t < 0 || t >= Nt) continue;  // never: kk <= Nt and every row saw all Nt targets
        const at::BFloat16* trow = tp + (b * Nt + t) * C;
        float dot = 0.f;
        for (int64_t c = 0; c < C; ++c) dot += srow[c] * static_cast<float>(trow[c]);
        topk_insert(rv, ri, k, dot * is[row] * it[b * Nt + t], t);
      }
    }
  });
  return {out_v, out_i};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> corr4d_topk_cpu(const at::Tensor& src, const at::Tensor& tgt, int64_t k,
                                                   bool normalize, double eps) {
  check_float_or_bf16(src, "semcorr::corr4d_topk", "src");
  corr4d_topk_host::check_args(src, tgt, k, eps, /*cuda_kernel=*/false);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * k == 0 || C == 0) return corr4d_topk_host::trivial_output(src, k);
  const auto src3 = src.contiguous().view({B, C, Ns});
  const auto tgt3 = tgt.contiguous().view({B, C, Nt});
  const auto inv_s = inv_norms_cpu(src3, normalize, eps);
  const auto inv_t = inv_norms_cpu(tgt3, normalize, eps);
  const int64_t kk = is_bf16(src) ? std::min(Nt, k + kRescoreExtra) : k;  // the length of the running lists
  auto values = at::empty({B, Ns, kk}, src.options().dtype(cpu_acc_dtype(src.scalar_type())));
  auto indices = at::empty({B, Ns, kk}, src.options().dtype(at::kLong));
  const int64_t Sc = std::min(Ns, kRowChunk);
  const int64_t T = std::min(Nt, std::max<int64_t>(64, kTileElems / Sc));
  auto buf = at::empty({Sc * T}, src.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, src.scalar_type(), "corr4d_topk_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    acc_t* vp = values.mutable_data_ptr<acc_t>();
    int64_t* ip = indices.mutable_data_ptr<int64_t>();
    const acc_t* is = inv_s.const_data_ptr<acc_t>();
    const acc_t* it = inv_t.const_data_ptr<acc_t>();
    for (int64_t e = 0; e < B * Ns * kk; ++e) {
      vp[e] = -std::numeric_limits<acc_t>::infinity();
      ip[e] = std::numeric_limits<int64_t>::max();
    }
    for (int64_t b = 0; b < B; ++b) {
      const auto srcT = src3[b].transpose(0, 1);  // (Ns, C) view: BLAS reads it transposed, no copy
      const auto tgtb = tgt3[b];
      for (int64_t s0 = 0; s0 < Ns; s0 += Sc) {
        const int64_t sc = std::min(Sc, Ns - s0);
        for (int64_t t0 = 0; t0 < Nt; t0 += T) {
          const int64_t tc = std::min(T, Nt - t0);
          auto tile = buf.narrow(0, 0, sc * tc).view({sc, tc});
          at::mm_out(tile, srcT.narrow(0, s0, sc), tgtb.narrow(1, t0, tc));
          const scalar_t* tp = tile.const_data_ptr<scalar_t>();
          at::parallel_for(0, sc, 8, [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) {
              const int64_t row = b * Ns + s0 + r;
              const acc_t ns = is[row];
              const acc_t* nt = it + b * Nt + t0;
              const scalar_t* trow = tp + r * tc;
              acc_t* rv = vp + row * kk;
              int64_t* ri = ip + row * kk;
              for (int64_t t = 0; t < tc; ++t)
                topk_insert(rv, ri, kk, static_cast<acc_t>(trow[t]) * ns * nt[t], t0 + t);
            }
          });
        }
      }
    }
  });
  if (is_bf16(src)) std::tie(values, indices) = rescore_bf16(src3, tgt3, values, indices, inv_s, inv_t, k);
  return {values.to(src.scalar_type()).view({B, src.size(2), src.size(3), k}),
          indices.view({B, src.size(2), src.size(3), k})};
}

std::tuple<at::Tensor, at::Tensor> corr4d_topk_backward_cpu(const at::Tensor& grad, const at::Tensor& src,
                                                            const at::Tensor& tgt, const at::Tensor& values,
                                                            const at::Tensor& indices, bool normalize, double eps) {
  check_float_or_bf16(src, "semcorr::_corr4d_topk_backward", "src");
  if (is_bf16(src)) {  // no GEMM here: the whole backward in float32, rounded once
    const auto f = [](const at::Tensor& t) { return t.to(at::kFloat); };
    auto [gs, gt] = corr4d_topk_backward_cpu(f(grad), f(src), f(tgt), f(values), indices, normalize, eps);
    return {gs.to(at::kBFloat16), gt.to(at::kBFloat16)};
  }
  const auto [B, C, Ns, Nt, k] =
      corr4d_topk_host::check_backward_args(grad, src, tgt, values, indices, eps, /*cuda_kernel=*/false);
  if (B * Ns * k * C == 0) return {at::zeros_like(src), at::zeros_like(tgt)};
  const auto idx = indices.contiguous();
  {
    const int64_t* p = idx.const_data_ptr<int64_t>();
    for (int64_t e = 0; e < B * Ns * k; ++e)
      TORCH_CHECK(p[e] >= 0 && p[e] < Nt, "semcorr::_corr4d_topk_backward: `indices` must be in [0, Ht*Wt) = [0, ",
                  Nt, "), got ", p[e]);
  }
  const auto src3 = src.contiguous().view({B, C, Ns});
  const auto tgt3 = tgt.contiguous().view({B, C, Nt});
  const auto srcT = src3.transpose(1, 2).contiguous();  // (B, Ns, C): channel-last rows
  const auto tgtT = tgt3.transpose(1, 2).contiguous();  // (B, Nt, C)
  const auto inv_s = inv_norms_cpu(src3, normalize, eps);
  const auto inv_t = inv_norms_cpu(tgt3, normalize, eps);
  const auto g = grad.contiguous();
  const auto v = values.contiguous();
  auto gsT = at::empty({B, Ns, C}, src.options());
  auto gtT = at::zeros({B, Nt, C}, src.options());
  auto colsum = at::zeros({B, Nt}, src.options());
  AT_DISPATCH_FLOATING_TYPES(src.scalar_type(), "corr4d_topk_backward_cpu", [&] {
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const scalar_t* vp = v.const_data_ptr<scalar_t>();
    const int64_t* ip = idx.const_data_ptr<int64_t>();
    const scalar_t* is = inv_s.const_data_ptr<scalar_t>();
    const scalar_t* it = inv_t.const_data_ptr<scalar_t>();
    const scalar_t* sp = srcT.const_data_ptr<scalar_t>();
    const scalar_t* tp = tgtT.const_data_ptr<scalar_t>();
    scalar_t* gs = gsT.mutable_data_ptr<scalar_t>();
    scalar_t* gt = gtT.mutable_data_ptr<scalar_t>();
    scalar_t* cs = colsum.mutable_data_ptr<scalar_t>();
    // grad_src[s] = inv_s * sum_r g_r inv_t[t_r] tgt[t_r] - inv_s^2 (sum_r g_r S_r) src[s]
    at::parallel_for(0, B * Ns, 4, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / Ns;
        const scalar_t ns = is[row];
        scalar_t* out = gs + row * C;
        std::fill(out, out + C, scalar_t(0));
        scalar_t rs = 0;
        for (int64_t r = 0; r < k; ++r) {
          const int64_t t = ip[row * k + r];
          const scalar_t gr = gp[row * k + r];
          const scalar_t coef = gr * ns * it[b * Nt + t];
          const scalar_t* trow = tp + (b * Nt + t) * C;
          for (int64_t c = 0; c < C; ++c) out[c] += coef * trow[c];
          rs += gr * vp[row * k + r];
        }
        if (normalize) {
          const scalar_t f = ns * ns * rs;
          const scalar_t* srow = sp + row * C;
          for (int64_t c = 0; c < C; ++c) out[c] -= f * srow[c];
        }
      }
    });
    if (normalize) {
      at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b)
          for (int64_t e = b * Ns * k; e < (b + 1) * Ns * k; ++e) cs[b * Nt + ip[e]] += gp[e] * vp[e];
      });
    }
    // grad_tgt[t] = sum over (s, r) with t_r = t of g inv_s inv_t[t] src[s] - inv_t^2 colsum[t] tgt[t]; each
    // task owns a channel slice and walks the pairs in order (deterministic, no atomics).
    constexpr int64_t kCh = 64;
    const int64_t chunks = (C + kCh - 1) / kCh;
    at::parallel_for(0, B * chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t w = begin; w < end; ++w) {
        const int64_t b = w / chunks, c0 = (w % chunks) * kCh, c1 = std::min(C, c0 + kCh);
        for (int64_t s = 0; s < Ns; ++s) {
          const int64_t row = b * Ns + s;
          const scalar_t* srow = sp + row * C;
          for (int64_t r = 0; r < k; ++r) {
            const int64_t t = ip[row * k + r];
            const scalar_t coef = gp[row * k + r] * is[row] * it[b * Nt + t];
            scalar_t* out = gt + (b * Nt + t) * C;
            for (int64_t c = c0; c < c1; ++c) out[c] += coef * srow[c];
          }
        }
        if (normalize) {
          for (int64_t t = 0; t < Nt; ++t) {
            const scalar_t nt = it[b * Nt + t];
            const scalar_t f = nt * nt * cs[b * Nt + t];
            const scalar_t* trow = tp + (b * Nt + t) * C;
            scalar_t* out = gt + (b * Nt + t) * C;
            for (int64_t c = c0; c < c1; ++c) out[c] -= f * trow[c];
          }
        }
      }
    });
  });
  return {gsT.transpose(1, 2).contiguous().view(src.sizes()), gtT.transpose(1, 2).contiguous().view(tgt.sizes())};
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("corr4d_topk", &corr4d_topk_cpu);
  m.impl("_corr4d_topk_backward", &corr4d_topk_backward_cpu);
}

}  // namespace semcorr
