// mma_tile.cuh — tensor-core block tiles: mma_smem_step multiplies one slab staged in shared memory (any GEMM
// whose operands a kernel stages k-major, e.g. conv4d's implicit GEMM), and mma_tile_cn is the whole tile of the
// correlation GEMMs (corr4d, corr4d_topk):
//   D[m, n] = sum_c A[c, a0 + m] * B[c, b0 + n],   A (C x Na), B (C x Nb) channel-major (element (c, n) at c*N + n)
// for a BM x BN tile, float32 accumulation in m16n8 fragments (csrc/common/mma.cuh). The block's warps form a
// (BM / (16 FM)) x (BN / (8 FN)) grid, each warp owning FM x FN fragments. Each step stages kMmaDepth channels of
// both operands in shared memory (coalesced along n, zero-filled past C / Na / Nb), already in operand form:
// tf32-rounded floats (cvt.rna, as cuBLAS's TF32 path rounds) or the raw 16-bit values.
#pragma once
#include <type_traits>

#include "common/mma.cuh"

namespace semcorr {

constexpr int kMmaDepth = 32;  // channels per shared-memory stage (4 tf32 / 2 f16 mma k-steps)
constexpr int kMmaPad = 8;     // row padding: fragment loads (lanes k = t, n = g) hit distinct banks

// Shared-memory element type of an operand: float (tf32-rounded) or the 16-bit input type itself.
template <MmaKind kind, typename scalar_t>
using mma_smem_t = std::conditional_t<kind == MmaKind::tf32, float, scalar_t>;

template <MmaKind kind, typename smem_t>
__device__ __forceinline__ uint32_t mma_operand_bits(const smem_t& v) {
  if constexpr (kind == MmaKind::tf32) return __float_as_uint(v);
  else return bits16(v);
}

// A block's accumulator fragments set to 0 (callers of mma_smem_step / mma_tile_cn zero theirs first).
template <int FM, int FN>
__device__ __forceinline__ void mma_zero(float (&acc)[FM][FN][4]) {
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.f;
}

// One element of a staged operand slab, in operand form: load() (called only when in, so it may index with
// anything valid only then) tf32-rounded or as the raw 16-bit value; 0 when !in (zero fill past the edges).
template <MmaKind kind, typename scalar_t, typename Load>
__device__ __forceinline__ mma_smem_t<kind, scalar_t> mma_stage(bool in, Load load) {
  if constexpr (kind == MmaKind::tf32) return in ? to_tf32(static_cast<float>(load())) : 0.f;
  else return in ? static_cast<scalar_t>(load()) : scalar_t(0.f);
}

// One staged slab: acc += As^T Bs over the kMmaDepth staged k, As: [kMmaDepth][BM + kMmaPad] (element (k, m)),
// Bs: [kMmaDepth][BN + kMmaPad] (element (k, n)). Warp w owns rows (w / (BN / (8 FN))) * 16 FM + [0, 16 FM) and
// columns (w % (BN / (8 FN))) * 8 FN + [0, 8 FN). Every lane of each warp must call it (mma.sync is warp-wide).
template <MmaKind kind, int BM, int BN, int FM, int FN, typename smem_t>
__device__ __forceinline__ void mma_smem_step(smem_t (*As)[BM + kMmaPad], smem_t (*Bs)[BN + kMmaPad],
                                              float (&acc)[FM][FN][4]) {
  constexpr int K = mma_k<kind>();
  constexpr int kWarpsN = BN / (8 * FN);
  static_assert(BM % (16 * FM) == 0 && BN % (8 * FN) == 0 && kMmaDepth % K == 0, "tile shape");
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = (warp / kWarpsN) * 16 * FM, wn = (warp % kWarpsN) * 8 * FN;
#pragma unroll
  for (int ks = 0; ks < kMmaDepth; ks += K) {
    uint32_t a[FM][4], b[FN][2];
#pragma unroll
    for (int i = 0; i < FM; ++i)
      mma_load_a<kind>(a[i], lane, [&](int row, int k) {
        return mma_operand_bits<kind>(As[ks + k][wm + 16 * i + row]);
      });
#pragma unroll
    for (int j = 0; j < FN; ++j)
      mma_load_b<kind>(b[j], lane, [&](int k, int col) {
        return mma_operand_bits<kind>(Bs[ks + k][wn + 8 * j + col]);
      });
#pragma unroll
    for (int i = 0; i < FM; ++i)
#pragma unroll
      for (int j = 0; j < FN; ++j) mma_m16n8<kind>(acc[i][j], a[i], b[j], acc[i][j]);
  }
}

// Must be reached by every thread of the block (it synchronises); blockDim.x = 32 * warps, 1-D.
// As: [kMmaDepth][BM + kMmaPad], Bs: [kMmaDepth][BN + kMmaPad]. acc is accumulated into (callers zero it).
template <MmaKind kind, int BM, int BN, int FM, int FN, typename scalar_t, typename smem_t>
__device__ __forceinline__ void mma_tile_cn(const scalar_t* __restrict__ A, const scalar_t* __restrict__ B, int64_t C,
                                            int64_t Na, int64_t Nb, int64_t a0, int64_t b0,
                                            smem_t (*As)[BM + kMmaPad], smem_t (*Bs)[BN + kMmaPad],
                                            float (&acc)[FM][FN][4]) {
  constexpr int kThreadsTile = 32 * (BM / (16 * FM)) * (BN / (8 * FN));
  const int tid = threadIdx.x;
  for (int64_t k0 = 0; k0 < C; k0 += kMmaDepth) {
    for (int e = tid; e < kMmaDepth * BM; e += kThreadsTile) {
      const int kk = e / BM, col = e % BM;
      const int64_t c = k0 + kk;
      As[kk][col] = mma_stage<kind, scalar_t>(c < C && a0 + col < Na, [&] { return A[c * Na + a0 + col]; });
    }
    for (int e = tid; e < kMmaDepth * BN; e += kThreadsTile) {
      const int kk = e / BN, col = e % BN;
      const int64_t c = k0 + kk;
      Bs[kk][col] = mma_stage<kind, scalar_t>(c < C && b0 + col < Nb, [&] { return B[c * Nb + b0 + col]; });
    }
    __syncthreads();
    mma_smem_step<kind, BM, BN, FM, FN>(As, Bs, acc);
    __syncthreads();
  }
}

// Tile coordinates of accumulator element (i, j, r) of this lane: row in [0, BM), column in [0, BN).
template <int BN, int FM, int FN>
__device__ __forceinline__ int mma_tile_row(int i, int r) {
  return (threadIdx.x / 32 / (BN / (8 * FN))) * 16 * FM + 16 * i + mma_d_row(threadIdx.x % 32, r);
}
template <int BN, int FM, int FN>
__device__ __forceinline__ int mma_tile_col(int j, int r) {
  return (threadIdx.x / 32 % (BN / (8 * FN))) * 8 * FN + 8 * j + mma_d_col(threadIdx.x % 32, r);
}

// Epilogue walk: store(row, col, value) for every accumulator element of this lane, (row, col) in the BM x BN tile.
template <int BN, int FM, int FN, typename Store>
__device__ __forceinline__ void mma_tile_store(const float (&acc)[FM][FN][4], Store store) {
#pragma unroll
  for (int i = 0; i < FM; ++i)
#pragma unroll
    for (int j = 0; j < FN; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) store(mma_tile_row<BN, FM, FN>(i, r), mma_tile_col<BN, FM, FN>(j, r), acc[i][j][r]);
}

}  // namespace semcorr
