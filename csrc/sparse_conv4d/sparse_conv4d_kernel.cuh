// CUDA kernels of kernel_map4d and sparse_conv4d, torch-free so that the same text also compiles under the
// host emulator (csrc/common/simt.h). Host glue: sparse_conv4d_cuda.cu, sparse_conv4d_emu.cpp.
#pragma once
#include "common/math.cuh"
#include "common/simt_tile.cuh"

namespace semcorr {
namespace sparse_conv4d_kernels {

// The coordinate key space (see sparse_conv4d_host.h KeySpace) and the kernel sizes, passed by value.
struct MapArgs {
  int64_t extent[5];
  int64_t stride[5];
  int64_t k[4];
};

// nbr[o, n] = the row whose coordinates are coords[n] + delta_o, or -1. coords (N, 5) int64; sorted_keys (N)
// ascending with order[i] the row of sorted_keys[i] (keys unique). One thread per (o, n), n fastest.
__global__ inline void kmap_search_kernel(const int64_t* __restrict__ coords, const int64_t* __restrict__ sorted_keys,
                                          const int64_t* __restrict__ order, int64_t N, int64_t K, MapArgs a,
                                          int64_t* __restrict__ nbr) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= K * N) return;
  const int64_t o = idx / N, n = idx % N;
  int64_t delta[5] = {0, 0, 0, 0, 0};
  int64_t rem = o;
  for (int d = 3; d >= 0; --d) {
    delta[d + 1] = rem % a.k[d] - a.k[d] / 2;
    rem /= a.k[d];
  }
  int64_t key = 0;
  bool inside = true;
  for (int d = 0; d < 5; ++d) {
    const int64_t x = coords[n * 5 + d] + delta[d];
    inside = inside && x >= 0 && x < a.extent[d];
    key += x * a.stride[d];
  }
  int64_t found = -1;
  if (inside) {
    int64_t lo = 0, hi = N;  // first i with sorted_keys[i] >= key
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (sorted_keys[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    if (lo < N && sorted_keys[lo] == key) found = order[lo];
  }
  nbr[idx] = found;
}

// Gather-GEMM-scatter of one kernel offset: for p < P and n < Nd,
//   C[c_rows[p], n] += sum_q A[a_rows[p], q] * W[q * ldw_q + n * ldw_n]
// A (rows, Kd) row-major, C (rows, Nd) row-major in the accumulation type. The c_rows of one launch are
// distinct (one offset maps each row at most once), so every output element has exactly one writer: no
// atomics, deterministic. Tile: 32 pairs x 32 columns per block of 16x16 threads (2x2 micro-tiles), 16-deep.
// Grid (ceil(P / 32), ceil(Nd / 32)).
constexpr int kTile = 32;
constexpr int kDepth = 16;
constexpr int kThreads = 16;
constexpr int kMicro = kTile / kThreads;

template <typename scalar_t, typename acc_t>
__global__ void gather_gemm_scatter_kernel(const scalar_t* __restrict__ A, const int64_t* __restrict__ a_rows,
                                           const scalar_t* __restrict__ W, int64_t ldw_q, int64_t ldw_n,
                                           const int64_t* __restrict__ c_rows, acc_t* __restrict__ Cm, int64_t P,
                                           int64_t Kd, int64_t Nd) {
  __shared__ acc_t As[kDepth][kTile + 1];
  __shared__ acc_t Ws[kDepth][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThreads + tx;
  const int64_t p0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * kTile;
  acc_t acc[kMicro][kMicro];
  simt_tile_zero(acc);
  for (int64_t q0 = 0; q0 < Kd; q0 += kDepth) {
#pragma unroll
    for (int r = 0; r < (kDepth * kTile) / (kThreads * kThreads); ++r) {
      const int e = tid + r * kThreads * kThreads;
      // A: consecutive threads read consecutive q of one gathered row
      const int qa = e % kDepth, pa = e / kDepth;
      const int64_t p = p0 + pa, q = q0 + qa;
      As[qa][pa] = (p < P && q < Kd) ? static_cast<acc_t>(A[a_rows[p] * Kd + q]) : acc_t(0);
      const int nw = e % kTile, qw = e / kTile;
      const int64_t n = n0 + nw, q2 = q0 + qw;
      Ws[qw][nw] = (n < Nd && q2 < Kd) ? static_cast<acc_t>(W[q2 * ldw_q + n * ldw_n]) : acc_t(0);
    }
    __syncthreads();
    simt_tile_step<kThreads, kThreads>(As, Ws, ty, tx, acc);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kMicro; ++i) {
    const int64_t p = p0 + ty + i * kThreads;
    if (p >= P) continue;
    acc_t* crow = Cm + c_rows[p] * Nd;
#pragma unroll
    for (int j = 0; j < kMicro; ++j) {
      const int64_t n = n0 + tx + j * kThreads;
      if (n < Nd) crow[n] += acc[i][j];
    }
  }
}

// Weight gradient: gw[o, ci, co] = sum over pairs p of offset o of F[in_rows[p], ci] * G[out_rows[p], co].
// F (N, Cin), G (N, Cout), gw (K, Cin, Cout); ptr (K + 1) the offsets' pair ranges. Grid
// (ceil(Cout / 32), ceil(Cin / 32), K), block 16x16; each block reduces over its offset's pairs in a fixed
// order (deterministic).
template <typename scalar_t, typename acc_t>
__global__ void wgrad_kernel(const scalar_t* __restrict__ F, const int64_t* __restrict__ in_rows,
                             const scalar_t* __restrict__ G, const int64_t* __restrict__ out_rows,
                             const int64_t* __restrict__ ptr, scalar_t* __restrict__ gw, int64_t Cin, int64_t Cout) {
  __shared__ acc_t Fs[kDepth][kTile + 1];
  __shared__ acc_t Gs[kDepth][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThreads + tx;
  const int64_t o = blockIdx.z;
  const int64_t co0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int64_t ci0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t pb = ptr[o], pe = ptr[o + 1];
  acc_t acc[kMicro][kMicro];
  simt_tile_zero(acc);
  for (int64_t p0 = pb; p0 < pe; p0 += kDepth) {
#pragma unroll
    for (int r = 0; r < (kDepth * kTile) / (kThreads * kThreads); ++r) {
      const int e = tid + r * kThreads * kThreads;
      const int c = e % kTile, pp = e / kTile;
      const int64_t p = p0 + pp;
      Fs[pp][c] = (p < pe && ci0 + c < Cin) ? static_cast<acc_t>(F[in_rows[p] * Cin + ci0 + c]) : acc_t(0);
      Gs[pp][c] = (p < pe && co0 + c < Cout) ? static_cast<acc_t>(G[out_rows[p] * Cout + co0 + c]) : acc_t(0);
    }
    __syncthreads();
    simt_tile_step<kThreads, kThreads>(Fs, Gs, ty, tx, acc);
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kMicro; ++i) {
    const int64_t ci = ci0 + ty + i * kThreads;
    if (ci >= Cin) continue;
#pragma unroll
    for (int j = 0; j < kMicro; ++j) {
      const int64_t co = co0 + tx + j * kThreads;
      if (co < Cout) gw[(o * Cin + ci) * Cout + co] = static_cast<scalar_t>(acc[i][j]);
    }
  }
}

}  // namespace sparse_conv4d_kernels
}  // namespace semcorr
