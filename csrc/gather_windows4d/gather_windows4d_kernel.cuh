// CUDA kernels of gather_windows4d and gather_windows4d_points, torch-free (also compiled under the host emulator).
#pragma once
#include "gather_windows4d/gather_windows4d_math.h"

namespace semcorr {
namespace gather_windows4d_kernels {

// One thread per output element (grid-stride): consecutive threads write consecutive window taps.
template <typename scalar_t>
__global__ void forward_kernel(gw::Dims d, const scalar_t* __restrict__ corr, const int64_t* __restrict__ cand,
                               scalar_t* __restrict__ out, int64_t total) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[e] = gw::gather_one(d, corr, cand, e);
}

template <typename scalar_t>
__global__ void points_forward_kernel(gw::Dims d, const scalar_t* __restrict__ corr,
                                      const int64_t* __restrict__ points, scalar_t* __restrict__ out, int64_t total) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[e] = gw::gather_one_point(d, corr, points, e);
}

// One thread per element of the gradient volume, summing the window taps that read it in a fixed order (no
// atomics: deterministic, and the same order of additions as the CPU kernel). Windows: gw::FixedWindows
// (gather_windows4d) or gw::CsrWindows (gather_windows4d_points).
template <typename scalar_t, typename acc_t, typename Windows>
__global__ void backward_kernel(gw::Dims d, Windows windows, const scalar_t* __restrict__ grad,
                                acc_t* __restrict__ gin, int64_t total) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t v = e % d.Wt, u = (e / d.Wt) % d.Ht, cell = e / (d.Wt * d.Ht);
    const int64_t j2 = cell % d.Ws, i2 = (cell / d.Ws) % d.Hs, b = cell / (d.Ws * d.Hs);
    gin[e] = gw::backward_one<scalar_t, acc_t>(d, windows, grad, b, i2, j2, u, v);
  }
}

}  // namespace gather_windows4d_kernels
}  // namespace semcorr
