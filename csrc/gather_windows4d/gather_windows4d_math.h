// __host__ __device__ inner loops of gather_windows4d and gather_windows4d_points shared by the CPU and CUDA
// kernels (same order of additions in the backward, so the two backends agree bit for bit).
#pragma once
#include <cstdint>

#include "common/simt.h"

namespace semcorr {
namespace gw {

struct Dims {
  int64_t B, Hs, Ws, Ht, Wt, N, w;  // N: candidates per source cell (gather_windows4d) or points (_points)
  SC_HOST_DEVICE int64_t r() const { return w / 2; }
  SC_HOST_DEVICE int64_t w4() const { return w * w * w * w; }
};

// Tap (a, e, c, dd) of the window centred at (b, i, j, u, v): 0 outside the volume (b included).
template <typename T>
SC_HOST_DEVICE inline T tap(const Dims& d, const T* corr, int64_t b, int64_t i, int64_t j, int64_t u, int64_t v,
                            int64_t a, int64_t e, int64_t c, int64_t dd) {
  const int64_t r = d.r(), ii = i + a - r, jj = j + e - r, uu = u + c - r, vv = v + dd - r;
  if (b < 0 || b >= d.B || ii < 0 || ii >= d.Hs || jj < 0 || jj >= d.Ws || uu < 0 || uu >= d.Ht || vv < 0 ||
      vv >= d.Wt)
    return T(0);
  return corr[(((b * d.Hs + ii) * d.Ws + jj) * d.Ht + uu) * d.Wt + vv];
}

// One output element of gather_windows4d (flat index e over (B, Hs, Ws, N, w, w, w, w)).
template <typename T>
SC_HOST_DEVICE inline T gather_one(const Dims& d, const T* corr, const int64_t* cand, int64_t e) {
  const int64_t w = d.w;
  const int64_t dd = e % w, c = (e / w) % w, eb = (e / (w * w)) % w, a = (e / (w * w * w)) % w;
  const int64_t win = e / d.w4();  // (b, i, j, n)
  const int64_t pix = win / d.N;
  const int64_t j = pix % d.Ws, i = (pix / d.Ws) % d.Hs, b = pix / (d.Ws * d.Hs);
  return tap(d, corr, b, i, j, cand[2 * win], cand[2 * win + 1], a, eb, c, dd);
}

// One output element of gather_windows4d_points (flat index e over (M, w, w, w, w)); points (M, 5) (b, i, j, u, v).
template <typename T>
SC_HOST_DEVICE inline T gather_one_point(const Dims& d, const T* corr, const int64_t* pts, int64_t e) {
  const int64_t w = d.w;
  const int64_t dd = e % w, c = (e / w) % w, eb = (e / (w * w)) % w, a = (e / (w * w * w)) % w;
  const int64_t* p = pts + 5 * (e / d.w4());
  return tap(d, corr, p[0], p[1], p[2], p[3], p[4], a, eb, c, dd);
}

// The windows centred at source cell (b, i, j), as a range [lo, hi) of positions; row(k) is the window (its
// gradient is grad[row * w^4 ...]) and target(k, u, v) its target centre.
//   FixedWindows: gather_windows4d's layout, N consecutive windows per in-grid source cell, cand (.., N, 2).
//   CsrWindows:   gather_windows4d_points' windows listed by centre over the source grid padded by r on each
//                 side (centres up to r outside still reach the grid): start (B * (Hs+2r) * (Ws+2r) + 1) offsets
//                 into order (the points' rows, ascending within a cell), pts (M, 5).
struct FixedWindows {
  const int64_t* cand;
  int64_t N;
  SC_HOST_DEVICE void range(const Dims& d, int64_t b, int64_t i, int64_t j, int64_t& lo, int64_t& hi) const {
    if (i < 0 || i >= d.Hs || j < 0 || j >= d.Ws) {
      lo = hi = 0;
      return;
    }
    lo = ((b * d.Hs + i) * d.Ws + j) * N;
    hi = lo + N;
  }
  SC_HOST_DEVICE int64_t row(int64_t k) const { return k; }
  SC_HOST_DEVICE void target(int64_t k, int64_t& u, int64_t& v) const {
    u = cand[2 * k];
    v = cand[2 * k + 1];
  }
};

struct CsrWindows {
  const int64_t* start;
  const int64_t* order;
  const int64_t* pts;
  SC_HOST_DEVICE void range(const Dims& d, int64_t b, int64_t i, int64_t j, int64_t& lo, int64_t& hi) const {
    const int64_t r = d.r();
    const int64_t cell = (b * (d.Hs + 2 * r) + i + r) * (d.Ws + 2 * r) + j + r;  // i, j in [-r, H + r): in range
    lo = start[cell];
    hi = start[cell + 1];
  }
  SC_HOST_DEVICE int64_t row(int64_t k) const { return order[k]; }
  SC_HOST_DEVICE void target(int64_t k, int64_t& u, int64_t& v) const {
    u = pts[5 * order[k] + 3];
    v = pts[5 * order[k] + 4];
  }
};

// Calls f(a, e, k, uc, vc) for every window k whose tap (a, e) lands on source cell (b, i2, j2), with (uc, vc) the
// target centre of window k, in the order (a, e, k): the order in which both gradients below sum.
template <typename Windows, typename F>
SC_HOST_DEVICE inline void for_each_window_tap(const Dims& d, const Windows& windows, int64_t b, int64_t i2, int64_t j2,
                                               F f) {
  const int64_t w = d.w, r = d.r();
  for (int64_t a = 0; a < w; ++a) {
    for (int64_t e = 0; e < w; ++e) {
      int64_t lo, hi;
      windows.range(d, b, i2 - a + r, j2 - e + r, lo, hi);
      for (int64_t k = lo; k < hi; ++k) {
        int64_t uc, vc;
        windows.target(k, uc, vc);
        f(a, e, k, uc, vc);
      }
    }
  }
}

// Gradient of the (Ht, Wt) target plane of source cell (b, i2, j2): gplane (Ht, Wt) must be zero on entry.
template <typename T, typename A, typename Windows>
SC_HOST_DEVICE inline void backward_plane(const Dims& d, const Windows& windows, const T* grad, int64_t b,
                                          int64_t i2, int64_t j2, A* gplane) {
  const int64_t w = d.w, r = d.r(), w2 = w * w;
  for_each_window_tap(d, windows, b, i2, j2, [&](int64_t a, int64_t e, int64_t k, int64_t uc, int64_t vc) {
    const int64_t u0 = uc - r, v0 = vc - r;
    const T* g = grad + windows.row(k) * d.w4() + (a * w + e) * w2;
    for (int64_t c = 0; c < w; ++c) {
      const int64_t u = u0 + c;
      if (u < 0 || u >= d.Ht) continue;
      for (int64_t q = 0; q < w; ++q) {
        const int64_t v = v0 + q;
        if (v < 0 || v >= d.Wt) continue;
        gplane[u * d.Wt + v] += static_cast<A>(g[c * w + q]);
      }
    }
  });
}

// The same sum for one element (b, i2, j2, u, v) of the gradient, in the same order (a, e, k) as backward_plane.
template <typename T, typename A, typename Windows>
SC_HOST_DEVICE inline A backward_one(const Dims& d, const Windows& windows, const T* grad, int64_t b, int64_t i2,
                                     int64_t j2, int64_t u, int64_t v) {
  const int64_t w = d.w, r = d.r(), w2 = w * w;
  A acc = A(0);
  for_each_window_tap(d, windows, b, i2, j2, [&](int64_t a, int64_t e, int64_t k, int64_t uc, int64_t vc) {
    const int64_t c = u - uc + r, q = v - vc + r;
    if (c < 0 || c >= w || q < 0 || q >= w) return;
    acc += static_cast<A>(grad[windows.row(k) * d.w4() + (a * w + e) * w2 + c * w + q]);
  });
  return acc;
}

}  // namespace gw
}  // namespace semcorr
