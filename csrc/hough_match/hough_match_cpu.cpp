// CPU kernels of hough_match: the shared scatter -> smooth -> gather engine (csrc/hough_common/hough_cpu.h)
// with bins computed on the fly from box centres (hough::MatchBins).
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include "hough_common/hough_cpu.h"
#include "hough_match/hough_match.h"
#include "hough_match/hough_match_host.h"

namespace semcorr {
namespace {

// CPU form of hough::MatchBins: the bins of a whole row at once into an int32 buffer, from de-interleaved
// target centres, so the loop (add, divide, clamp, truncate) vectorises. Same arithmetic as
// hough::axis_bin, hence the same bins as the CUDA kernels and as HPF.
template <typename T>
struct MatchRowBins {
  using index_t = int32_t;
  const T* sc;  // (Ns, 2)
  const T* tx;  // (Nt,)
  const T* ty;  // (Nt,)
  T src_w, src_h, cell, last_x, last_y;
  int32_t nbins_x;
  int64_t Nt;
  const int32_t* row(int64_t m, int32_t* __restrict__ buf) const {
    const T rx = src_w - sc[2 * m], ry = src_h - sc[2 * m + 1];
    const T* __restrict__ x = tx;
    const T* __restrict__ y = ty;
    const T c = cell, lx = last_x, ly = last_y;
    const int32_t nbx = nbins_x;
    for (int64_t n = 0; n < Nt; ++n) {
      const int32_t bx = static_cast<int32_t>(hough::axis_bin_clamped(rx + x[n], c, lx));
      const int32_t by = static_cast<int32_t>(hough::axis_bin_clamped(ry + y[n], c, ly));
      buf[n] = bx + by * nbx;
    }
    return buf;
  }
};

at::Tensor run_cpu(const at::Tensor* grad, const at::Tensor& app, const at::Tensor& src_centers,
                   const at::Tensor& tgt_centers, c10::ArrayRef<double> src_size, c10::ArrayRef<double> tgt_size,
                   int64_t ncells, bool smooth) {
  const auto [B, Ns, Nt, a, g, sc, tc, geo] =
      hough_match_host::prepare_pass(grad, app, src_centers, tgt_centers, src_size, tgt_size, ncells);
  std::vector<hough::Grid3> grids;
  for (const auto& pg : geo) grids.push_back(hough_match_host::grid_of(pg, smooth));
  const auto kernel = hough_match_host::gaussian7(at::kDouble).contiguous();
  auto out = at::empty_like(a);
  AT_DISPATCH_FLOATING_TYPES(app.scalar_type(), "hough_match_cpu", [&] {
    using app_t = scalar_t;
    AT_DISPATCH_FLOATING_TYPES(sc.scalar_type(), "hough_match_cpu_centers", [&] {
      using ctr_t = scalar_t;
      // de-interleaved target centres: txy[b][0] = x, txy[b][1] = y (2 * B * Nt values)
      const auto txy = tc.permute({0, 2, 1}).contiguous();
      std::vector<MatchRowBins<ctr_t>> fns;
      for (int64_t b = 0; b < B; ++b) {
        const auto& pg = geo[b];
        const ctr_t* t = txy.const_data_ptr<ctr_t>() + b * 2 * Nt;
        fns.push_back(MatchRowBins<ctr_t>{sc.const_data_ptr<ctr_t>() + b * Ns * 2, t, t + Nt,
                                          static_cast<ctr_t>(pg.src_w), static_cast<ctr_t>(pg.src_h),
                                          static_cast<ctr_t>(pg.cell), static_cast<ctr_t>(pg.nbins_x - 1),
                                          static_cast<ctr_t>(pg.nbins_y - 1), static_cast<int32_t>(pg.nbins_x), Nt});
      }
      hough_cpu::run<app_t>(a.const_data_ptr<app_t>(), grad ? g.const_data_ptr<app_t>() : nullptr,
                            out.mutable_data_ptr<app_t>(), B, Ns, Nt, fns, grids,
                            smooth ? kernel.const_data_ptr<double>() : nullptr);
    });
  });
  return out;
}

}  // namespace

at::Tensor hough_match_cpu(const at::Tensor& app, const at::Tensor& src_centers, const at::Tensor& tgt_centers,
                           c10::ArrayRef<double> src_size, c10::ArrayRef<double> tgt_size, int64_t ncells,
                           bool smooth) {
  hough_match_host::check_args(app, src_centers, tgt_centers, src_size, tgt_size, ncells, /*allow_half=*/false);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return run_cpu(nullptr, app, src_centers, tgt_centers, src_size, tgt_size, ncells, smooth);
}

at::Tensor hough_match_backward_cpu(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& src_centers,
                                    const at::Tensor& tgt_centers, c10::ArrayRef<double> src_size,
                                    c10::ArrayRef<double> tgt_size, int64_t ncells, bool smooth) {
  constexpr const char* op = "semcorr::_hough_match_backward";
  hough_match_host::check_args(app, src_centers, tgt_centers, src_size, tgt_size, ncells, false, op);
  hough_match_host::check_backward_args(grad, app, op);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return run_cpu(&grad, app, src_centers, tgt_centers, src_size, tgt_size, ncells, smooth);
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("hough_match", &hough_match_cpu);
  m.impl("_hough_match_backward", &hough_match_backward_cpu);
}

}  // namespace semcorr
