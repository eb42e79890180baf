// Launch sequence of hough_match's CUDA kernels (csrc/hough_common: one pair at a time, bins from the box
// centres), shared by hough_match_cuda.cu and the host emulator (hough_match_emu.cpp), so tests exercise exactly
// what runs on a GPU. The entries at the end check the arguments and handle empty inputs; their callers set the
// device guard and pass the stream.
#pragma once
#include <ATen/Context.h>
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/util/Optional.h>

#include <algorithm>

#include "hough_match/hough_match_host.h"
// simt.h (through the launch code) after every torch header: under emulation it defines CUDA's `__`-names
#include "hough_common/hough_launch.h"

namespace semcorr {
namespace hough_match_launch {

using hough_launch::acc_dtype;
using hough_launch::run_pair;

// hough_match on contiguous, non-empty inputs; grad == nullptr for the forward.
inline at::Tensor match_sequence(const at::Tensor* grad, const at::Tensor& app, const at::Tensor& src_centers,
                                 const at::Tensor& tgt_centers, c10::ArrayRef<double> src_size,
                                 c10::ArrayRef<double> tgt_size, int64_t ncells, bool smooth, cudaStream_t stream) {
  at::globalContext().alertNotDeterministic(grad ? "semcorr::_hough_match_backward (CUDA: float atomics)"
                                                 : "semcorr::hough_match (CUDA: float atomics)");
  const auto [B, Ns, Nt, a, g, sc, tc, geo] =
      hough_match_host::prepare_pass(grad, app, src_centers, tgt_centers, src_size, tgt_size, ncells);
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

// The CUDA entries of semcorr::hough_match and _hough_match_backward: argument checks and empty inputs around
// the sequence above.
inline at::Tensor hough_match(const at::Tensor& app, const at::Tensor& src_centers, const at::Tensor& tgt_centers,
                              c10::ArrayRef<double> src_size, c10::ArrayRef<double> tgt_size, int64_t ncells,
                              bool smooth, cudaStream_t stream) {
  hough_match_host::check_args(app, src_centers, tgt_centers, src_size, tgt_size, ncells, /*allow_half=*/true);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return match_sequence(nullptr, app, src_centers, tgt_centers, src_size, tgt_size, ncells, smooth, stream);
}

inline at::Tensor hough_match_backward(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& src_centers,
                                       const at::Tensor& tgt_centers, c10::ArrayRef<double> src_size,
                                       c10::ArrayRef<double> tgt_size, int64_t ncells, bool smooth,
                                       cudaStream_t stream) {
  constexpr const char* op = "semcorr::_hough_match_backward";
  hough_match_host::check_args(app, src_centers, tgt_centers, src_size, tgt_size, ncells, true, op);
  hough_match_host::check_backward_args(grad, app, op);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return match_sequence(&grad, app, src_centers, tgt_centers, src_size, tgt_size, ncells, smooth, stream);
}

}  // namespace hough_match_launch
}  // namespace semcorr
