// Tensor-core kernels of conv4d (mma.sync, csrc/common/mma_tile.cuh), torch-free like conv4d_kernel.cuh: the
// forward's implicit GEMM out[b, m, n] = bias[m] + sum_k W[m, k] X[b, k, n] (X gathered from x, never
// materialised), with float16/bfloat16 operands (m16n8k16) or float32 rounded to tf32 (m16n8k8), float32
// accumulation. Also the GEMM of the input gradient (conv4d_launch.h runs it through the forward) and the weight
// gradient's GEMM (conv4d_weight_grad_tc_kernel). Chosen by conv4d_launch.h (common/tensor_cores.h; TF32 follows
// torch.backends.cudnn.allow_tf32, as a convolution).
#pragma once
#include "common/mma_tile.cuh"
#include "conv4d/conv4d_kernel.cuh"

namespace semcorr {
namespace conv4d_kernels {

// Block tile (16 FM) output channels x 128 positions, 4 warps side by side along the positions (each 16 FM x 32 =
// FM x 4 m16n8 fragments); the reduction runs in slabs of kMmaDepth (c, tap) entries. FM = 1 for Cout <= 16
// (NC-Net's 1 -> 16 -> 16 -> 1 layers), else 2. Thread t gathers column t of the X slab: one position per thread
// for the whole reduction, as the SIMT kernel. Grid (ceil(Npos / 128), ceil(Cout / (16 FM)), B), block 128.
constexpr int kTcTN = 128;
constexpr int kTcThreads = 128;
constexpr int kTcFN = 4;

template <MmaKind kind, typename scalar_t, int FM>
__global__ void __launch_bounds__(kTcThreads)
    conv4d_forward_tc_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ w,
                             const scalar_t* __restrict__ bias, scalar_t* __restrict__ out, Dims g) {
  static_assert(kTcTN == kTcThreads, "one X column per thread");
  constexpr int TM = 16 * FM;
  using smem_t = mma_smem_t<kind, scalar_t>;
  __shared__ smem_t Ws[kMmaDepth][TM + kMmaPad];
  __shared__ smem_t Xs[kMmaDepth][kTcTN + kMmaPad];
  __shared__ int64_t k_off[kMmaDepth];  // offset of (c, a) in x relative to x[b, 0, i - pad]
  __shared__ int k_tap[kMmaDepth][4];   // a1..a4 (kInvalid when k >= K)

  const int tid = threadIdx.x;
  const int64_t b = blockIdx.z;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kTcTN, m0 = static_cast<int64_t>(blockIdx.y) * TM;
  const int64_t Npos = num_positions(g), K = reduction_size(g);

  const int64_t n = n0 + tid;
  int64_t c0, c1, c2, c3;
  const int64_t xbase = decode_column(g, b, n, Npos, c0, c1, c2, c3);

  float acc[FM][kTcFN][4];
  mma_zero(acc);

  for (int64_t kb = 0; kb < K; kb += kMmaDepth) {
    if (tid < kMmaDepth) stage_reduction_row(g, kb + tid, k_off[tid], k_tap[tid]);
    // W slab, element e -> (k e % depth, m e / depth): a warp reads consecutive k of a weight row (coalesced)
    for (int e = tid; e < kMmaDepth * TM; e += kTcThreads) {
      const int kk = e % kMmaDepth, m = e / kMmaDepth;
      const int64_t k = kb + kk;
      Ws[kk][m] = mma_stage<kind, scalar_t>(m0 + m < g.Cout && k < K, [&] { return w[(m0 + m) * K + k]; });
    }
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < kMmaDepth; ++kk) {
      const bool in = inside(g, c0 + k_tap[kk][0], c1 + k_tap[kk][1], c2 + k_tap[kk][2], c3 + k_tap[kk][3]);
      Xs[kk][tid] = mma_stage<kind, scalar_t>(in, [&] { return x[xbase + k_off[kk]]; });
    }
    __syncthreads();
    mma_smem_step<kind, TM, kTcTN, FM, kTcFN>(Ws, Xs, acc);
    __syncthreads();
  }

  mma_tile_store<kTcTN>(acc, [&](int row, int col, float a) {
    const int64_t m = m0 + row, nn = n0 + col;
    if (m >= g.Cout || nn >= Npos) return;
    const float bb = bias != nullptr ? static_cast<float>(bias[m]) : 0.f;
    out[(b * g.Cout + m) * Npos + nn] = static_cast<scalar_t>(a + bb);
  });
}

// Weight gradient on tensor cores: dW[m, k] = sum over (b, n) of grad[b, m, n] X[b, k, n], the SIMT kernel's split
// reduction (each block one contiguous range of the flat positions, partial sums per split, summed by the host:
// deterministic) with the positions as the mma's k dimension. Block tile 16 (m) x 64 (k columns), 4 warps side by
// side along the columns (each 16 x 16 = 1 x 2 fragments), positions in slabs of kMmaDepth. Thread t gathers
// column t % 64 of the X slab (one weight entry (c, tap) per thread, as the SIMT kernel).
// Grid (ceil(K / 64), ceil(Cout / 16), splits), block 128.
constexpr int kTcWgTM = 16;
constexpr int kTcWgTK = 64;
constexpr int kTcWgFN = 2;

template <MmaKind kind, typename scalar_t>
__global__ void __launch_bounds__(kTcThreads)
    conv4d_weight_grad_tc_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ x,
                                 float* __restrict__ partial, Dims g, int64_t per_split) {
  using smem_t = mma_smem_t<kind, scalar_t>;
  __shared__ smem_t Gs[kMmaDepth][kTcWgTM + kMmaPad];
  __shared__ smem_t Xs[kMmaDepth][kTcWgTK + kMmaPad];
  __shared__ int64_t p_base[kMmaDepth];  // offset of x[b, 0, i - pad] for each position of the slab
  __shared__ int64_t p_c[kMmaDepth][4];  // i - pad (kInvalid in [0] past the range)

  const int tid = threadIdx.x, tx = tid % kTcWgTK, ty = tid / kTcWgTK;
  const int64_t Npos = num_positions(g), K = reduction_size(g);
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTcWgTM;
  const int64_t k0 = static_cast<int64_t>(blockIdx.x) * kTcWgTK;
  const int64_t P = g.B * Npos;
  const int64_t q0 = static_cast<int64_t>(blockIdx.z) * per_split;
  const int64_t q1 = q0 + per_split < P ? q0 + per_split : P;

  const int64_t k = k0 + tx;
  int64_t a[4];
  const int64_t koff = decode_reduction_row(g, k, a);
  const int64_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];

  float acc[1][kTcWgFN][4];
  mma_zero(acc);
  for (int64_t qb = q0; qb < q1; qb += kMmaDepth) {
    if (tid < kMmaDepth) stage_position(g, qb + tid, q1, Npos, p_base[tid], p_c[tid]);
    // grad slab, element e -> (position e % depth, channel e / depth): consecutive threads, consecutive positions
    for (int e = tid; e < kMmaDepth * kTcWgTM; e += kTcThreads) {
      const int p = e % kMmaDepth, m = e / kMmaDepth;
      const int64_t q = qb + p;
      const int64_t off = ((q / Npos) * g.Cout + m0 + m) * Npos + q % Npos;
      Gs[p][m] = mma_stage<kind, scalar_t>(q < q1 && m0 + m < g.Cout, [&] { return grad[off]; });
    }
    __syncthreads();
#pragma unroll 4
    for (int p = ty; p < kMmaDepth; p += kTcThreads / kTcWgTK) {
      const bool in = inside(g, p_c[p][0] + a0, p_c[p][1] + a1, p_c[p][2] + a2, p_c[p][3] + a3);
      Xs[p][tx] = mma_stage<kind, scalar_t>(in, [&] { return x[p_base[p] + koff]; });
    }
    __syncthreads();
    mma_smem_step<kind, kTcWgTM, kTcWgTK, 1, kTcWgFN>(Gs, Xs, acc);
    __syncthreads();
  }
  mma_tile_store<kTcWgTK>(acc, [&](int row, int col, float a) {
    const int64_t m = m0 + row, kk = k0 + col;
    if (m < g.Cout && kk < K) partial[(static_cast<int64_t>(blockIdx.z) * g.Cout + m) * K + kk] = a;
  });
}

}  // namespace conv4d_kernels
}  // namespace semcorr
