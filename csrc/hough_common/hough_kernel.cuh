// CUDA kernels of Hough voting (hough_match and hough_vote), torch-free so that the same text also compiles
// under the host emulator (csrc/common/simt.h). One pair per launch; bins come from a functor
// (hough::MatchBins computes them from box centres on the fly, hough::TensorBins reads a tensor).
//
// Layouts (contiguous): app / grad / out (Ns, Nt); hist, ghist, smoothed: the pair's D*H*W bins (acc type).
#pragma once
#include "hough_common/hough_math.h"

namespace semcorr {
namespace hough_kernels {

// votes: hist[bin] += app (and ghist[bin] += app * grad for the backward). Grid-stride over the Ns*Nt
// matches, consecutive threads on consecutive n (coalesced reads). Float atomics: the summation order is
// nondeterministic (the host code raises the nondeterminism alert).
template <typename scalar_t, typename acc_t, typename BinFn>
__global__ void scatter_kernel(const scalar_t* __restrict__ app, const scalar_t* __restrict__ grad, BinFn fn,
                               int64_t Ns, int64_t Nt, acc_t* __restrict__ hist, acc_t* __restrict__ ghist) {
  const int64_t total = Ns * Nt;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t m = i / Nt, n = i - m * Nt;
    const int64_t k = fn(m, n);
    if (k < 0) continue;
    const acc_t a = static_cast<acc_t>(app[i]);
    atomicAdd(hist + k, a);
    if (grad != nullptr) atomicAdd(ghist + k, a * static_cast<acc_t>(grad[i]));
  }
}

// out[p] = smoothing of `in` at bin p (hough::smooth_at; `transpose` = its adjoint). One thread per bin.
template <typename acc_t>
__global__ void smooth_kernel(const acc_t* __restrict__ in, acc_t* __restrict__ out, const acc_t* __restrict__ k,
                              hough::Grid3 g, bool transpose) {
  const int64_t total = g.D * g.H * g.W;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < total; p += step) {
    const int64_t x = p % g.W, y = (p / g.W) % g.H, z = p / (g.W * g.H);
    out[p] = hough::smooth_at(in, k, g, z, y, x, transpose);
  }
}

// Forward (grad == nullptr): out = app * V[bin]. Backward: out = grad * V[bin] + G[bin] (G: the adjoint-smoothed
// votes of grad * app). 0 where bin < 0.
template <typename scalar_t, typename acc_t, typename BinFn>
__global__ void gather_kernel(const scalar_t* __restrict__ app, const scalar_t* __restrict__ grad, BinFn fn,
                              int64_t Ns, int64_t Nt, const acc_t* __restrict__ V, const acc_t* __restrict__ G,
                              scalar_t* __restrict__ out) {
  const int64_t total = Ns * Nt;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t m = i / Nt, n = i - m * Nt;
    const int64_t k = fn(m, n);
    acc_t v = acc_t(0);
    if (k >= 0) {
      v = grad == nullptr ? static_cast<acc_t>(app[i]) * V[k] : static_cast<acc_t>(grad[i]) * V[k] + G[k];
    }
    out[i] = static_cast<scalar_t>(v);
  }
}

}  // namespace hough_kernels
}  // namespace semcorr
