// CUDA kernels of corr4d_topk, torch-free so that the same text also compiles under the host emulator
// (csrc/common/simt.h). Host glue: corr4d_topk_cuda.cu (real GPU), corr4d_topk_emu.cpp (emulation).
//
// Layouts (all contiguous):
//   src (B, C, Ns)   tgt (B, C, Nt)   Ns = Hs*Ws, Nt = Ht*Wt
//   inv_s (B, Ns), inv_t (B, Nt): 1/sqrt(sum_c f^2 + eps), or 1 when not normalising (acc type)
//   values, grad (B, Ns, k)   indices (B, Ns, k) int64
#pragma once
#include <limits>

#include "common/math.cuh"
#include "common/simt_tile.cuh"
#include "corr4d_topk/corr4d_topk_math.h"

namespace semcorr {
namespace corr4d_topk_kernels {

// A block owns kRows source rows and streams over all target positions kCols at a time. Each step is a
// kRows x kCols tile of the correlation GEMM (16x16 threads, each a 2x4 register micro-tile with rows and
// columns strided by 16), written to shared memory with the inverse norms applied; one warp then merges the
// tile into the rows' sorted top-k lists, which live in shared memory for the whole kernel. The volume never
// leaves the chip: global memory holds only the inputs and the (B, Ns, k) outputs.
constexpr int kRows = 32;
constexpr int kCols = 64;
constexpr int kDepth = 16;
constexpr int kThreads = 16;  // per block dimension
constexpr int kMicroR = kRows / kThreads;
constexpr int kMicroC = kCols / kThreads;
constexpr int kMaxK = 32;  // == kTopkMaxK (corr4d_topk.h)

// Grid (ceil(Ns / kRows), B), block (16, 16). 1 <= k <= kMaxK, Nt < 2^31.
template <typename scalar_t, typename acc_t>
__global__ void topk_kernel(const scalar_t* __restrict__ src, const scalar_t* __restrict__ tgt,
                            const acc_t* __restrict__ inv_s, const acc_t* __restrict__ inv_t,
                            scalar_t* __restrict__ values, int64_t* __restrict__ indices, int64_t C, int64_t Ns,
                            int64_t Nt, int k) {
  __shared__ acc_t As[kDepth][kRows];
  __shared__ acc_t Bs[kDepth][kCols];
  __shared__ acc_t S[kRows][kCols + 1];
  __shared__ acc_t topv[kRows][kMaxK + 1];  // +1: rows in different banks while one thread walks each row
  __shared__ int topi[kRows][kMaxK + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * kThreads + tx;
  const int64_t b = blockIdx.y;
  const int64_t s0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const scalar_t* A = src + b * C * Ns;
  const scalar_t* Bm = tgt + b * C * Nt;

  for (int e = tid; e < kRows * k; e += kThreads * kThreads) {
    topv[e / k][e % k] = -std::numeric_limits<acc_t>::infinity();
    topi[e / k][e % k] = std::numeric_limits<int>::max();
  }

  for (int64_t t0 = 0; t0 < Nt; t0 += kCols) {
    acc_t acc[kMicroR][kMicroC];
    simt_tile_zero(acc);

    for (int64_t k0 = 0; k0 < C; k0 += kDepth) {
      simt_stage_cn<kThreads * kThreads>(As, A, C, Ns, k0, s0, tid);
      simt_stage_cn<kThreads * kThreads>(Bs, Bm, C, Nt, k0, t0, tid);
      __syncthreads();
      simt_tile_step<kThreads, kThreads>(As, Bs, ty, tx, acc);
      __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < kMicroR; ++i) {
      const int row = ty + i * kThreads;
      const acc_t ns = s0 + row < Ns ? inv_s[b * Ns + s0 + row] : acc_t(0);
#pragma unroll
      for (int j = 0; j < kMicroC; ++j) {
        const int col = tx + j * kThreads;
        S[row][col] = t0 + col < Nt ? acc[i][j] * ns * inv_t[b * Nt + t0 + col] : acc_t(0);
      }
    }
    __syncthreads();
    if (tid < kRows && s0 + tid < Ns) {
      const int tc = static_cast<int>(Nt - t0 < kCols ? Nt - t0 : kCols);
      for (int c = 0; c < tc; ++c) topk_insert(&topv[tid][0], &topi[tid][0], k, S[tid][c], static_cast<int>(t0) + c);
    }
    __syncthreads();
  }

  for (int e = tid; e < kRows * k; e += kThreads * kThreads) {
    const int row = e / k, r = e % k;
    if (s0 + row >= Ns) continue;
    const int64_t o = (b * Ns + s0 + row) * k + r;
    values[o] = static_cast<scalar_t>(topv[row][r]);
    indices[o] = topi[row][r];
  }
}

// grad_src[b, c, s] = inv_s * sum_r g_r inv_t[t_r] tgt[b, c, t_r] - inv_s^2 (sum_r g_r S_r) src[b, c, s]
// (the second term only when normalising). Grid (Ns, B), threads over channels.
template <typename scalar_t, typename acc_t>
__global__ void grad_src_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ values,
                                const int64_t* __restrict__ indices, const scalar_t* __restrict__ src,
                                const scalar_t* __restrict__ tgt, const acc_t* __restrict__ inv_s,
                                const acc_t* __restrict__ inv_t, scalar_t* __restrict__ grad_src, int64_t C,
                                int64_t Ns, int64_t Nt, int64_t k, bool normalize) {
  const int64_t s = blockIdx.x, b = blockIdx.y;
  const int64_t row = b * Ns + s;
  const acc_t ns = inv_s[row];
  acc_t rs = 0;
  for (int64_t r = 0; r < k; ++r) rs += static_cast<acc_t>(grad[row * k + r]) * static_cast<acc_t>(values[row * k + r]);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    acc_t acc = 0;
    for (int64_t r = 0; r < k; ++r) {
      const int64_t t = indices[row * k + r];
      acc += static_cast<acc_t>(grad[row * k + r]) * inv_t[b * Nt + t] * static_cast<acc_t>(tgt[(b * C + c) * Nt + t]);
    }
    acc_t out = ns * acc;
    if (normalize) out -= ns * ns * rs * static_cast<acc_t>(src[(b * C + c) * Ns + s]);
    grad_src[(b * C + c) * Ns + s] = static_cast<scalar_t>(out);
  }
}

// grad_tgt[b, c, t] = inv_t * sum over entries e with target t of g_e inv_s[s_e] src[b, c, s_e]
//                     - inv_t^2 (sum_e g_e S_e) tgt[b, c, t].
// The entries of each (b, t) are perm[seg[b*Nt + t] .. seg[b*Nt + t + 1]) (a stable sort of b*Nt + index),
// summed in that fixed order: deterministic, no atomics. One thread per (b, c, t), t fastest (coalesced).
template <typename scalar_t, typename acc_t>
__global__ void grad_tgt_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ values,
                                const int64_t* __restrict__ perm, const int64_t* __restrict__ seg,
                                const scalar_t* __restrict__ src, const scalar_t* __restrict__ tgt,
                                const acc_t* __restrict__ inv_s, const acc_t* __restrict__ inv_t,
                                scalar_t* __restrict__ grad_tgt, int64_t B, int64_t C, int64_t Ns, int64_t Nt,
                                int64_t k, bool normalize) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * C * Nt) return;
  const int64_t t = idx % Nt, c = (idx / Nt) % C, b = idx / (Nt * C);
  const int64_t bt = b * Nt + t;
  acc_t acc = 0, cs = 0;
  for (int64_t j = seg[bt]; j < seg[bt + 1]; ++j) {
    const int64_t e = perm[j];
    const int64_t s = (e / k) % Ns;
    const acc_t g = static_cast<acc_t>(grad[e]);
    acc += g * inv_s[b * Ns + s] * static_cast<acc_t>(src[(b * C + c) * Ns + s]);
    cs += g * static_cast<acc_t>(values[e]);
  }
  const acc_t nt = inv_t[bt];
  acc_t out = nt * acc;
  if (normalize) out -= nt * nt * cs * static_cast<acc_t>(tgt[(b * C + c) * Nt + t]);
  grad_tgt[idx] = static_cast<scalar_t>(out);
}

}  // namespace corr4d_topk_kernels
}  // namespace semcorr
