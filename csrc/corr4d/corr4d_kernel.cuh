// CUDA kernels of corr4d, torch-free so that the same text also compiles under the host emulator
// (csrc/common/simt.h). Host glue: corr4d_cuda.cu (real GPU), corr4d_emu.cpp (emulation).
//
// Layouts (all contiguous):
//   src (B, C, Ns)   tgt (B, C, Nt)   Ns = Hs*Ws, Nt = Ht*Wt
//   inv_norm_s (B, Ns), inv_norm_t (B, Nt): 1/sqrt(sum_c f^2 + eps), or 1 when not normalising (acc type)
//   out / grad (B, Ns, Nt)
#pragma once
#include "common/reduce.cuh"
#include "common/simt_tile.cuh"
#include "corr4d/corr4d_math.h"

namespace semcorr {
namespace corr4d_kernels {

// 1/sqrt(sum_c f[b,c,n]^2 + eps). One thread per (b, n): consecutive threads read consecutive n, so every
// load of the C-loop is coalesced.
template <typename scalar_t, typename acc_t>
__global__ void inv_norm_kernel(const scalar_t* __restrict__ f, acc_t* __restrict__ inv_norm, int64_t B,
                                int64_t C, int64_t N, acc_t eps) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * N) return;
  const int64_t b = idx / N, n = idx % N;
  const scalar_t* p = f + b * C * N + n;
  acc_t s = 0;
  for (int64_t c = 0; c < C; ++c) {
    const acc_t v = static_cast<acc_t>(p[c * N]);
    s += v * v;
  }
  inv_norm[idx] = acc_t(1) / sqrt(s + eps);
}

// Tile sizes of the fused correlation GEMM: a 64x64 output tile per block of 16x16 threads, each thread
// owning a 4x4 register micro-tile whose rows/columns are strided by 16 so that shared-memory reads are
// bank-conflict free and global stores are coalesced along t.
constexpr int kTile = 64;
constexpr int kDepth = 16;
constexpr int kThreads = 16;  // per block dimension
constexpr int kMicro = kTile / kThreads;

// out[b,s,t] = epilogue(inv_s[s] * inv_t[t] * sum_c src[b,c,s] * tgt[b,c,t]) with epilogue = relu then
// x**power. The normalised features are never materialised: the inverse norms are applied to the dot
// product, which is the same number up to rounding. Grid: (ceil(Nt/64), ceil(Ns/64), B), block (16, 16).
template <typename scalar_t, typename acc_t>
__global__ void corr_gemm_kernel(const scalar_t* __restrict__ src, const scalar_t* __restrict__ tgt,
                                 const acc_t* __restrict__ inv_s, const acc_t* __restrict__ inv_t,
                                 scalar_t* __restrict__ out, int64_t C, int64_t Ns, int64_t Nt, bool relu,
                                 acc_t power) {
  __shared__ acc_t As[kDepth][kTile];
  __shared__ acc_t Bs[kDepth][kTile];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * kThreads + tx;
  const int64_t b = blockIdx.z;
  const int64_t s0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const scalar_t* A = src + b * C * Ns;
  const scalar_t* Bm = tgt + b * C * Nt;

  acc_t acc[kMicro][kMicro];
  simt_tile_zero(acc);

  for (int64_t k0 = 0; k0 < C; k0 += kDepth) {
    // Each thread loads 4 elements of each tile; element e -> (row e/64, col e%64): a warp reads 32
    // consecutive positions of one channel row.
#pragma unroll
    for (int r = 0; r < (kDepth * kTile) / (kThreads * kThreads); ++r) {
      const int e = tid + r * kThreads * kThreads;
      const int kk = e / kTile, col = e % kTile;
      const int64_t c = k0 + kk;
      As[kk][col] = (c < C && s0 + col < Ns) ? static_cast<acc_t>(A[c * Ns + s0 + col]) : acc_t(0);
      Bs[kk][col] = (c < C && t0 + col < Nt) ? static_cast<acc_t>(Bm[c * Nt + t0 + col]) : acc_t(0);
    }
    __syncthreads();
    simt_tile_step<kThreads, kThreads>(As, Bs, ty, tx, acc);
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < kMicro; ++i) {
    const int64_t s = s0 + ty + i * kThreads;
    if (s >= Ns) continue;
    const acc_t ns = inv_s[b * Ns + s];
#pragma unroll
    for (int j = 0; j < kMicro; ++j) {
      const int64_t t = t0 + tx + j * kThreads;
      if (t >= Nt) continue;
      const acc_t v = acc[i][j] * ns * inv_t[b * Nt + t];
      out[(b * Ns + s) * Nt + t] = static_cast<scalar_t>(corr_epilogue(v, relu, power));
    }
  }
}

// Backward, first pass, one block per (b, s) row (grid (Ns, B), block 256):
//   dp[b,s,t]  = grad * dS/d(raw) where S = inv_s*inv_t*raw is the pre-epilogue value:
//                dS = grad * p * out^((p-1)/p) on out > 0 (relu), grad * (out > 0) for relu and p = 1,
//                grad without relu; then dp = dS * inv_s[s] * inv_t[t]
//   rowsum[b,s] = sum_t grad * p * out  (= sum_t dS * S, needed for the gradient through the norm)
// Row sums are block reductions (deterministic: no atomics).
template <typename scalar_t, typename acc_t>
__global__ void backward_rows_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ out,
                                     const acc_t* __restrict__ inv_s, const acc_t* __restrict__ inv_t,
                                     scalar_t* __restrict__ dp, acc_t* __restrict__ rowsum, int64_t Ns,
                                     int64_t Nt, bool relu, acc_t power) {
  __shared__ acc_t partial[32];
  const int64_t s = blockIdx.x, b = blockIdx.y;
  const int64_t row = (b * Ns + s) * Nt;
  const acc_t ns = inv_s[b * Ns + s];
  acc_t sum = 0;
  for (int64_t t = threadIdx.x; t < Nt; t += blockDim.x) {
    const acc_t g = static_cast<acc_t>(grad[row + t]);
    const acc_t o = static_cast<acc_t>(out[row + t]);
    dp[row + t] = static_cast<scalar_t>(corr_epilogue_grad(g, o, relu, power) * ns * inv_t[b * Nt + t]);
    sum += g * power * o;
  }
  sum = block_sum(sum, partial);
  if (threadIdx.x == 0) rowsum[b * Ns + s] = sum;
}

// Backward, column sums colsum[b,t] = sum_s grad * p * out; one thread per (b, t) walking down the rows
// (coalesced across t, deterministic).
template <typename scalar_t, typename acc_t>
__global__ void backward_cols_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ out,
                                     acc_t* __restrict__ colsum, int64_t B, int64_t Ns, int64_t Nt,
                                     acc_t power) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * Nt) return;
  const int64_t b = idx / Nt, t = idx % Nt;
  const scalar_t* g = grad + b * Ns * Nt + t;
  const scalar_t* o = out + b * Ns * Nt + t;
  acc_t sum = 0;
  for (int64_t s = 0; s < Ns; ++s) sum += static_cast<acc_t>(g[s * Nt]) * static_cast<acc_t>(o[s * Nt]);
  colsum[idx] = sum * power;
}

}  // namespace corr4d_kernels
}  // namespace semcorr
