// CUDA kernel of patchmatch_select, torch-free (also compiled under the host emulator): one thread per source
// pixel runs the shared selection loop.
#pragma once
#include "patchmatch_select/patchmatch_select_math.h"

namespace semcorr {
namespace patchmatch_select_kernels {

template <typename scalar_t, typename acc_t>
__global__ void select_kernel(const int64_t* __restrict__ cand, const scalar_t* __restrict__ score,
                              const bool* __restrict__ valid, int64_t npix, int64_t N, int64_t k, acc_t neg_inf,
                              int64_t* __restrict__ om, scalar_t* __restrict__ os, int64_t* __restrict__ oi) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= npix) return;
  pms::select_pixel<scalar_t, acc_t>(cand + p * N * 2, score + p * N, valid + p * N, N, k, neg_inf, om + p * k * 2,
                                     os + p * k, oi + p * k);
}

}  // namespace patchmatch_select_kernels
}  // namespace semcorr
