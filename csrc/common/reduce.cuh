// Block-wide reductions for CUDA kernels (and their emulation). blockDim.x must be a multiple of 32.
#pragma once
#include "common/simt.h"

namespace semcorr {

template <typename T> __device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

// Sum over the block's x-threads; `partial` is a __shared__ array of 32. The result is valid in every
// thread. Must be reached by all threads of the block (it synchronises).
template <typename T> __device__ __forceinline__ T block_sum(T v, T* partial) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  v = warp_sum(v);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  T total = lane < nwarps ? partial[lane] : T(0);
  total = warp_sum(total);
  __syncthreads();  // `partial` may be reused right after
  return total;
}

// Max with the lowest index on ties, over the block's x-threads; `pv`/`pi` are __shared__ arrays of 32.
template <typename T> __device__ __forceinline__ void warp_argmax(T& v, int64_t& i) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const T ov = __shfl_xor_sync(0xffffffffu, v, off);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, i, off);
    if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
  }
}

template <typename T> __device__ __forceinline__ void block_argmax(T& v, int64_t& i, T* pv, int64_t* pi) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  warp_argmax(v, i);
  if (lane == 0) { pv[warp] = v; pi[warp] = i; }
  __syncthreads();
  if (lane < nwarps) { v = pv[lane]; i = pi[lane]; } else { v = pv[0]; i = pi[0]; }
  warp_argmax(v, i);
  __syncthreads();
}

}  // namespace semcorr
