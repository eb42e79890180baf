// simt_tile.cuh — the register micro-tile of the SIMT GEMM kernels (corr4d, corr4d_topk, sparse_conv4d, conv4d),
// the SIMT counterpart of mma_tile.cuh: thread (ty, tx) of a block owns MR x MC accumulators, for the tile's rows
// ty + i SR and columns tx + j SC; strided that way, one step's shared-memory reads are broadcasts or
// conflict-free and the callers' stores coalesce along the columns.
#pragma once
#include "common/simt.h"

namespace semcorr {

template <typename acc_t, int MR, int MC>
__device__ __forceinline__ void simt_tile_zero(acc_t (&acc)[MR][MC]) {
#pragma unroll
  for (int i = 0; i < MR; ++i)
#pragma unroll
    for (int j = 0; j < MC; ++j) acc[i][j] = 0;
}

// Stages channels [k0, k0 + Depth) x positions [n0, n0 + W) of a channel-major (C x N) operand A into the block's
// shared slab S, 0 past C and N. Element e -> (e / W, e % W): a warp reads consecutive positions of one channel.
// Threads: the block's size (threads tid = 0..Threads-1 share the slab).
template <int Threads, typename acc_t, int Depth, int W, typename scalar_t>
__device__ __forceinline__ void simt_stage_cn(acc_t (&S)[Depth][W], const scalar_t* A, int64_t C, int64_t N,
                                              int64_t k0, int64_t n0, int tid) {
  static_assert((Depth * W) % Threads == 0, "slab size");
#pragma unroll
  for (int r = 0; r < (Depth * W) / Threads; ++r) {
    const int e = tid + r * Threads;
    const int kk = e / W, col = e % W;
    const int64_t c = k0 + kk;
    S[kk][col] = (c < C && n0 + col < N) ? static_cast<acc_t>(A[c * N + n0 + col]) : acc_t(0);
  }
}

// One staged slab: acc[i][j] += sum over the Depth staged k of As[k][ty + i SR] * Bs[k][tx + j SC], the k in
// increasing order. As, Bs: the block's shared-memory slabs, k-major.
template <int SR, int SC, typename acc_t, int MR, int MC, int Depth, int WA, int WB>
__device__ __forceinline__ void simt_tile_step(const acc_t (&As)[Depth][WA], const acc_t (&Bs)[Depth][WB], int ty,
                                               int tx, acc_t (&acc)[MR][MC]) {
#pragma unroll
  for (int kk = 0; kk < Depth; ++kk) {
    acc_t a[MR], bv[MC];
#pragma unroll
    for (int i = 0; i < MR; ++i) a[i] = As[kk][ty + i * SR];
#pragma unroll
    for (int j = 0; j < MC; ++j) bv[j] = Bs[kk][tx + j * SC];
#pragma unroll
    for (int i = 0; i < MR; ++i)
#pragma unroll
      for (int j = 0; j < MC; ++j) acc[i][j] += a[i] * bv[j];
  }
}

}  // namespace semcorr
