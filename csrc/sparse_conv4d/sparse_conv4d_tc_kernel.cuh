// Tensor-core gather-GEMM-scatter of sparse_conv4d (mma.sync, csrc/common/mma_tile.cuh), torch-free like
// sparse_conv4d_kernel.cuh: the same C[c_rows[p], n] += sum_q A[a_rows[p], q] W[q ldw_q + n ldw_n] per kernel
// offset, with float16/bfloat16 operands (m16n8k16) or float32 rounded to tf32 (m16n8k8), float32 accumulation
// (C is the float32 accumulator of all offsets). Serves the forward and the feature gradient of the backward; the
// weight gradient has its own kernel (wgrad_tc_kernel).
// Chosen by sparse_conv4d_launch.h (common/tensor_cores.h; TF32 follows torch.backends.cudnn.allow_tf32).
#pragma once
#include "common/mma_tile.cuh"
#include "sparse_conv4d/sparse_conv4d_kernel.cuh"

namespace semcorr {
namespace sparse_conv4d_kernels {

// 32 pairs x 32 columns per block of 4 warps (2 x 2), each warp 16 x 16 = 1 x 2 m16n8 fragments; the reduction
// over q in slabs of kMmaDepth. c_rows of one launch are distinct: one writer per element, no atomics.
// Grid (ceil(P / 32), ceil(Nd / 32)), block 128.
constexpr int kTcTile = 32;
constexpr int kTcFM = 1, kTcFN = 2;
constexpr int kTcThreads = 128;

template <MmaKind kind, typename scalar_t>
__global__ void __launch_bounds__(kTcThreads)
    gather_gemm_scatter_tc_kernel(const scalar_t* __restrict__ A, const int64_t* __restrict__ a_rows,
                                  const scalar_t* __restrict__ W, int64_t ldw_q, int64_t ldw_n,
                                  const int64_t* __restrict__ c_rows, float* __restrict__ Cm, int64_t P, int64_t Kd,
                                  int64_t Nd) {
  using smem_t = mma_smem_t<kind, scalar_t>;
  __shared__ smem_t As[kMmaDepth][kTcTile + kMmaPad];
  __shared__ smem_t Ws[kMmaDepth][kTcTile + kMmaPad];
  const int tid = threadIdx.x;
  const int64_t p0 = static_cast<int64_t>(blockIdx.x) * kTcTile;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * kTcTile;
  float acc[kTcFM][kTcFN][4];
  mma_zero(acc);
  for (int64_t q0 = 0; q0 < Kd; q0 += kMmaDepth) {
    for (int e = tid; e < kMmaDepth * kTcTile; e += kTcThreads) {
      // A: consecutive threads read consecutive q of one gathered row
      const int qa = e % kMmaDepth, pa = e / kMmaDepth;
      const int64_t p = p0 + pa, q = q0 + qa;
      As[qa][pa] = mma_stage<kind, scalar_t>(p < P && q < Kd, [&] { return A[a_rows[p] * Kd + q]; });
      const int nw = e % kTcTile, qw = e / kTcTile;
      const int64_t n = n0 + nw, q2 = q0 + qw;
      Ws[qw][nw] = mma_stage<kind, scalar_t>(n < Nd && q2 < Kd, [&] { return W[q2 * ldw_q + n * ldw_n]; });
    }
    __syncthreads();
    mma_smem_step<kind, kTcTile, kTcTile, kTcFM, kTcFN>(As, Ws, acc);
    __syncthreads();
  }
  mma_tile_store<kTcTile>(acc, [&](int row, int col, float a) {
    const int64_t p = p0 + row, n = n0 + col;
    if (p < P && n < Nd) Cm[c_rows[p] * Nd + n] += a;
  });
}

// Weight gradient on tensor cores: gw[o, ci, co] = sum over pairs p of offset o of F[in_rows[p], ci] G[out_rows[p],
// co], the pairs as the mma's k dimension in slabs of kMmaDepth (a fixed order: deterministic). Block tile 32 (ci) x
// 32 (co), 4 warps (2 x 2) of 1 x 2 fragments. Grid (ceil(Cout / 32), ceil(Cin / 32), K), block 128.
template <MmaKind kind, typename scalar_t>
__global__ void __launch_bounds__(kTcThreads)
    wgrad_tc_kernel(const scalar_t* __restrict__ F, const int64_t* __restrict__ in_rows,
                    const scalar_t* __restrict__ G, const int64_t* __restrict__ out_rows,
                    const int64_t* __restrict__ ptr, scalar_t* __restrict__ gw, int64_t Cin, int64_t Cout) {
  using smem_t = mma_smem_t<kind, scalar_t>;
  __shared__ smem_t Fs[kMmaDepth][kTcTile + kMmaPad];
  __shared__ smem_t Gs[kMmaDepth][kTcTile + kMmaPad];
  const int tid = threadIdx.x;
  const int64_t o = blockIdx.z;
  const int64_t co0 = static_cast<int64_t>(blockIdx.x) * kTcTile;
  const int64_t ci0 = static_cast<int64_t>(blockIdx.y) * kTcTile;
  const int64_t pb = ptr[o], pe = ptr[o + 1];
  float acc[kTcFM][kTcFN][4];
  mma_zero(acc);
  for (int64_t p0 = pb; p0 < pe; p0 += kMmaDepth) {
    for (int e = tid; e < kMmaDepth * kTcTile; e += kTcThreads) {
      // consecutive threads read consecutive channels of one gathered row
      const int c = e % kTcTile, pp = e / kTcTile;
      const int64_t p = p0 + pp;
      const bool inf = p < pe && ci0 + c < Cin, ing = p < pe && co0 + c < Cout;
      Fs[pp][c] = mma_stage<kind, scalar_t>(inf, [&] { return F[in_rows[p] * Cin + ci0 + c]; });
      Gs[pp][c] = mma_stage<kind, scalar_t>(ing, [&] { return G[out_rows[p] * Cout + co0 + c]; });
    }
    __syncthreads();
    mma_smem_step<kind, kTcTile, kTcTile, kTcFM, kTcFN>(Fs, Gs, acc);
    __syncthreads();
  }
  mma_tile_store<kTcTile>(acc, [&](int row, int col, float a) {
    const int64_t ci = ci0 + row, co = co0 + col;
    if (ci < Cin && co < Cout) gw[(o * Cin + ci) * Cout + co] = static_cast<scalar_t>(a);
  });
}

}  // namespace sparse_conv4d_kernels
}  // namespace semcorr
