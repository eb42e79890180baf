// CPU kernels of kernel_soft_argmax. Rows (source positions) are processed in parallel; each row is read
// twice while it is hot in cache: pass 1 finds the squared norm and the argmax, pass 2 forms u = g * s and its
// maximum, then exp(beta * (u - max)) and the weighted sums. The Gaussian is separable, so a row needs only
// Ht + Wt exponentials for the kernel. The backward recomputes p (no probabilities are stored) and writes
// dL/dcorr in one more pass. float32 rows run a vectorisable exponential in an AVX2 clone when the CPU has it.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernel_soft_argmax/kernel_soft_argmax.h"
#include "kernel_soft_argmax/kernel_soft_argmax_host.h"
#include "kernel_soft_argmax/kernel_soft_argmax_math.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
// AVX2 and baseline clones of the float32 row loops, chosen at load time (ifunc).
#define KSA_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KSA_CLONES
#endif
#define KSA_INLINE inline __attribute__((always_inline))

namespace semcorr {
namespace {

// exp(x) for x <= 0 (arguments are max-subtracted), branch-free so that loops over it vectorise: Cephes'
// expf polynomial (degree 6 on [-ln2/2, ln2/2], ~1 ulp) after rounding x / ln 2 to the nearest integer n with the
// 1.5 * 2^23 trick (n is read from the mantissa bits), times 2^n built in the exponent bits. For x < -87, n is
// clamped to -126 (the result is then ~1e-38 instead of smaller: negligible next to the row's maximum term, 1).
// Integer clamp (no float compare), so the loops if-convert and vectorise under strict IEEE flags.
KSA_INLINE float exp_nonpos(float x) {
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float fn = shifted - 12582912.0f;
  const int n0 = __builtin_bit_cast(int, shifted) - 0x4B400000;
  const int n = n0 > -126 ? n0 : -126;
  float r = x - fn * 0.693359375f;
  r = r + fn * 2.12194440e-4f;
  const float r2 = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r2 + r + 1.0f;
  return y * __builtin_bit_cast(float, (n + 127) << 23);
}
KSA_INLINE double exp_nonpos(double x) { return std::exp(x); }

template <typename T>
struct Geometry {
  int64_t Ht, Wt;
  std::vector<T> X, Y;  // linspace(-1, 1, Wt), linspace(-1, 1, Ht)
  Geometry(int64_t ht, int64_t wt) : Ht(ht), Wt(wt), X(wt), Y(ht) {
    for (int64_t i = 0; i < wt; ++i) X[i] = ksa_coord<T>(i, wt);
    for (int64_t i = 0; i < ht; ++i) Y[i] = ksa_coord<T>(i, ht);
  }
};

// Per-thread scratch for one row: the row's exp terms and the Gaussian's two factors.
template <typename T>
struct Scratch {
  std::vector<T> e, gx, gy;
  Scratch(int64_t Ht, int64_t Wt) : e(Ht * Wt), gx(Wt), gy(Ht) {}
};

// What pass 1 and pass 2 leave for the output / backward.
template <typename T>
struct RowResult {
  T inv;   // 1 / sqrt(sum c^2 + eps) (1 without normalisation)
  T umax;  // max of u = g * s
  T S;     // sum exp(beta (u - umax))
  T ox, oy;
};

template <typename T>
KSA_INLINE RowResult<T> row_forward(const T* __restrict__ c, const Geometry<T>& geo, const KsaParams<T>& prm,
                                    Scratch<T>& sc) {
  const int64_t Ht = geo.Ht, Wt = geo.Wt, N = Ht * Wt;
  // pass 1: squared norm and maximum, then the first index holding the maximum
  T ss = 0, cmax = c[0];
#pragma omp simd reduction(+ : ss) reduction(max : cmax)
  for (int64_t t = 0; t < N; ++t) {
    ss += c[t] * c[t];
    cmax = c[t] > cmax ? c[t] : cmax;
  }
  int64_t arg = 0;
  while (arg < N - 1 && !(c[arg] == cmax)) ++arg;
  const T inv = prm.normalize ? ksa_rsqrt(ss + static_cast<T>(kKsaNormEps)) : T(1);
  const int64_t y0 = arg / Wt, x0 = arg % Wt;
  T* __restrict__ gx = sc.gx.data();
  T* __restrict__ gy = sc.gy.data();
  for (int64_t x = 0; x < Wt; ++x) gx[x] = ksa_gauss1<T>(x - x0, prm.inv2s2, prm.kernel);
  for (int64_t y = 0; y < Ht; ++y) gy[y] = ksa_gauss1<T>(y - y0, prm.inv2s2, prm.kernel);
  // pass 2: u = g * s into the scratch row, and its maximum
  T* __restrict__ e = sc.e.data();
  T umax = -std::numeric_limits<T>::max();
  for (int64_t y = 0; y < Ht; ++y) {
    const T* __restrict__ cr = c + y * Wt;
    T* __restrict__ er = e + y * Wt;
    const T gyv = gy[y];
#pragma omp simd reduction(max : umax)
    for (int64_t x = 0; x < Wt; ++x) {
      const T u = (gyv * gx[x]) * (cr[x] * inv);
      er[x] = u;
      umax = u > umax ? u : umax;
    }
  }
  // exp over the whole row (one long vectorised loop), then the weighted sums from the cached terms
  const T beta = prm.beta;
  const T* __restrict__ X = geo.X.data();
  const int64_t Nn = N;
#pragma omp simd
  for (int64_t t = 0; t < Nn; ++t) e[t] = exp_nonpos(beta * (e[t] - umax));
  T S = 0, Sx = 0, Sy = 0;
  for (int64_t y = 0; y < Ht; ++y) {
    const T* __restrict__ er = e + y * Wt;
    T sr = 0, sxr = 0;
#pragma omp simd reduction(+ : sr, sxr)
    for (int64_t x = 0; x < Wt; ++x) {
      sr += er[x];
      sxr += er[x] * X[x];
    }
    S += sr;
    Sx += sxr;
    Sy += sr * geo.Y[y];
  }
  return {inv, umax, S, Sx / S, Sy / S};
}

template <typename T>
KSA_INLINE void rows_forward(const T* c, T* out, int64_t r0, int64_t r1, int64_t Ht, int64_t Wt,
                             const KsaParams<T>& prm) {
  const Geometry<T> geo(Ht, Wt);
  Scratch<T> sc(Ht, Wt);
  for (int64_t r = r0; r < r1; ++r) {
    const auto res = row_forward(c + r * Ht * Wt, geo, prm, sc);
    out[2 * r] = res.ox;
    out[2 * r + 1] = res.oy;
  }
}

// dL/du_t = beta p_t (gx (X_t - ox) + gy (Y_t - oy)); dL/ds_t = g_t dL/du_t;
// dL/dc_t = inv (dL/ds_t - s_t sum_j dL/ds_j s_j) with normalisation, dL/ds_t without.
template <typename T>
KSA_INLINE void rows_backward(const T* g, const T* c, T* gin, int64_t r0, int64_t r1, int64_t Ht, int64_t Wt,
                              const KsaParams<T>& prm) {
  const Geometry<T> geo(Ht, Wt);
  Scratch<T> sc(Ht, Wt);
  const T* __restrict__ X = geo.X.data();
  for (int64_t r = r0; r < r1; ++r) {
    const T* __restrict__ cr0 = c + r * Ht * Wt;
    T* __restrict__ gr0 = gin + r * Ht * Wt;
    const auto res = row_forward(cr0, geo, prm, sc);
    const T gox = g[2 * r], goy = g[2 * r + 1];
    const T k = prm.beta / res.S;
    const T inv = res.inv;
    T A = 0;  // sum_t dL/ds_t * s_t
    for (int64_t y = 0; y < Ht; ++y) {
      const T* __restrict__ er = sc.e.data() + y * Wt;
      const T* __restrict__ cr = cr0 + y * Wt;
      T* __restrict__ gr = gr0 + y * Wt;
      const T gyv = sc.gy[y];
      const T wy = goy * (geo.Y[y] - res.oy);
      const T* __restrict__ gx = sc.gx.data();
      T Ar = 0;
#pragma omp simd reduction(+ : Ar)
      for (int64_t x = 0; x < Wt; ++x) {
        const T ds = (gyv * gx[x]) * k * er[x] * (gox * (X[x] - res.ox) + wy);
        gr[x] = ds;
        Ar += ds * (cr[x] * inv);
      }
      A += Ar;
    }
    if (prm.normalize) {
      const int64_t N = Ht * Wt;
#pragma omp simd
      for (int64_t t = 0; t < N; ++t) gr0[t] = inv * (gr0[t] - (cr0[t] * inv) * A);
    }
  }
}

KSA_CLONES void forward_f32(const float* c, float* out, int64_t r0, int64_t r1, int64_t Ht, int64_t Wt,
                            const KsaParams<float>& prm) {
  rows_forward(c, out, r0, r1, Ht, Wt, prm);
}
KSA_CLONES void backward_f32(const float* g, const float* c, float* gin, int64_t r0, int64_t r1, int64_t Ht,
                             int64_t Wt, const KsaParams<float>& prm) {
  rows_backward(g, c, gin, r0, r1, Ht, Wt, prm);
}
void forward_f64(const double* c, double* out, int64_t r0, int64_t r1, int64_t Ht, int64_t Wt,
                 const KsaParams<double>& prm) {
  rows_forward(c, out, r0, r1, Ht, Wt, prm);
}
void backward_f64(const double* g, const double* c, double* gin, int64_t r0, int64_t r1, int64_t Ht, int64_t Wt,
                  const KsaParams<double>& prm) {
  rows_backward(g, c, gin, r0, r1, Ht, Wt, prm);
}

inline void forward_rows(const float* c, float* o, int64_t a, int64_t b, int64_t h, int64_t w,
                         const KsaParams<float>& p) { forward_f32(c, o, a, b, h, w, p); }
inline void forward_rows(const double* c, double* o, int64_t a, int64_t b, int64_t h, int64_t w,
                         const KsaParams<double>& p) { forward_f64(c, o, a, b, h, w, p); }
inline void backward_rows(const float* g, const float* c, float* o, int64_t a, int64_t b, int64_t h, int64_t w,
                          const KsaParams<float>& p) { backward_f32(g, c, o, a, b, h, w, p); }
inline void backward_rows(const double* g, const double* c, double* o, int64_t a, int64_t b, int64_t h, int64_t w,
                          const KsaParams<double>& p) { backward_f64(g, c, o, a, b, h, w, p); }

// Rows per task: enough work (~16k elements) to amortise the per-task scratch.
inline int64_t grain(int64_t N) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(N, 1)); }

}  // namespace

at::Tensor kernel_soft_argmax_cpu(const at::Tensor& corr, double beta, double sigma, bool normalize) {
  const auto d = kernel_soft_argmax_host::check_args(corr, beta, sigma, /*allow_half=*/false);
  auto out = kernel_soft_argmax_host::output_like(corr);
  if (d.rows() == 0) return out;
  const auto c = corr.contiguous();
  AT_DISPATCH_FLOATING_TYPES(corr.scalar_type(), "kernel_soft_argmax_cpu", [&] {
    const auto prm = ksa_params<scalar_t>(beta, sigma, normalize);
    const scalar_t* cp = c.const_data_ptr<scalar_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, d.rows(), grain(d.n()), [&](int64_t r0, int64_t r1) {
      forward_rows(cp, op, r0, r1, d.Ht, d.Wt, prm);
    });
  });
  return out;
}

at::Tensor kernel_soft_argmax_backward_cpu(const at::Tensor& grad, const at::Tensor& corr, double beta, double sigma,
                                           bool normalize) {
  const auto d = kernel_soft_argmax_host::check_args(corr, beta, sigma, /*allow_half=*/false);
  kernel_soft_argmax_host::check_backward_args(grad, corr);
  auto gin = at::empty(corr.sizes(), corr.options());
  if (corr.numel() == 0) return gin;
  const auto c = corr.contiguous();
  const auto g = grad.contiguous();
  AT_DISPATCH_FLOATING_TYPES(corr.scalar_type(), "kernel_soft_argmax_backward_cpu", [&] {
    const auto prm = ksa_params<scalar_t>(beta, sigma, normalize);
    const scalar_t* cp = c.const_data_ptr<scalar_t>();
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    scalar_t* op = gin.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, d.rows(), grain(d.n()), [&](int64_t r0, int64_t r1) {
      backward_rows(gp, cp, op, r0, r1, d.Ht, d.Wt, prm);
    });
  });
  return gin;
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("kernel_soft_argmax", &kernel_soft_argmax_cpu);
  m.impl("_kernel_soft_argmax_backward", &kernel_soft_argmax_backward_cpu);
}

}  // namespace semcorr
