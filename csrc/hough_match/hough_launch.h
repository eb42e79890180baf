// Launch sequences of the Hough voting kernels, shared by the GPU host glue (hough_match_cuda.cu,
// hough_vote_cuda.cu) and the host emulator (csrc/emu/emu_hough.cpp), so tests exercise exactly what runs on
// a GPU. Callers check arguments, handle empty inputs, set the device guard and pass the stream.
#pragma once
#include <ATen/Context.h>
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/tensor.h>
#include <c10/util/Optional.h>

#include <algorithm>
#include <vector>

#include "hough_match/hough_match_host.h"
#include "hough_vote/hough_vote_host.h"
#include "common/launch.h"
#include "hough_match/hough_kernel.cuh"

namespace semcorr {
namespace hough_launch {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;  // grid-stride beyond this

inline dim3 grid_for(int64_t n) { return dim3(static_cast<unsigned>(std::clamp<int64_t>(ceil_div<int64_t>(n, kThreads), 1, sc_grid_cap(kMaxBlocks)))); }

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

// hough_match on contiguous, non-empty inputs; grad == nullptr for the forward.
inline at::Tensor hough_match(const at::Tensor* grad, const at::Tensor& app, const at::Tensor& src_centers,
                              const at::Tensor& tgt_centers, c10::ArrayRef<double> src_size,
                              c10::ArrayRef<double> tgt_size, int64_t ncells, bool smooth, cudaStream_t stream) {
  at::globalContext().alertNotDeterministic(grad ? "semcorr::_hough_match_backward (CUDA: float atomics)"
                                                 : "semcorr::hough_match (CUDA: float atomics)");
  const int64_t B = app.size(0), Ns = app.size(1), Nt = app.size(2);
  const auto a = app.contiguous();
  const auto g = grad ? grad->contiguous() : at::Tensor();
  const auto sc = src_centers.contiguous();
  const auto tc = tgt_centers.contiguous();
  const auto geo = hough_match_host::geometries(src_size, tgt_size, B, ncells);
  int64_t nb_max = 1;
  for (const auto& pg : geo) nb_max = std::max(nb_max, pg.nbins());
  const auto accd = acc_dtype(app.scalar_type());
  const auto kernel = hough_match_host::gaussian7(accd).to(app.device()).contiguous();
  auto hist = at::zeros({B, 2, nb_max}, app.options().dtype(accd));
  auto smoothed = at::empty({2, nb_max}, app.options().dtype(accd));
  auto out = at::empty_like(a);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, app.scalar_type(), "hough_match_cuda", [&] {
    using app_t = scalar_t;
    using acc = acc_t<app_t>;
    AT_DISPATCH_FLOATING_TYPES(sc.scalar_type(), "hough_match_cuda_centers", [&] {
      using ctr_t = scalar_t;
      for (int64_t b = 0; b < B; ++b) {
        const auto& pg = geo[b];
        const hough::MatchBins<ctr_t> fn{sc.const_data_ptr<ctr_t>() + b * Ns * 2, tc.const_data_ptr<ctr_t>() + b * Nt * 2,
                                         static_cast<ctr_t>(pg.src_w), static_cast<ctr_t>(pg.src_h),
                                         static_cast<ctr_t>(pg.cell), pg.nbins_x, pg.nbins_y};
        run_pair<app_t, acc>(a.const_data_ptr<app_t>() + b * Ns * Nt,
                             grad ? g.const_data_ptr<app_t>() + b * Ns * Nt : nullptr,
                             out.mutable_data_ptr<app_t>() + b * Ns * Nt, Ns, Nt, fn,
                             hough_match_host::grid_of(pg, smooth), smooth ? kernel.const_data_ptr<acc>() : nullptr,
                             hist.mutable_data_ptr<acc>() + b * 2 * nb_max, smoothed.mutable_data_ptr<acc>(), stream);
      }
    });
  });
  return out;
}

// hough_vote on non-empty inputs; grad == nullptr for the forward.
inline at::Tensor hough_vote(const at::Tensor* grad, const at::Tensor& app, const at::Tensor& bins,
                             c10::IntArrayRef nbins, const std::optional<at::Tensor>& smooth_kernel, const char* op,
                             cudaStream_t stream) {
  at::globalContext().alertNotDeterministic(grad ? "semcorr::_hough_vote_backward (CUDA: float atomics)"
                                                 : "semcorr::hough_vote (CUDA: float atomics)");
  const int64_t B = app.size(0), Ns = app.size(1), Nt = app.size(2);
  const auto accd = acc_dtype(app.scalar_type());
  const auto p = hough_vote_host::prepare(app, bins, nbins, smooth_kernel, accd, op);
  const auto a = app.contiguous();
  const auto g = grad ? grad->contiguous() : at::Tensor();
  const int64_t nb = p.nbins();
  auto hist = at::zeros({B, 2, nb}, app.options().dtype(accd));
  auto smoothed = at::empty({2, nb}, app.options().dtype(accd));
  auto out = at::empty_like(a);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, app.scalar_type(), "hough_vote_cuda", [&] {
    using acc = acc_t<scalar_t>;
    for (int64_t b = 0; b < B; ++b) {
      const hough::TensorBins fn{p.bins.const_data_ptr<int64_t>() + b * Ns * Nt, Nt};
      run_pair<scalar_t, acc>(a.const_data_ptr<scalar_t>() + b * Ns * Nt,
                              grad ? g.const_data_ptr<scalar_t>() + b * Ns * Nt : nullptr,
                              out.mutable_data_ptr<scalar_t>() + b * Ns * Nt, Ns, Nt, fn, p.grid,
                              p.kernel.defined() ? p.kernel.const_data_ptr<acc>() : nullptr,
                              hist.mutable_data_ptr<acc>() + b * 2 * nb, smoothed.mutable_data_ptr<acc>(), stream);
    }
  });
  return out;
}

}  // namespace hough_launch
}  // namespace semcorr
