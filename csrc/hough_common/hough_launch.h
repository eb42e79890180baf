// The launch of one image pair's Hough voting (scatter -> smooth -> gather, hough_kernel.cuh), shared by the
// launch sequences of hough_match (csrc/hough_match/hough_match_launch.h) and hough_vote
// (csrc/hough_vote/hough_vote_launch.h).
#pragma once
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>

#include "common/launch.h"
#include "hough_common/hough_kernel.cuh"

namespace semcorr {
namespace hough_launch {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;  // grid-stride beyond this

inline dim3 grid_for(int64_t n) {
  return dim3(static_cast<unsigned>(std::clamp<int64_t>(ceil_div<int64_t>(n, kThreads), 1, sc_grid_cap(kMaxBlocks))));
}

// One pair: scatter -> (smooth) -> gather. hist: 2 * nb zeroed acc values (votes, grad votes); smoothed: 2 * nb
// scratch; kernel: kd*kh*kw acc values or nullptr.
template <typename scalar_t, typename acc, typename BinFn>
void run_pair(const scalar_t* app, const scalar_t* grad, scalar_t* out, int64_t Ns, int64_t Nt, BinFn fn,
              const hough::Grid3& g, const acc* kernel, acc* hist, acc* smoothed, cudaStream_t stream) {
  using namespace hough_kernels;
  const int64_t nb = g.D * g.H * g.W, n = Ns * Nt;
  const auto scatter_fn = &scatter_kernel<scalar_t, acc, BinFn>;
  SC_LAUNCH(scatter_fn, grid_for(n), dim3(kThreads), 0, stream)(app, grad, fn, Ns, Nt, hist, hist + nb);
  SEMCORR_LAUNCH_CHECK();
  const acc* V = hist;
  const acc* G = hist + nb;
  if (kernel != nullptr) {
    const auto smooth_fn = &smooth_kernel<acc>;
    SC_LAUNCH(smooth_fn, grid_for(nb), dim3(kThreads), 0, stream)(hist, smoothed, kernel, g, false);
    SEMCORR_LAUNCH_CHECK();
    if (grad != nullptr) {
      SC_LAUNCH(smooth_fn, grid_for(nb), dim3(kThreads), 0, stream)(hist + nb, smoothed + nb, kernel, g, true);
      SEMCORR_LAUNCH_CHECK();
    }
    V = smoothed;
    G = smoothed + nb;
  }
  const auto gather_fn = &gather_kernel<scalar_t, acc, BinFn>;
  SC_LAUNCH(gather_fn, grid_for(n), dim3(kThreads), 0, stream)(app, grad, fn, Ns, Nt, V, G, out);
  SEMCORR_LAUNCH_CHECK();
}

inline at::ScalarType acc_dtype(at::ScalarType s) { return s == at::kDouble ? at::kDouble : at::kFloat; }

}  // namespace hough_launch
}  // namespace semcorr
