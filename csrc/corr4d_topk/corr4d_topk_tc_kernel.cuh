// Tensor-core forward kernel of corr4d_topk (mma.sync, csrc/common/mma_tile.cuh), torch-free like
// corr4d_topk_kernel.cuh: the same streaming top-k over kRows x kCols tiles, with each tile's GEMM on tensor cores
// (float16/bfloat16 m16n8k16, or float32 rounded to tf32, m16n8k8; float32 accumulation). Chosen by
// corr4d_topk_launch.h (common/tensor_cores.h).
#pragma once
#include <limits>

#include "common/mma_tile.cuh"
#include "corr4d_topk/corr4d_topk_math.h"
#include "corr4d_topk/corr4d_topk_kernel.cuh"

namespace semcorr {
namespace corr4d_topk_kernels {

// kRows x kCols tile per step, 4 warps (2 x 2), each warp 16 x 32 = 1 x 4 m16n8 fragments.
constexpr int kTcFM = 1, kTcFN = 4;
constexpr int kTcThreads = 128;

// Grid (ceil(Ns / kRows), B), block 128. 1 <= k <= kMaxK, Nt < 2^31.
template <MmaKind kind, typename scalar_t>
__global__ void __launch_bounds__(kTcThreads)
    topk_tc_kernel(const scalar_t* __restrict__ src, const scalar_t* __restrict__ tgt,
                   const float* __restrict__ inv_s, const float* __restrict__ inv_t, scalar_t* __restrict__ values,
                   int64_t* __restrict__ indices, int64_t C, int64_t Ns, int64_t Nt, int k) {
  using smem_t = mma_smem_t<kind, scalar_t>;
  __shared__ smem_t As[kMmaDepth][kRows + kMmaPad];
  __shared__ smem_t Bs[kMmaDepth][kCols + kMmaPad];
  __shared__ float S[kRows][kCols + 1];
  __shared__ float topv[kRows][kMaxK + 1];  // +1: rows in different banks while one thread walks each row
  __shared__ int topi[kRows][kMaxK + 1];
  const int tid = threadIdx.x;
  const int64_t b = blockIdx.y;
  const int64_t s0 = static_cast<int64_t>(blockIdx.x) * kRows;

  for (int e = tid; e < kRows * k; e += kTcThreads) {
    topv[e / k][e % k] = -std::numeric_limits<float>::infinity();
    topi[e / k][e % k] = std::numeric_limits<int>::max();
  }

  for (int64_t t0 = 0; t0 < Nt; t0 += kCols) {
    float acc[kTcFM][kTcFN][4];
    mma_zero(acc);
    mma_tile_cn<kind, kRows, kCols, kTcFM, kTcFN>(src + b * C * Ns, tgt + b * C * Nt, C, Ns, Nt, s0, t0, As, Bs, acc);
    mma_tile_store<kCols>(acc, [&](int row, int col, float a) {
      const float ns = s0 + row < Ns ? inv_s[b * Ns + s0 + row] : 0.f;
      S[row][col] = t0 + col < Nt ? a * ns * inv_t[b * Nt + t0 + col] : 0.f;
    });
    __syncthreads();
    if (tid < kRows && s0 + tid < Ns) {
      const int tc = static_cast<int>(Nt - t0 < kCols ? Nt - t0 : kCols);
      for (int c = 0; c < tc; ++c) topk_insert(&topv[tid][0], &topi[tid][0], k, S[tid][c], static_cast<int>(t0) + c);
    }
    __syncthreads();
  }

  for (int e = tid; e < kRows * k; e += kTcThreads) {
    const int row = e / k, r = e % k;
    if (s0 + row >= Ns) continue;
    const int64_t o = (b * Ns + s0 + row) * k + r;
    values[o] = static_cast<scalar_t>(topv[row][r]);
    indices[o] = topi[row][r];
  }
}

}  // namespace corr4d_topk_kernels
}  // namespace semcorr
