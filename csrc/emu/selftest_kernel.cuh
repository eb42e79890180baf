// Self-test kernels of the CUDA host emulator (csrc/common/simt.h), written as ordinary CUDA in the portable
// vocabulary: they compile under nvcc as real kernels and under g++ -DSC_EMULATION for
// tests/test_emu_simt.py. Kernels 1-3 (and the vote/shuffle/coverage kernels) are correct and must reproduce
// exact results under every schedule and block order; the others contain deliberate bugs that the emulator
// must report (or expose). Lines tagged `SELFTEST-LINE: <name>` are looked up by the tests to check that error
// messages point at them; keep each tag on the line of its statement.
#pragma once
#include "common/simt.h"

#include <climits>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace semcorr {
namespace emu_selftest {

constexpr int kTile = 16;

// ---- 1. tiled shared-memory matrix multiply: C (M x N) = A (M x K) @ B (K x N), all row-major -----------------
// One 16x16 tile of C per block (block 16x16). Each C element sums k in increasing order, so a float64 reference
// summing in the same order is bit-exact.
template <typename T>
__global__ void __launch_bounds__(kTile * kTile)
    matmul_tiled_kernel(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C, int M, int K, int N) {
  __shared__ T As[kTile][kTile];
  __shared__ T Bs[kTile][kTile + 1];  // +1: no bank conflicts on the column reads
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * kTile + ty;
  const int col = blockIdx.x * kTile + tx;
  T acc = T(0);
  for (int k0 = 0; k0 < K; k0 += kTile) {
    As[ty][tx] = (row < M && k0 + tx < K) ? A[int64_t(row) * K + k0 + tx] : T(0);
    Bs[ty][tx] = (k0 + ty < K && col < N) ? B[int64_t(k0 + ty) * N + col] : T(0);
    __syncthreads();
    for (int k = 0; k < kTile; ++k) acc += As[ty][k] * Bs[k][tx];
    __syncthreads();
  }
  if (row < M && col < N) C[int64_t(row) * N + col] = acc;
}

template <typename T>
inline void launch_matmul_tiled(const T* A, const T* B, T* C, int M, int K, int N, cudaStream_t stream) {
  if (M == 0 || N == 0) return;
  const dim3 block(kTile, kTile);
  const dim3 grid((N + kTile - 1) / kTile, (M + kTile - 1) / kTile);
  SC_LAUNCH(matmul_tiled_kernel<T>, grid, block, 0, stream)(A, B, C, M, K, N);
}

// ---- 2. warp-shuffle reductions: per-row sum, max and argmax (lowest index among ties) -----------------------
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = warpSize / 2; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;  // complete in lane 0
}

// Butterfly: every lane ends with the warp's (max, lowest index of the max).
template <typename T>
__device__ __forceinline__ void warp_argmax(T& v, int& idx) {
  for (int mask = warpSize / 2; mask > 0; mask /= 2) {
    const T ov = __shfl_xor_sync(0xffffffffu, v, mask);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, mask);
    if (ov > v || (ov == v && oi < idx)) {
      v = ov;
      idx = oi;
    }
  }
}

// One block per row; blockDim.x a multiple of 32 (<= 1024).
template <typename T>
__global__ void row_sum_argmax_kernel(const T* __restrict__ x, int rows, int cols, T* __restrict__ sums,
                                      T* __restrict__ maxs, int64_t* __restrict__ argmaxs) {
  __shared__ T s_sum[32];
  __shared__ T s_max[32];
  __shared__ int s_idx[32];
  const int row = blockIdx.x;
  if (row >= rows) return;  // uniform over the block
  const T* xr = x + int64_t(row) * cols;
  T sum = T(0);
  T best = T(-INFINITY);
  int best_idx = INT_MAX;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {  // increasing c: strict > keeps the first max
    const T v = xr[c];
    sum += v;
    if (v > best) {
      best = v;
      best_idx = c;
    }
  }
  sum = warp_sum(sum);
  warp_argmax(best, best_idx);
  const int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
  const int nwarps = blockDim.x / warpSize;
  if (lane == 0) {
    s_sum[warp] = sum;
    s_max[warp] = best;
    s_idx[warp] = best_idx;
  }
  __syncthreads();
  if (warp == 0) {
    sum = lane < nwarps ? s_sum[lane] : T(0);
    best = lane < nwarps ? s_max[lane] : T(-INFINITY);
    best_idx = lane < nwarps ? s_idx[lane] : INT_MAX;
    sum = warp_sum(sum);
    warp_argmax(best, best_idx);
    if (lane == 0) {
      sums[row] = sum;
      maxs[row] = best;
      argmaxs[row] = best_idx;
    }
  }
}

template <typename T>
inline void launch_row_sum_argmax(const T* x, int rows, int cols, T* sums, T* maxs, int64_t* argmaxs, int threads,
                                  cudaStream_t stream) {
  if (rows == 0) return;
  SC_LAUNCH(row_sum_argmax_kernel<T>, rows, threads, 0, stream)(x, rows, cols, sums, maxs, argmaxs);
}

// ---- 3. atomic histogram: per-block privatised histogram in dynamic shared memory, then global atomics -------
// counts[b] = #{i : bins[i] == b}, wsums[b] = sum of weights[i] over those i (out-of-range bins are ignored).
__host__ __device__ inline size_t histogram_count_bytes(int nbins) {
  return (size_t(nbins) * sizeof(int) + 15) / 16 * 16;  // the weight array starts 16-byte aligned
}

template <typename W>
__global__ void histogram_kernel(const int* __restrict__ bins, const W* __restrict__ weights, int n, int nbins,
                                 int* __restrict__ counts, W* __restrict__ wsums) {
  SC_DYNAMIC_SHARED(unsigned char, smem);
  int* s_count = reinterpret_cast<int*>(smem);
  W* s_w = reinterpret_cast<W*>(smem + histogram_count_bytes(nbins));
  for (int b = threadIdx.x; b < nbins; b += blockDim.x) {
    s_count[b] = 0;
    s_w[b] = W(0);
  }
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const int b = bins[i];
    if (b >= 0 && b < nbins) {
      atomicAdd(&s_count[b], 1);
      atomicAdd(&s_w[b], weights[i]);
    }
  }
  __syncthreads();
  for (int b = threadIdx.x; b < nbins; b += blockDim.x) {
    if (s_count[b] != 0) {
      atomicAdd(&counts[b], s_count[b]);
      atomicAdd(&wsums[b], s_w[b]);
    }
  }
}

template <typename W>
inline void launch_histogram(const int* bins, const W* weights, int n, int nbins, int* counts, W* wsums, int blocks,
                             int threads, cudaStream_t stream) {
  const size_t smem = histogram_count_bytes(nbins) + size_t(nbins) * sizeof(W);
  SC_LAUNCH(histogram_kernel<W>, blocks, threads, smem, stream)(bins, weights, n, nbins, counts, wsums);
}

// ---- atomics beyond add, votes and __syncthreads_count --------------------------------------------------------
// Over the n values v (threads beyond n vote false): max and min (atomicMax/Min), sum of (v + 10^6)
// (unsigned long long atomicAdd), #positive via __ballot_sync + __popc and via __syncthreads_count, #warps with
// __any_sync / __all_sync of (v > 0), and n again through an atomicCAS loop. max_v/min_v start at INT_MIN/INT_MAX.
struct AtomicVoteOut {
  int max_v;
  int min_v;
  unsigned long long sum;
  int ballot_pos;
  int count_pos;
  int any_warps;
  int all_warps;
  int cas_count;
};

__global__ void atomic_vote_kernel(const int* __restrict__ v, int n, AtomicVoteOut* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const bool in = i < n;
  const int x = in ? v[i] : 0;
  if (in) {
    atomicMax(&out->max_v, x);
    atomicMin(&out->min_v, x);
    atomicAdd(&out->sum, static_cast<unsigned long long>(static_cast<long long>(x) + 1000000));
    int old = out->cas_count, assumed;  // atomicAdd written as the classic CAS loop
    do {
      assumed = old;
      old = atomicCAS(&out->cas_count, assumed, assumed + 1);
    } while (old != assumed);
  }
  const unsigned ballot = __ballot_sync(0xffffffffu, in && x > 0);
  const int any = __any_sync(0xffffffffu, in && x > 0);
  const int all = __all_sync(0xffffffffu, in && x > 0);
  if (threadIdx.x % warpSize == 0) {
    atomicAdd(&out->ballot_pos, __popc(ballot));
    atomicAdd(&out->any_warps, any);
    atomicAdd(&out->all_warps, all);
  }
  const int count = __syncthreads_count(in && x > 0);
  if (threadIdx.x == 0) atomicAdd(&out->count_pos, count);
}

inline void launch_atomic_vote(const int* v, int n, AtomicVoteOut* out, int blocks, int threads,
                               cudaStream_t stream) {
  SC_LAUNCH(atomic_vote_kernel, blocks, threads, 0, stream)(v, n, out);
}

// ---- shuffle variants with sub-warp widths: y[4*i + k] for k = up, down, xor, idx --------------------------
template <typename T>
__global__ void shfl_variants_kernel(const T* __restrict__ x, T* __restrict__ y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % warpSize;
  const T v = x[i];
  y[4 * i + 0] = __shfl_up_sync(0xffffffffu, v, 3, 8);
  y[4 * i + 1] = __shfl_down_sync(0xffffffffu, v, 5, 16);
  y[4 * i + 2] = __shfl_xor_sync(0xffffffffu, v, 6);
  y[4 * i + 3] = __shfl_sync(0xffffffffu, v, lane * 7 + 1, 16);
}

template <typename T>
inline void launch_shfl_variants(const T* x, T* y, int blocks, int threads, cudaStream_t stream) {
  SC_LAUNCH(shfl_variants_kernel<T>, blocks, threads, 0, stream)(x, y);
}

// ---- 4. BUG: __syncthreads inside divergent code -------------------------------------------------------------
static __global__ void divergent_barrier_kernel(float* __restrict__ out) {
  __shared__ float s[1024];
  const int t = threadIdx.x;
  s[t] = float(t);
  if (t % 2 == 0) {
    __syncthreads();  // SELFTEST-LINE: divergent-even
    out[t] = s[t ^ 1];
  } else {
    __syncthreads();  // SELFTEST-LINE: divergent-odd
    out[t] = s[t ^ 1];
  }
}

// BUG: odd threads return before a barrier the even threads wait at.
static __global__ void early_exit_barrier_kernel(float* __restrict__ out) {
  const int t = threadIdx.x;
  if (t % 2 == 1) return;
  __syncthreads();  // SELFTEST-LINE: early-exit-barrier
  out[t] = 1.0f;
}

inline void launch_divergent_barrier(float* out, int threads, cudaStream_t stream) {
  SC_LAUNCH(divergent_barrier_kernel, 1, threads, 0, stream)(out);
}
inline void launch_early_exit_barrier(float* out, int threads, cudaStream_t stream) {
  SC_LAUNCH(early_exit_barrier_kernel, 1, threads, 0, stream)(out);
}

// ---- 5. BUG (when with_barrier is false): reading a neighbour's shared slot without a barrier --------------
// y[i] = x[i] + x[block start + (t + 1) % blockDim.x]   (x beyond n read as 0)
static __global__ void neighbour_sum_kernel(const float* __restrict__ x, float* __restrict__ y, int n,
                                            bool with_barrier) {
  __shared__ float s[1024];
  const int t = threadIdx.x;
  const int i = blockIdx.x * blockDim.x + t;
  s[t] = i < n ? x[i] : 0.0f;
  if (with_barrier) __syncthreads();  // uniform condition: legal CUDA
  const int nb = (t + 1) % blockDim.x;
  if (i < n) y[i] = s[t] + s[nb];
}

inline void launch_neighbour_sum(const float* x, float* y, int n, bool with_barrier, int threads,
                                 cudaStream_t stream) {
  if (n == 0) return;
  const int blocks = (n + threads - 1) / threads;
  SC_LAUNCH(neighbour_sum_kernel, blocks, threads, 0, stream)(x, y, n, with_barrier);
}

// ---- 6. BUG: reading dynamic shared memory nobody wrote (odd slots) -----------------------------------------
template <typename T>
__global__ void dynamic_smem_poison_kernel(const T* __restrict__ x, T* __restrict__ y, int n) {
  SC_DYNAMIC_SHARED(T, s);
  const int t = threadIdx.x;
  const int i = blockIdx.x * blockDim.x + t;
  if (t % 2 == 0 && i < n) s[t] = x[i];
  __syncthreads();
  if (i < n) y[i] = s[t];
}

template <typename T>
inline void launch_dynamic_smem_poison(const T* x, T* y, int n, int threads, cudaStream_t stream) {
  if (n == 0) return;
  SC_LAUNCH(dynamic_smem_poison_kernel<T>, (n + threads - 1) / threads, threads, threads * sizeof(T), stream)(x, y,
                                                                                                            n);
}

// ---- 7. BUG: a shuffle whose source lane is not in the mask ---------------------------------------------------
// Lanes 0-15 shuffle down by 8 with mask 0x0000ffff: lanes 0-7 read lanes 8-15 (fine), lanes 8-15 read lanes
// 16-23, which are not in the mask (undefined in CUDA; poison + warning in the emulator). Lanes 16-31 copy.
template <typename T>
__global__ void shfl_inactive_lane_kernel(const T* __restrict__ x, T* __restrict__ y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % warpSize;
  T r = x[i];
  if (lane < 16) r = __shfl_down_sync(0x0000ffffu, r, 8);  // SELFTEST-LINE: inactive-lane
  y[i] = r;
}

template <typename T>
inline void launch_shfl_inactive_lane(const T* x, T* y, int blocks, int threads, cudaStream_t stream) {
  SC_LAUNCH(shfl_inactive_lane_kernel<T>, blocks, threads, 0, stream)(x, y);
}

// ---- BUGs that hang a GPU: the emulator must raise instead ---------------------------------------------------
// Lanes 16-31 return; lanes 0-15 shuffle with a full mask that names them.
static __global__ void shfl_exited_lane_kernel(float* __restrict__ y) {
  const int lane = threadIdx.x % warpSize;
  if (lane >= 16) return;
  y[threadIdx.x] = __shfl_down_sync(0xffffffffu, float(threadIdx.x), 1);  // SELFTEST-LINE: exited-lane
}

// Lanes 0-15 wait in a full-mask shuffle for lanes 16-31, which wait at a barrier for lanes 0-15.
static __global__ void shfl_barrier_deadlock_kernel(float* __restrict__ y) {
  const int lane = threadIdx.x % warpSize;
  float v = float(threadIdx.x);
  if (lane < 16) {
    v = __shfl_down_sync(0xffffffffu, v, 1);  // SELFTEST-LINE: deadlock-shfl
  } else {
    __syncthreads();  // SELFTEST-LINE: deadlock-barrier
  }
  y[threadIdx.x] = v;
}

inline void launch_shfl_exited_lane(float* y, int threads, cudaStream_t stream) {
  SC_LAUNCH(shfl_exited_lane_kernel, 1, threads, 0, stream)(y);
}
inline void launch_shfl_barrier_deadlock(float* y, int threads, cudaStream_t stream) {
  SC_LAUNCH(shfl_barrier_deadlock_kernel, 1, threads, 0, stream)(y);
}

// ---- launch configuration: every (block, thread) runs exactly once, built-ins are consistent -----------------
// hits[b * nthreads + t] counts the runs of linear block b, linear thread t; bad counts inconsistent built-ins.
static __global__ void coverage_kernel(int* __restrict__ hits, int* __restrict__ bad) {
  const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned nt = blockDim.x * blockDim.y * blockDim.z;
  atomicAdd(&hits[size_t(b) * nt + t], 1);
  if (threadIdx.x >= blockDim.x || threadIdx.y >= blockDim.y || threadIdx.z >= blockDim.z ||
      blockIdx.x >= gridDim.x || blockIdx.y >= gridDim.y || blockIdx.z >= gridDim.z)
    atomicAdd(bad, 1);
}

inline void launch_coverage(int* hits, int* bad, dim3 grid, dim3 block, size_t smem, cudaStream_t stream) {
  SC_LAUNCH(coverage_kernel, grid, block, smem, stream)(hits, bad);
}

// ---- BUG for the sanitizer lane: each thread reads the dynamic shared slot of the next thread, and the launch
// sizes dynamic shared memory for exactly one float per thread, so the last thread reads one float past the
// end. Without AddressSanitizer this returns whatever follows the buffer; `make sanitize` must report it.
static __global__ void smem_oob_read_kernel(float* __restrict__ out) {
  SC_DYNAMIC_SHARED(float, s);
  const int t = threadIdx.x;
  s[t] = float(t);
  __syncthreads();
  out[t] = s[t + 1];  // BUG: t + 1 == blockDim.x for the last thread
}
inline void launch_smem_oob_read(float* out, int threads, cudaStream_t stream) {
  SC_LAUNCH(smem_oob_read_kernel, 1, threads, threads * sizeof(float), stream)(out);
}

#if defined(SC_EMULATION)
// Emulator only (a CUDA kernel cannot throw): thread 3 throws while the others wait at a barrier.
static __global__ void throwing_kernel(float* __restrict__ y) {
  if (threadIdx.x == 3) throw std::runtime_error("selftest: thread 3 throws");
  __syncthreads();
  y[threadIdx.x] = 1.0f;
}
inline void launch_throwing(float* y, int threads, cudaStream_t stream) {
  SC_LAUNCH(throwing_kernel, 1, threads, 0, stream)(y);
}
#endif

}  // namespace emu_selftest
}  // namespace semcorr
