// Host-side pieces of hough_vote shared by the CPU, CUDA and emulated backends: argument checks and the
// preparation of bins (int64, contiguous, range-checked) and of the smoothing kernel.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/ones.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Optional.h>

#include <limits>
#include <tuple>

#include "common/checks.h"
#include "hough_common/hough_math.h"

namespace semcorr {
namespace hough_vote_host {

struct Prepared {
  at::Tensor bins;    // (B, Ns, Nt) int64 contiguous
  at::Tensor kernel;  // (kd, kh, kw) in the accumulation dtype on app's device; undefined without smoothing
  hough::Grid3 grid;
  int64_t nbins() const { return grid.D * grid.H * grid.W; }
};

inline void check_args(const at::Tensor& app, const at::Tensor& bins, c10::IntArrayRef nbins,
                       const std::optional<at::Tensor>& smooth_kernel, bool allow_half,
                       const char* op = "semcorr::hough_vote") {
  check_dim(app, 3, op, "app", "(B, Ns, Nt)");
  check_float(app, op, "app", allow_half);
  TORCH_CHECK(bins.sizes() == app.sizes(), op, ": `bins` must have the shape of `app` ", shape_str(app), ", got ",
              shape_str(bins));
  TORCH_CHECK(bins.scalar_type() == at::kLong || bins.scalar_type() == at::kInt, op,
              ": `bins` must be an int64 (or int32) tensor, got ", bins.scalar_type());
  check_same_device(bins, app, op, "bins", "app");
  TORCH_CHECK(nbins.size() >= 1 && nbins.size() <= 3, op, ": `nbins` must hold 1 to 3 sizes, got ", nbins);
  int64_t total = 1;
  for (const int64_t n : nbins) {
    TORCH_CHECK(n >= 1, op, ": `nbins` sizes must be >= 1, got ", nbins);
    TORCH_CHECK(n <= kMaxHoughBins && total * n <= kMaxHoughBins, op, ": `nbins` ", nbins, " gives more than ",
                kMaxHoughBins, " (2^24) bins");
    total *= n;
  }
  if (smooth_kernel.has_value() && smooth_kernel->defined()) {
    const auto& k = *smooth_kernel;
    TORCH_CHECK(k.dim() == static_cast<int64_t>(nbins.size()), op, ": `smooth_kernel` must have len(nbins) = ",
                nbins.size(), " dims, got shape ", shape_str(k));
    TORCH_CHECK(k.is_floating_point(), op, ": `smooth_kernel` must be a floating tensor, got ", k.scalar_type());
    for (int64_t d = 0; d < k.dim(); ++d)
      TORCH_CHECK(k.size(d) % 2 == 1, op, ": `smooth_kernel` sizes must be odd (a centred window), got shape ",
                  shape_str(k));
    TORCH_CHECK(k.device().is_cpu() || k.device() == app.device(), op,
                ": `smooth_kernel` must be on the CPU or on app's device ", app.device(), ", got ", k.device());
  }
}

inline void check_backward_args(const at::Tensor& grad, const at::Tensor& app,
                                const char* op = "semcorr::_hough_vote_backward") {
  check_grad_like(grad, app, op, "app");
}

// Bins as contiguous int64, checked to lie in [-1, prod(nbins)) (one min/max pass; a device sync on CUDA),
// and the kernel in `acc_dtype` on app's device, padded to 3-D.
inline Prepared prepare(const at::Tensor& app, const at::Tensor& bins, c10::IntArrayRef nbins,
                        const std::optional<at::Tensor>& smooth_kernel, at::ScalarType acc_dtype,
                        const char* op = "semcorr::hough_vote") {
  Prepared p;
  p.bins = bins.to(at::kLong).contiguous();
  int64_t dims[3] = {1, 1, 1};
  for (size_t i = 0; i < nbins.size(); ++i) dims[3 - nbins.size() + i] = nbins[i];
  int64_t ks[3] = {1, 1, 1};
  if (smooth_kernel.has_value() && smooth_kernel->defined()) {
    const auto& k = *smooth_kernel;
    for (int64_t i = 0; i < k.dim(); ++i) ks[3 - k.dim() + i] = k.size(i);
    p.kernel = k.to(app.device(), acc_dtype).contiguous().view({ks[0], ks[1], ks[2]});
  }
  p.grid = hough::Grid3{dims[0], dims[1], dims[2], ks[0], ks[1], ks[2]};
  if (p.bins.numel() > 0) {
    const auto [lo, hi] = at::aminmax(p.bins);
    const int64_t lo_v = lo.item<int64_t>(), hi_v = hi.item<int64_t>();
    TORCH_CHECK(lo_v >= -1 && hi_v < p.nbins(), op, ": `bins` must lie in [-1, prod(nbins)) = [-1, ", p.nbins(),
                "), got values in [", lo_v, ", ", hi_v, "]");
  }
  return p;
}

}  // namespace hough_vote_host
}  // namespace semcorr
