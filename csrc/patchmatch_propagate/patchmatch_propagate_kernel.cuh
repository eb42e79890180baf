// CUDA kernel of patchmatch_propagate, torch-free (also compiled under the host emulator): one thread per
// source pixel runs the shared candidate generation of patchmatch_propagate_math.h.
#pragma once
#include "patchmatch_propagate/patchmatch_propagate_math.h"

namespace semcorr {
namespace patchmatch_propagate_kernels {

__global__ void propagate_kernel(pm::Params p, const int64_t* __restrict__ matches, const int64_t* __restrict__ offsets,
                                 int64_t* __restrict__ cand, bool* __restrict__ valid) {
  const int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t npix = p.B * p.Hs * p.Ws;
  if (pix >= npix) return;
  const int64_t N = p.N(), b = pix / (p.Hs * p.Ws), ij = pix % (p.Hs * p.Ws);
  pm::pixel(p, matches + b * p.Hs * p.Ws * p.K * 2, offsets, b, ij / p.Ws, ij % p.Ws, cand + pix * N * 2,
            valid + pix * N);
}

}  // namespace patchmatch_propagate_kernels
}  // namespace semcorr
