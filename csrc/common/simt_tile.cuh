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
