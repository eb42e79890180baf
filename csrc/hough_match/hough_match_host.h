// Host-side pieces of hough_match shared by the CPU, CUDA and emulated backends: argument checks, the
// per-pair Hough-space geometry (HPF's `build_hspace`) and HPF's 7x7 Gaussian.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/tensor.h>
#include <c10/util/ArrayRef.h>

#include <cmath>
#include <vector>

#include "common/checks.h"
#include "hough_common/hough_math.h"

namespace semcorr {
namespace hough_match_host {

// HPF's build_hspace for one pair: the space is (Ws + Wt) x (Hs + Ht) pixels cut into ~ncells square cells.
struct PairGeometry {
  double src_w, src_h, cell;
  int64_t nbins_x, nbins_y;
  int64_t nbins() const { return nbins_x * nbins_y; }
};

inline void check_sizes(c10::ArrayRef<double> size, int64_t B, const char* op, const char* name) {
  TORCH_CHECK(size.size() == 2 || static_cast<int64_t>(size.size()) == 2 * B, op, ": `", name,
              "` must hold 2 floats (W, H) shared by the batch or 2*B = ", 2 * B,
              " floats (W0, H0, W1, H1, ...), got ", size.size(), " values");
  for (const double v : size)
    TORCH_CHECK(std::isfinite(v) && v > 0.0, op, ": `", name, "` values must be finite and > 0, got ", v);
}

inline void check_centers(const at::Tensor& c, const at::Tensor& app, int64_t dim, const char* op,
                          const char* name, const char* layout) {
  check_dim(c, 3, op, name, layout);
  TORCH_CHECK(c.size(0) == app.size(0) && c.size(1) == app.size(dim) && c.size(2) == 2, op, ": `", name,
              "` must have shape ", layout, " = [", app.size(0), ", ", app.size(dim), ", 2] for `app` of shape ",
              shape_str(app), ", got ", shape_str(c));
  TORCH_CHECK(c.scalar_type() == at::kFloat || c.scalar_type() == at::kDouble, op, ": `", name,
              "` must be a float32/float64 tensor, got ", c.scalar_type());
  check_same_device(c, app, op, name, "app");
}

inline void check_args(const at::Tensor& app, const at::Tensor& src_centers, const at::Tensor& tgt_centers,
                       c10::ArrayRef<double> src_size, c10::ArrayRef<double> tgt_size, int64_t ncells,
                       bool allow_half, const char* op = "semcorr::hough_match") {
  check_dim(app, 3, op, "app", "(B, Ns, Nt)");
  check_float(app, op, "app", allow_half);
  check_centers(src_centers, app, 1, op, "src_centers", "(B, Ns, 2)");
  check_centers(tgt_centers, app, 2, op, "tgt_centers", "(B, Nt, 2)");
  check_same_dtype(src_centers, tgt_centers, op, "src_centers", "tgt_centers");
  check_sizes(src_size, app.size(0), op, "src_size");
  check_sizes(tgt_size, app.size(0), op, "tgt_size");
  TORCH_CHECK(ncells >= 1, op, ": `ncells` must be >= 1, got ", ncells);
  TORCH_CHECK(ncells <= kMaxHoughBins, op, ": `ncells` must be <= ", kMaxHoughBins, " (2^24; HPF: 8192), got ", ncells);
}

inline void check_backward_args(const at::Tensor& grad, const at::Tensor& app,
                                const char* op = "semcorr::_hough_match_backward") {
  check_grad_like(grad, app, op, "app");
}

// The geometry of pair b (HPF: hs_cellsize = sqrt(hs_w * hs_h / ncells), nbins = int(side / cell) + 1).
inline PairGeometry pair_geometry(c10::ArrayRef<double> src_size, c10::ArrayRef<double> tgt_size, int64_t b,
                                  int64_t ncells) {
  const size_t si = src_size.size() == 2 ? 0 : 2 * b, ti = tgt_size.size() == 2 ? 0 : 2 * b;
  PairGeometry g;
  g.src_w = src_size[si];
  g.src_h = src_size[si + 1];
  const double hs_w = src_size[si] + tgt_size[ti], hs_h = src_size[si + 1] + tgt_size[ti + 1];
  g.cell = std::sqrt((hs_w * hs_h) / static_cast<double>(ncells));
  g.nbins_x = static_cast<int64_t>(hs_w / g.cell) + 1;
  g.nbins_y = static_cast<int64_t>(hs_h / g.cell) + 1;
  return g;
}

inline std::vector<PairGeometry> geometries(c10::ArrayRef<double> src_size, c10::ArrayRef<double> tgt_size,
                                            int64_t B, int64_t ncells) {
  std::vector<PairGeometry> gs;
  gs.reserve(B);
  for (int64_t b = 0; b < B; ++b) {
    gs.push_back(pair_geometry(src_size, tgt_size, b, ncells));
    // bins are int32 on the CPU path and nbins - 1 must be exact in float32; the space has ~ncells + O(sqrt)
    // bins, more only for extreme aspect ratios: the histograms' memory is bounded like hough_vote's
    TORCH_CHECK(gs.back().nbins_x < (int64_t(1) << 24) && gs.back().nbins_y < (int64_t(1) << 24) &&
                    gs.back().nbins() <= 2 * kMaxHoughBins,
                "semcorr::hough_match: the Hough space of pair ", b, " is too large (", gs.back().nbins_x, " x ",
                gs.back().nbins_y, " bins); use fewer `ncells` or check the image sizes");
  }
  return gs;
}

// The operands of one hough_match pass made contiguous (g undefined for the forward), with the sizes and the
// geometry of every pair: what the CPU kernel and the CUDA launch sequence both start from.
struct Pass {
  int64_t B, Ns, Nt;
  at::Tensor a, g, sc, tc;
  std::vector<PairGeometry> geo;
};

inline Pass prepare_pass(const at::Tensor* grad, const at::Tensor& app, const at::Tensor& src_centers,
                         const at::Tensor& tgt_centers, c10::ArrayRef<double> src_size, c10::ArrayRef<double> tgt_size,
                         int64_t ncells) {
  return Pass{app.size(0),
              app.size(1),
              app.size(2),
              app.contiguous(),
              grad ? grad->contiguous() : at::Tensor(),
              src_centers.contiguous(),
              tgt_centers.contiguous(),
              geometries(src_size, tgt_size, app.size(0), ncells)};
}

// HPF's gaussian2d(7): exp(-(x^2 + y^2) / (2 sigma^2)) on x, y in -3..3, sigma = 7/2/2.354, divided by its sum.
// Returned as a (1, 7, 7) CPU tensor of `dtype` (computed in double).
inline at::Tensor gaussian7(at::ScalarType dtype) {
  constexpr int kSide = 7;
  const double sig = static_cast<double>(kSide) / 2.0 / 2.354;
  const double sig_sq = sig * sig;
  std::vector<double> w(kSide * kSide);
  double total = 0.0;
  for (int y = 0; y < kSide; ++y)
    for (int x = 0; x < kSide; ++x) {
      const double dx = x - 3, dy = y - 3;
      w[y * kSide + x] = std::exp(-(dx * dx / 2.0 / sig_sq + dy * dy / 2.0 / sig_sq));
      total += w[y * kSide + x];
    }
  for (auto& v : w) v /= total;
  return at::tensor(w, at::TensorOptions().dtype(at::kDouble)).view({1, kSide, kSide}).to(dtype);
}

inline hough::Grid3 grid_of(const PairGeometry& g, bool smooth) {
  return hough::Grid3{1, g.nbins_y, g.nbins_x, 1, smooth ? 7 : 1, smooth ? 7 : 1};
}

}  // namespace hough_match_host
}  // namespace semcorr
