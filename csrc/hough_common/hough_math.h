// __host__ __device__ pieces of Hough voting shared by the CPU kernels, the CUDA kernels and their
// emulation (hough_match and hough_vote), so the backends cannot drift apart.
//
// Both ops are the same three passes over an (Ns, Nt) score matrix per image pair:
//   scatter  votes[bin(m, n)] += app[m, n]                 (bins < 0: no vote)
//   smooth   svotes = votes (*) kernel                     (cross-correlation, zero padding, centred odd kernel)
//   gather   out[m, n] = app[m, n] * svotes[bin(m, n)]     (0 where bin < 0)
// They differ only in where bin(m, n) comes from: hough_match computes it from box centres on the fly
// (MatchBins), hough_vote reads it from a tensor (TensorBins).
#pragma once
#include <cstdint>

#include "common/math.cuh"

namespace semcorr {
namespace hough {

// Bin of one axis of an HPF vote, as HPF's `hspace_bin_ids`: vote = (src_size - src_centre) + tgt_centre in
// the centres' dtype T, divided by the cell size in T, truncated toward zero (`.long()`). Votes outside the
// Hough space (only possible for centres outside their image) are clamped to the border bins; NaN -> bin 0.
// Clamping before the truncation gives the same bin as truncating then clamping, and keeps the conversion in
// range (nbins < 2^24, checked by the host code, so nbins - 1 is exact in float).
template <typename T>
__host__ __device__ __forceinline__ T axis_bin_clamped(T vote, T cell, T last) {
  T q = vote / cell;
  q = q > T(0) ? q : T(0);
  return q < last ? q : last;
}

template <typename T>
__host__ __device__ __forceinline__ int64_t axis_bin(T src_ref, T src_c, T tgt_c, T cell, int64_t nbins) {
  return static_cast<int64_t>(axis_bin_clamped((src_ref - src_c) + tgt_c, cell, static_cast<T>(nbins - 1)));
}

// hough_match bins of one image pair, computed on the fly (never stored as an (Ns, Nt) tensor).
//   sc (Ns, 2), tc (Nt, 2) box centres (x, y) in pixels, contiguous; src_w/src_h the source image size.
template <typename T>
struct MatchBins {
  const T* sc;
  const T* tc;
  T src_w, src_h, cell;
  int64_t nbins_x, nbins_y;
  __host__ __device__ __forceinline__ int64_t operator()(int64_t m, int64_t n) const {
    const int64_t bx = axis_bin(src_w, sc[2 * m], tc[2 * n], cell, nbins_x);
    const int64_t by = axis_bin(src_h, sc[2 * m + 1], tc[2 * n + 1], cell, nbins_y);
    return bx + by * nbins_x;
  }
};

// hough_vote bins of one image pair, read from a contiguous (Ns, Nt) int64 tensor (-1 = no vote).
struct TensorBins {
  using index_t = int64_t;
  const int64_t* bins;
  int64_t Nt;
  // The bins of row m (CPU engine interface; no copy).
  const int64_t* row(int64_t m, int64_t* /*buf*/) const { return bins + m * Nt; }
  __host__ __device__ __forceinline__ int64_t operator()(int64_t m, int64_t n) const { return bins[m * Nt + n]; }
};

// Geometry of a (D, H, W) bin grid and an odd (kd, kh, kw) smoothing kernel (1-D/2-D grids have leading 1s).
struct Grid3 {
  int64_t D, H, W;
  int64_t kd, kh, kw;
};

// One output bin p = (z, y, x) of the smoothing: sum_o k[c + o] * in[p + o] over offsets o in the kernel
// window (zero padding), i.e. F.conv{1,2,3}d(in, k, padding=k // 2). With `transpose`, the adjoint
// sum_o k[c - o] * in[p + o] (the gradient of the smoothing).
template <typename acc_t>
__host__ __device__ __forceinline__ acc_t smooth_at(const acc_t* in, const acc_t* k, const Grid3& g, int64_t z,
                                                    int64_t y, int64_t x, bool transpose) {
  const int64_t cd = g.kd / 2, ch = g.kh / 2, cw = g.kw / 2;
  acc_t s = 0;
  for (int64_t a = 0; a < g.kd; ++a) {
    const int64_t zz = z + a - cd;
    if (zz < 0 || zz >= g.D) continue;
    for (int64_t b = 0; b < g.kh; ++b) {
      const int64_t yy = y + b - ch;
      if (yy < 0 || yy >= g.H) continue;
      for (int64_t c = 0; c < g.kw; ++c) {
        const int64_t xx = x + c - cw;
        if (xx < 0 || xx >= g.W) continue;
        const int64_t ki = transpose ? ((g.kd - 1 - a) * g.kh + (g.kh - 1 - b)) * g.kw + (g.kw - 1 - c)
                                     : (a * g.kh + b) * g.kw + c;
        s += k[ki] * in[(zz * g.H + yy) * g.W + xx];
      }
    }
  }
  return s;
}

}  // namespace hough
}  // namespace semcorr
