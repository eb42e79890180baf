// __host__ __device__ inner loops of gather_windows4d shared by the CPU and CUDA kernels (same order of additions
// in the backward, so the two backends agree bit for bit).
#pragma once
#include <cstdint>

#include "common/simt.h"

namespace semcorr {
namespace gw {

struct Dims {
  int64_t B, Hs, Ws, Ht, Wt, N, w;
  SC_HOST_DEVICE int64_t r() const { return w / 2; }
  SC_HOST_DEVICE int64_t w4() const { return w * w * w * w; }
};

// One output element (flat index e over (B, Hs, Ws, N, w, w, w, w)).
template <typename T>
SC_HOST_DEVICE inline T gather_one(const Dims& d, const T* corr, const int64_t* cand, int64_t e) {
  const int64_t w = d.w, r = d.r();
  const int64_t dd = e % w, c = (e / w) % w, eb = (e / (w * w)) % w, a = (e / (w * w * w)) % w;
  const int64_t win = e / d.w4();  // (b, i, j, n)
  const int64_t pix = win / d.N;
  const int64_t j = pix % d.Ws, i = (pix / d.Ws) % d.Hs, b = pix / (d.Ws * d.Hs);
  const int64_t ii = i + a - r, jj = j + eb - r;
  const int64_t u = cand[2 * win] + c - r, v = cand[2 * win + 1] + dd - r;
  if (ii < 0 || ii >= d.Hs || jj < 0 || jj >= d.Ws || u < 0 || u >= d.Ht || v < 0 || v >= d.Wt) return T(0);
  return corr[(((b * d.Hs + ii) * d.Ws + jj) * d.Ht + u) * d.Wt + v];
}

// Gradient of the (Ht, Wt) target plane of source cell (b, i2, j2): gplane (Ht, Wt) must be zero on entry.
template <typename T, typename A>
SC_HOST_DEVICE inline void backward_plane(const Dims& d, const T* grad, const int64_t* cand, int64_t b, int64_t i2,
                                          int64_t j2, A* gplane) {
  const int64_t w = d.w, r = d.r(), w2 = w * w;
  for (int64_t a = 0; a < w; ++a) {
    const int64_t i = i2 - a + r;
    if (i < 0 || i >= d.Hs) continue;
    for (int64_t e = 0; e < w; ++e) {
      const int64_t j = j2 - e + r;
      if (j < 0 || j >= d.Ws) continue;
      const int64_t pix = (b * d.Hs + i) * d.Ws + j;
      for (int64_t n = 0; n < d.N; ++n) {
        const int64_t win = pix * d.N + n;
        const int64_t u0 = cand[2 * win] - r, v0 = cand[2 * win + 1] - r;
        const T* g = grad + win * d.w4() + (a * w + e) * w2;
        for (int64_t c = 0; c < w; ++c) {
          const int64_t u = u0 + c;
          if (u < 0 || u >= d.Ht) continue;
          for (int64_t q = 0; q < w; ++q) {
            const int64_t v = v0 + q;
            if (v < 0 || v >= d.Wt) continue;
            gplane[u * d.Wt + v] += static_cast<A>(g[c * w + q]);
          }
        }
      }
    }
  }
}

// The same sum for one element (b, i2, j2, u, v) of the gradient, in the same order (a, e, n) as backward_plane.
template <typename T, typename A>
SC_HOST_DEVICE inline A backward_one(const Dims& d, const T* grad, const int64_t* cand, int64_t b, int64_t i2,
                                     int64_t j2, int64_t u, int64_t v) {
  const int64_t w = d.w, r = d.r(), w2 = w * w;
  A acc = A(0);
  for (int64_t a = 0; a < w; ++a) {
    const int64_t i = i2 - a + r;
    if (i < 0 || i >= d.Hs) continue;
    for (int64_t e = 0; e < w; ++e) {
      const int64_t j = j2 - e + r;
      if (j < 0 || j >= d.Ws) continue;
      const int64_t pix = (b * d.Hs + i) * d.Ws + j;
      for (int64_t n = 0; n < d.N; ++n) {
        const int64_t win = pix * d.N + n;
        const int64_t c = u - cand[2 * win] + r, q = v - cand[2 * win + 1] + r;
        if (c < 0 || c >= w || q < 0 || q >= w) continue;
        acc += static_cast<A>(grad[win * d.w4() + (a * w + e) * w2 + c * w + q]);
      }
    }
  }
  return acc;
}

}  // namespace gw
}  // namespace semcorr
