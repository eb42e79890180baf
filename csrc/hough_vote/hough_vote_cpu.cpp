// CPU kernels of hough_vote: the shared scatter -> smooth -> gather engine (csrc/hough_common/hough_cpu.h)
// with bins read from a tensor (hough::TensorBins).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include "hough_common/hough_cpu.h"
#include "hough_vote/hough_vote.h"
#include "hough_vote/hough_vote_host.h"

namespace semcorr {
namespace {

at::Tensor run_cpu(const at::Tensor* grad, const at::Tensor& app, const at::Tensor& bins, c10::IntArrayRef nbins,
                   const std::optional<at::Tensor>& smooth_kernel, const char* op) {
  const int64_t B = app.size(0), Ns = app.size(1), Nt = app.size(2);
  const auto p = hough_vote_host::prepare(app, bins, nbins, smooth_kernel, at::kDouble, op);
  const auto a = app.contiguous();
  const auto g = grad ? grad->contiguous() : at::Tensor();
  std::vector<hough::TensorBins> fns;
  for (int64_t b = 0; b < B; ++b) fns.push_back(hough::TensorBins{p.bins.const_data_ptr<int64_t>() + b * Ns * Nt, Nt});
  const std::vector<hough::Grid3> grids(B, p.grid);
  auto out = at::empty_like(a);
  AT_DISPATCH_FLOATING_TYPES(app.scalar_type(), "hough_vote_cpu", [&] {
    hough_cpu::run<scalar_t>(a.const_data_ptr<scalar_t>(), grad ? g.const_data_ptr<scalar_t>() : nullptr,
                             out.mutable_data_ptr<scalar_t>(), B, Ns, Nt, fns, grids,
                             p.kernel.defined() ? p.kernel.const_data_ptr<double>() : nullptr);
  });
  return out;
}

}  // namespace

at::Tensor hough_vote_cpu(const at::Tensor& app, const at::Tensor& bins, c10::IntArrayRef nbins,
                          const std::optional<at::Tensor>& smooth_kernel) {
  hough_vote_host::check_args(app, bins, nbins, smooth_kernel, /*allow_half=*/false);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return run_cpu(nullptr, app, bins, nbins, smooth_kernel, "semcorr::hough_vote");
}

at::Tensor hough_vote_backward_cpu(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& bins,
                                   c10::IntArrayRef nbins, const std::optional<at::Tensor>& smooth_kernel) {
  constexpr const char* op = "semcorr::_hough_vote_backward";
  hough_vote_host::check_args(app, bins, nbins, smooth_kernel, false, op);
  hough_vote_host::check_backward_args(grad, app, op);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return run_cpu(&grad, app, bins, nbins, smooth_kernel, op);
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("hough_vote", &hough_vote_cpu);
  m.impl("_hough_vote_backward", &hough_vote_backward_cpu);
}

}  // namespace semcorr
