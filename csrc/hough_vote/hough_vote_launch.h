// Launch sequence of hough_vote's CUDA kernels (csrc/hough_common: one pair at a time, bins from a tensor),
// shared by hough_vote_cuda.cu and the host emulator (hough_vote_emu.cpp). The entries at the end check the
// arguments and handle empty inputs; their callers set the device guard and pass the stream.
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

#include "hough_vote/hough_vote_host.h"
// simt.h (through the launch code) after every torch header: under emulation it defines CUDA's `__`-names
#include "hough_common/hough_launch.h"

namespace semcorr {
namespace hough_vote_launch {

using hough_launch::acc_dtype;
using hough_launch::run_pair;

// hough_vote on non-empty inputs; grad == nullptr for the forward.
inline at::Tensor vote_sequence(const at::Tensor* grad, const at::Tensor& app, const at::Tensor& bins,
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

// The CUDA entries of semcorr::hough_vote and _hough_vote_backward: argument checks and empty inputs around the
// sequence above.
inline at::Tensor hough_vote(const at::Tensor& app, const at::Tensor& bins, c10::IntArrayRef nbins,
                             const std::optional<at::Tensor>& smooth_kernel, cudaStream_t stream) {
  hough_vote_host::check_args(app, bins, nbins, smooth_kernel, /*allow_half=*/true);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return vote_sequence(nullptr, app, bins, nbins, smooth_kernel, "semcorr::hough_vote", stream);
}

inline at::Tensor hough_vote_backward(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& bins,
                                      c10::IntArrayRef nbins, const std::optional<at::Tensor>& smooth_kernel,
                                      cudaStream_t stream) {
  constexpr const char* op = "semcorr::_hough_vote_backward";
  hough_vote_host::check_args(app, bins, nbins, smooth_kernel, true, op);
  hough_vote_host::check_backward_args(grad, app, op);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return vote_sequence(&grad, app, bins, nbins, smooth_kernel, op, stream);
}

}  // namespace hough_vote_launch
}  // namespace semcorr
