// CUDA kernels of kernel_soft_argmax, torch-free (also compiled under the host emulator).
// corr (rows, N = Ht*Wt) contiguous, rows = B*Hs*Ws; out / grad (rows, 2); grad_in (rows, N).
// One warp per source position (row): blockDim = (32, kWarpsPerBlock), row = blockIdx.x * kWarpsPerBlock +
// threadIdx.y. Lanes stride over the row; reductions are warp shuffles only (no shared memory, no atomics,
// deterministic). Everything is accumulated in acc_t (float for float16/bfloat16/float32).
//   pass 1: sum of squares and the first argmax;
//   pass 2: online max-subtracted softmax of u = g * s (per lane running max m with rescaled sums
//           S = sum exp(beta (u - m)), Sx, Sy), merged across lanes by rescaling to the warp maximum;
//   backward: passes 1-2 again, then (with normalisation) A = sum dL/ds * s, then the gradient.
#pragma once
#include "common/reduce.cuh"
#include "kernel_soft_argmax/kernel_soft_argmax_math.h"

namespace semcorr {
namespace kernel_soft_argmax_kernels {

constexpr int kWarpsPerBlock = 8;

template <typename T> __device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const T o = __shfl_xor_sync(0xffffffffu, v, off);
    v = o > v ? o : v;
  }
  return v;
}

template <typename acc_t> struct RowState {
  acc_t inv;     // 1 / sqrt(sum c^2 + eps), 1 without normalisation
  int64_t arg;   // first maximal target index
  acc_t m;       // max of u = g * s
  acc_t S;       // sum exp(beta (u - m))
  acc_t ox, oy;  // expected coordinates
};

template <typename acc_t>
__device__ __forceinline__ acc_t gauss(int64_t t, int64_t Wt, int64_t arg, const KsaParams<acc_t>& prm) {
  if (!prm.kernel) return acc_t(1);
  const acc_t dx = static_cast<acc_t>(t % Wt - arg % Wt), dy = static_cast<acc_t>(t / Wt - arg / Wt);
  return ksa_exp(-(dx * dx + dy * dy) * prm.inv2s2);
}

// Passes 1 and 2 for one row; the result is valid in every lane.
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ RowState<acc_t> row_state(const scalar_t* __restrict__ c, int64_t Ht, int64_t Wt,
                                                     const KsaParams<acc_t>& prm, int lane) {
  const int64_t N = Ht * Wt;
  RowState<acc_t> st;
  // pass 1
  acc_t ss = 0;
  acc_t best = static_cast<acc_t>(c[lane < N ? lane : 0]);
  int64_t bi = lane < N ? static_cast<int64_t>(lane) : N;  // a lane without elements loses every comparison
  for (int64_t t = lane; t < N; t += 32) {
    const acc_t v = static_cast<acc_t>(c[t]);
    ss += v * v;
    if (v > best) { best = v; bi = t; }  // t increases: this lane keeps its first maximum
  }
  ss = warp_sum(ss);
  warp_argmax(best, bi);
  st.arg = bi;
  st.inv = prm.normalize ? ksa_rsqrt(ss + static_cast<acc_t>(kKsaNormEps)) : acc_t(1);
  // pass 2
  const acc_t lowest = -(sizeof(acc_t) == 4 ? acc_t(3.0e38f) : acc_t(1.0e308));
  acc_t m = lowest, S = 0, Sx = 0, Sy = 0;
  for (int64_t t = lane; t < N; t += 32) {
    const acc_t u = gauss(t, Wt, bi, prm) * (static_cast<acc_t>(c[t]) * st.inv);
    if (u > m) {
      const acc_t r = ksa_exp(prm.beta * (m - u));
      S *= r; Sx *= r; Sy *= r;
      m = u;
    }
    const acc_t e = ksa_exp(prm.beta * (u - m));
    S += e;
    Sx += e * ksa_coord<acc_t>(t % Wt, Wt);
    Sy += e * ksa_coord<acc_t>(t / Wt, Ht);
  }
  const acc_t mw = warp_max(m);
  const acc_t r = ksa_exp(prm.beta * (m - mw));  // 0 for a lane that saw no element (m = lowest, S = 0)
  S = warp_sum(S * r);
  Sx = warp_sum(Sx * r);
  Sy = warp_sum(Sy * r);
  st.m = mw;
  st.S = S;
  st.ox = Sx / S;
  st.oy = Sy / S;
  return st;
}

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ corr, scalar_t* __restrict__ out, int64_t rows,
                               int64_t Ht, int64_t Wt, KsaParams<acc_t> prm) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (row >= rows) return;  // whole warps leave together
  const int lane = threadIdx.x;
  const auto st = row_state<scalar_t, acc_t>(corr + row * Ht * Wt, Ht, Wt, prm, lane);
  if (lane == 0) {
    out[2 * row] = static_cast<scalar_t>(st.ox);
    out[2 * row + 1] = static_cast<scalar_t>(st.oy);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void backward_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ corr,
                                scalar_t* __restrict__ grad_in, int64_t rows, int64_t Ht, int64_t Wt,
                                KsaParams<acc_t> prm) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (row >= rows) return;
  const int lane = threadIdx.x;
  const int64_t N = Ht * Wt;
  const scalar_t* __restrict__ c = corr + row * N;
  scalar_t* __restrict__ gi = grad_in + row * N;
  const auto st = row_state<scalar_t, acc_t>(c, Ht, Wt, prm, lane);
  const acc_t gox = static_cast<acc_t>(grad[2 * row]), goy = static_cast<acc_t>(grad[2 * row + 1]);
  const acc_t k = prm.beta / st.S;
  // dL/ds_t = g_t * beta * p_t * (gox (X_t - ox) + goy (Y_t - oy)), with s = the (normalised) score of t
  const auto score_grad = [&](int64_t t, acc_t& s) {
    const acc_t g = gauss(t, Wt, st.arg, prm);
    s = static_cast<acc_t>(c[t]) * st.inv;
    const acc_t e = ksa_exp(prm.beta * (g * s - st.m));
    return g * k * e * (gox * (ksa_coord<acc_t>(t % Wt, Wt) - st.ox) + goy * (ksa_coord<acc_t>(t / Wt, Ht) - st.oy));
  };
  acc_t A = 0;
  if (prm.normalize) {
    for (int64_t t = lane; t < N; t += 32) {
      acc_t s;
      const acc_t ds = score_grad(t, s);
      A += ds * s;
    }
    A = warp_sum(A);
  }
  for (int64_t t = lane; t < N; t += 32) {
    acc_t s;
    const acc_t ds = score_grad(t, s);
    gi[t] = static_cast<scalar_t>(prm.normalize ? st.inv * (ds - s * A) : ds);
  }
}

}  // namespace kernel_soft_argmax_kernels
}  // namespace semcorr
