// CUDA kernels of max_pool4d (torch-free; also compiled under the host emulator). One thread per output
// block; the per-block code is shared with the CPU kernel (max_pool4d_math.h).
#pragma once
#include "max_pool4d/max_pool4d_math.h"

namespace semcorr {
namespace max_pool4d_kernels {

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ x, scalar_t* __restrict__ values,
                               int64_t* __restrict__ argmax, max_pool4d_math::Dims g, int64_t n) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n) return;
  int64_t off[4];
  max_pool4d_math::block_max<scalar_t, acc_t>(x, g, idx, values[idx], off);
#pragma unroll
  for (int d = 0; d < 4; ++d) argmax[max_pool4d_math::argmax_index(g, idx, d)] = off[d];
}

// grad_x must be zero-filled; blocks do not overlap, so each thread owns the element it writes. The host
// rejects offsets outside [0, k) before the launch (max_pool4d_host::check_argmax_range); the kernel still
// skips them rather than write out of bounds.
template <typename scalar_t>
__global__ void backward_kernel(const scalar_t* __restrict__ grad, const int64_t* __restrict__ argmax,
                                scalar_t* __restrict__ grad_x, max_pool4d_math::Dims g, int64_t n) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n) return;
  int64_t a[4];
  bool ok = true;
#pragma unroll
  for (int d = 0; d < 4; ++d) {
    a[d] = argmax[max_pool4d_math::argmax_index(g, idx, d)];
    ok = ok && a[d] >= 0 && a[d] < g.k[d];
  }
  if (ok) grad_x[max_pool4d_math::input_offset(g, idx, a)] = grad[idx];
}

}  // namespace max_pool4d_kernels
}  // namespace semcorr
