// CUDA kernels of conv4d, torch-free so that the same text also compiles under the host emulator
// (csrc/common/simt.h). Host glue: conv4d_cuda.cu (real GPU), conv4d_emu.cpp (emulation).
//
// conv4d as an implicit GEMM: out[b, m, n] = bias[m] + sum_k W[m, k] * X[b, k, n] with
//   m = output channel, n = flat output position (i1, i2, i3, i4), k = (input channel c, tap a1..a4),
//   X[b, k, n] = x[b, c, i1 + a1 - p1, ..., i4 + a4 - p4] (0 outside the volume), never materialised:
// each block gathers its (k, n) tile of X from x into shared memory, bounds-checked per element.
//
// Layouts (all contiguous): x (B, Cin, in0..in3), w (Cout, Cin, k0..k3) = (Cout, K) row-major,
// out (B, Cout, out0..out3). Padding may be negative (the input gradient uses k - 1 - pad).
#pragma once
#include "common/math.cuh"
#include "common/simt_tile.cuh"

namespace semcorr {
namespace conv4d_kernels {

struct Dims {
  int64_t B, Cin, Cout;
  int64_t in[4], k[4], pad[4], out[4];
};

// A coordinate offset no in-range position can cancel: marks an invalid (k or position) entry.
constexpr int kInvalid = -(1 << 30);

__host__ __device__ __forceinline__ bool inside(const Dims& g, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return i0 >= 0 && i0 < g.in[0] && i1 >= 0 && i1 < g.in[1] && i2 >= 0 && i2 < g.in[2] && i3 >= 0 && i3 < g.in[3];
}

// Reduction row k of the implicit GEMM = (input channel c, kernel taps a[0..3]): returns its offset in x from
// x[b, 0, i - pad] and writes its taps. Past the end (k >= Cin * taps) the taps are (kInvalid, 0, 0, 0), which
// `inside` rejects, and the offset 0. Shared by the SIMT and tensor-core kernels (forward and weight gradient).
__host__ __device__ __forceinline__ int64_t decode_reduction_row(const Dims& g, int64_t k, int64_t a[4]) {
  const int64_t taps = g.k[0] * g.k[1] * g.k[2] * g.k[3];
  if (k >= g.Cin * taps) {
    a[0] = kInvalid, a[1] = a[2] = a[3] = 0;
    return 0;
  }
  const int64_t s2 = g.in[3], s1 = g.in[2] * s2, s0 = g.in[1] * s1, sc = g.in[0] * s0;
  int64_t r = k % taps;
  a[3] = r % g.k[3], r /= g.k[3];
  a[2] = r % g.k[2], r /= g.k[2];
  a[1] = r % g.k[1], a[0] = r / g.k[1];
  return (k / taps) * sc + a[0] * s0 + a[1] * s1 + a[2] * s2 + a[3];
}

// decode_reduction_row into a block's shared per-slab tables: the offset `off` and the taps `tap` of row k.
__host__ __device__ __forceinline__ void stage_reduction_row(const Dims& g, int64_t k, int64_t& off, int (&tap)[4]) {
  int64_t a[4];
  off = decode_reduction_row(g, k, a);
  for (int i = 0; i < 4; ++i) tap[i] = static_cast<int>(a[i]);
}

// Output positions per batch element and the reduction length K = Cin * taps of the implicit GEMM.
__host__ __device__ __forceinline__ int64_t num_positions(const Dims& g) {
  return g.out[0] * g.out[1] * g.out[2] * g.out[3];
}
__host__ __device__ __forceinline__ int64_t reduction_size(const Dims& g) {
  return g.Cin * (g.k[0] * g.k[1] * g.k[2] * g.k[3]);  // grouped as decode_reduction_row's taps: one product
}

// Output position n (< Npos) of the implicit GEMM's columns -> c = i - pad, the input corner of its window.
__host__ __device__ __forceinline__ void decode_position(const Dims& g, int64_t n, int64_t& c0, int64_t& c1,
                                                         int64_t& c2, int64_t& c3) {
  int64_t r = n;
  c3 = r % g.out[3] - g.pad[3], r /= g.out[3];
  c2 = r % g.out[2] - g.pad[2], r /= g.out[2];
  c1 = r % g.out[1] - g.pad[1], r /= g.out[1];
  c0 = r - g.pad[0];
}

// Offset of x[b, 0, c0, c1, c2, c3] (any c: only the in-range elements are read, `inside` decides).
__host__ __device__ __forceinline__ int64_t x_offset(const Dims& g, int64_t b, int64_t c0, int64_t c1, int64_t c2,
                                                     int64_t c3) {
  const int64_t s2 = g.in[3], s1 = g.in[2] * s2, s0 = g.in[1] * s1, sc = g.in[0] * s0;
  return b * g.Cin * sc + c0 * s0 + c1 * s1 + c2 * s2 + c3;
}

// The forward's column n of batch element b (its X column, fixed for the whole reduction): c = i - pad, (kInvalid,
// 0, 0, 0) past the positions (n >= Npos), which `inside` rejects; returns the offset of x[b, 0, c] (not read then).
__host__ __device__ __forceinline__ int64_t decode_column(const Dims& g, int64_t b, int64_t n, int64_t Npos,
                                                          int64_t& c0, int64_t& c1, int64_t& c2, int64_t& c3) {
  const int64_t s3 = 1, s2 = g.in[3], s1 = g.in[2] * s2, s0 = g.in[1] * s1, sc = g.in[0] * s0;
  c0 = kInvalid, c1 = 0, c2 = 0, c3 = 0;
  if (n < Npos) decode_position(g, n, c0, c1, c2, c3);
  return b * g.Cin * sc + c0 * s0 + c1 * s1 + c2 * s2 + c3 * s3;
}

// Flat position q (over (b, n)) of the weight gradient's reduction into a block's shared per-slab tables: the
// offset of x[b, 0, c] and c; past the block's range (q >= q1) c is (kInvalid, 0, 0, 0), which `inside` rejects.
__host__ __device__ __forceinline__ void stage_position(const Dims& g, int64_t q, int64_t q1, int64_t Npos,
                                                        int64_t& base, int64_t (&c)[4]) {
  if (q < q1) {
    int64_t c0, c1, c2, c3;
    decode_position(g, q % Npos, c0, c1, c2, c3);
    base = x_offset(g, q / Npos, c0, c1, c2, c3);
    c[0] = c0, c[1] = c1, c[2] = c2, c[3] = c3;
  } else {
    base = 0;
    c[0] = kInvalid, c[1] = c[2] = c[3] = 0;
  }
}

// ---- forward ----------------------------------------------------------------------------------------
// Block tile: (8 * MI) output channels x 128 positions, reduction in steps of 16 (c, tap) entries.
// 256 threads = 8 (m) x 32 (n); each thread owns MI x 4 outputs, rows strided by 8 and columns by 32, so
// shared-memory reads are broadcasts (W) and conflict-free (X), and stores coalesce along n.
// Grid: (ceil(Npos / 128), ceil(Cout / (8 * MI)), B). MI = 1 for thin outputs (Cout <= 8), else 2.
constexpr int kFwdTN = 128;
constexpr int kFwdTK = 16;
constexpr int kFwdThreads = 256;

template <typename scalar_t, typename acc_t, int MI>
__global__ void __launch_bounds__(kFwdThreads)
    conv4d_forward_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ w,
                          const scalar_t* __restrict__ bias, scalar_t* __restrict__ out, Dims g) {
  constexpr int TM = 8 * MI;
  __shared__ acc_t Ws[kFwdTK][TM];
  __shared__ acc_t Xs[kFwdTK][kFwdTN];
  __shared__ int64_t k_off[kFwdTK];  // offset of (c, a) in x relative to x[b, 0, i - pad]
  __shared__ int k_tap[kFwdTK][4];   // a1..a4 (kInvalid when k >= K)

  const int tid = threadIdx.x, tx = tid % 32, ty = tid / 32;
  const int64_t b = blockIdx.z;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * kFwdTN, m0 = static_cast<int64_t>(blockIdx.y) * TM;
  const int64_t Npos = num_positions(g), K = reduction_size(g);

  // The column of X this thread loads (fixed for the whole reduction): decode its position once.
  const int col = tid % kFwdTN, krow = tid / kFwdTN;
  const int64_t n = n0 + col;
  int64_t c0, c1, c2, c3;
  const int64_t xbase = decode_column(g, b, n, Npos, c0, c1, c2, c3);

  acc_t acc[MI][4];
  simt_tile_zero(acc);

  for (int64_t kb = 0; kb < K; kb += kFwdTK) {
    if (tid < kFwdTK) stage_reduction_row(g, kb + tid, k_off[tid], k_tap[tid]);
    for (int e = tid; e < kFwdTK * TM; e += kFwdThreads) {
      const int kk = e % kFwdTK, m = e / kFwdTK;
      const int64_t k = kb + kk;
      Ws[kk][m] = (m0 + m < g.Cout && k < K) ? static_cast<acc_t>(w[(m0 + m) * K + k]) : acc_t(0);
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kFwdTK * kFwdTN / kFwdThreads; ++r) {
      const int kk = krow + r * (kFwdThreads / kFwdTN);
      acc_t v = 0;
      if (inside(g, c0 + k_tap[kk][0], c1 + k_tap[kk][1], c2 + k_tap[kk][2], c3 + k_tap[kk][3]))
        v = static_cast<acc_t>(x[xbase + k_off[kk]]);
      Xs[kk][col] = v;
    }
    __syncthreads();
    simt_tile_step<8, 32>(Ws, Xs, ty, tx, acc);
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < MI; ++i) {
    const int64_t m = m0 + ty + 8 * i;
    if (m >= g.Cout) continue;
    const acc_t bb = bias != nullptr ? static_cast<acc_t>(bias[m]) : acc_t(0);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t nn = n0 + tx + 32 * j;
      if (nn < Npos) out[(b * g.Cout + m) * Npos + nn] = static_cast<scalar_t>(acc[i][j] + bb);
    }
  }
}

// ---- weight gradient ------------------------------------------------------------------------------------
// dW[m, k] = sum over (b, n) of grad[b, m, n] * X[b, k, n]: a GEMM reducing over positions. Block tile
// 16 (m) x 64 (k); positions in steps of 16. Each block reduces one contiguous range of the flat (b, n)
// positions (split blockIdx.z) and writes its partial sums to partial[split, m, k]; the host sums the
// splits (deterministic, no atomics). 256 threads = 4 (m) x 64 (k), 4 outputs each (rows strided by 4).
// Grid: (ceil(K / 64), ceil(Cout / 16), splits).
constexpr int kWgTM = 16;
constexpr int kWgTK = 64;
constexpr int kWgTP = 16;
constexpr int kWgThreads = 256;

template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kWgThreads)
    conv4d_weight_grad_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ x,
                              acc_t* __restrict__ partial, Dims g, int64_t per_split) {
  __shared__ acc_t Gs[kWgTP][kWgTM];
  __shared__ acc_t Xs[kWgTP][kWgTK];
  __shared__ int64_t p_base[kWgTP];  // offset of x[b, 0, i - pad] for each position of the step
  __shared__ int64_t p_c[kWgTP][4];  // i - pad (kInvalid in [0] past the range)

  const int tid = threadIdx.x, tx = tid % kWgTK, ty = tid / kWgTK;
  const int64_t Npos = num_positions(g), K = reduction_size(g);
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kWgTM;
  const int64_t P = g.B * Npos;
  const int64_t q0 = static_cast<int64_t>(blockIdx.z) * per_split;
  const int64_t q1 = q0 + per_split < P ? q0 + per_split : P;

  // This thread's column k: decode it once.
  const int64_t k = static_cast<int64_t>(blockIdx.x) * kWgTK + tx;
  int64_t a[4];
  const int64_t koff = decode_reduction_row(g, k, a);
  const int64_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];

  acc_t acc[kWgTM / 4] = {};
  for (int64_t qb = q0; qb < q1; qb += kWgTP) {
    if (tid < kWgTP) stage_position(g, qb + tid, q1, Npos, p_base[tid], p_c[tid]);
    {
      const int p = tid % kWgTP, m = tid / kWgTP;  // 256 threads = 16 x 16
      const int64_t q = qb + p;
      acc_t v = 0;
      if (q < q1 && m0 + m < g.Cout) v = static_cast<acc_t>(grad[((q / Npos) * g.Cout + m0 + m) * Npos + q % Npos]);
      Gs[p][m] = v;
    }
    __syncthreads();
#pragma unroll
    for (int r = 0; r < kWgTP * kWgTK / kWgThreads; ++r) {
      const int p = ty + r * (kWgThreads / kWgTK);
      acc_t v = 0;
      if (inside(g, p_c[p][0] + a0, p_c[p][1] + a1, p_c[p][2] + a2, p_c[p][3] + a3))
        v = static_cast<acc_t>(x[p_base[p] + koff]);
      Xs[p][tx] = v;
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < kWgTP; ++p) {
      const acc_t xv = Xs[p][tx];
#pragma unroll
      for (int i = 0; i < kWgTM / 4; ++i) acc[i] += Gs[p][ty + 4 * i] * xv;
    }
    __syncthreads();
  }
  if (k >= K) return;
#pragma unroll
  for (int i = 0; i < kWgTM / 4; ++i) {
    const int64_t m = m0 + ty + 4 * i;
    if (m < g.Cout) partial[(static_cast<int64_t>(blockIdx.z) * g.Cout + m) * K + k] = acc[i];
  }
}

}  // namespace conv4d_kernels
}  // namespace semcorr
