// The CPU implementation of Hough voting shared by hough_match and hough_vote: scatter -> smooth -> gather
// (see hough_math.h). Only included by *_cpu.cpp files.
//
// Scatter: each image pair's rows are cut into a fixed number of chunks (independent of the thread count,
// so results are deterministic); every chunk votes into its own small double-precision histogram, which
// are then summed in chunk order. No (Ns, Nt) temporary exists: bin ids are recomputed in the gather.
#pragma once
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <vector>

#include "hough_common/hough_math.h"

namespace semcorr {
namespace hough_cpu {

// Runs the forward (grad == nullptr: out = app * V[bin]) or the backward (out = grad * V[bin] + G'[bin],
// G = votes of grad * app, G' = adjoint smoothing of G) for B pairs.
//   app, grad, out: (B, Ns, Nt) contiguous; bin_fns[b]: the bins of pair b (`fn.row(m, buf)` returns a pointer
//   to the Nt bins of row m, either filled into buf or pointing into a tensor); grids[b]: its bin grid and kernel
//   sizes; kernel: kd*kh*kw doubles shared by all pairs (nullptr: no smoothing; the grid's kernel sizes must
//   then be 1).
template <typename scalar_t, typename BinFn>
void run(const scalar_t* app, const scalar_t* grad, scalar_t* out, int64_t B, int64_t Ns, int64_t Nt,
         const std::vector<BinFn>& bin_fns, const std::vector<hough::Grid3>& grids, const double* kernel) {
  const bool backward = grad != nullptr;
  std::vector<int64_t> offset(B + 1, 0);
  for (int64_t b = 0; b < B; ++b) offset[b + 1] = offset[b] + grids[b].D * grids[b].H * grids[b].W;
  const int64_t total = offset[B];
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(Ns, 8 / std::max<int64_t>(B, 1)));
  const int64_t nh = backward ? 2 : 1;  // histograms per chunk: votes (and grad * app votes)
  const auto dopts = at::TensorOptions().dtype(at::kDouble);
  // private[h][c][k] for chunk c of pair b lives at ((h * chunks + c) * total + offset[b] + k)
  auto priv = at::zeros({nh * chunks * total}, dopts);
  double* pv = priv.mutable_data_ptr<double>();

  at::parallel_for(0, B * chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / chunks, c = task % chunks;
      const int64_t m0 = Ns * c / chunks, m1 = Ns * (c + 1) / chunks;
      const BinFn fn = bin_fns[b];
      std::vector<typename BinFn::index_t> buf(Nt);
      double* h = pv + c * total + offset[b];
      double* hg = pv + (chunks + c) * total + offset[b];
      for (int64_t m = m0; m < m1; ++m) {
        const scalar_t* a = app + (b * Ns + m) * Nt;
        const auto* kb = fn.row(m, buf.data());
        if (!backward) {
          for (int64_t n = 0; n < Nt; ++n) {
            const int64_t k = kb[n];
            if (k >= 0) h[k] += static_cast<double>(a[n]);
          }
        } else {
          const scalar_t* g = grad + (b * Ns + m) * Nt;
          for (int64_t n = 0; n < Nt; ++n) {
            const int64_t k = kb[n];
            if (k < 0) continue;
            h[k] += static_cast<double>(a[n]);
            hg[k] += static_cast<double>(a[n]) * static_cast<double>(g[n]);
          }
        }
      }
    }
  });

  // Sum the chunks (in chunk order) into hist[h][k].
  auto hist = at::empty({nh * total}, dopts);
  double* hv = hist.mutable_data_ptr<double>();
  at::parallel_for(0, nh * total, int64_t(1) << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t hh = i / total, k = i % total;
      double s = 0.0;
      for (int64_t c = 0; c < chunks; ++c) s += pv[(hh * chunks + c) * total + k];
      hv[i] = s;
    }
  });
  priv = at::Tensor();

  // Smoothing: V = K * H and, for the backward, G' = K^T * G.
  at::Tensor smoothed;
  const double* V = hv;
  const double* Gs = hv + total;
  if (kernel != nullptr) {
    smoothed = at::empty({nh * total}, dopts);
    double* sv = smoothed.mutable_data_ptr<double>();
    at::parallel_for(0, nh * total, int64_t(1) << 13, [&](int64_t begin, int64_t end) {
      int64_t b = 0;
      for (int64_t i = begin; i < end; ++i) {
        const int64_t hh = i / total, k = i % total;
        while (k >= offset[b + 1]) ++b;
        while (k < offset[b]) --b;
        const hough::Grid3& g = grids[b];
        const int64_t local = k - offset[b];
        const int64_t x = local % g.W, y = (local / g.W) % g.H, z = local / (g.W * g.H);
        sv[i] = hough::smooth_at(hv + hh * total + offset[b], kernel, g, z, y, x, /*transpose=*/hh == 1);
      }
    });
    V = sv;
    Gs = sv + total;
  }

  // Gather.
  at::parallel_for(0, B * Ns, 16, [&](int64_t begin, int64_t end) {
    std::vector<typename BinFn::index_t> buf(Nt);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / Ns, m = row % Ns;
      const BinFn fn = bin_fns[b];
      const double* vb = V + offset[b];
      const scalar_t* a = app + row * Nt;
      scalar_t* o = out + row * Nt;
      const auto* kb = fn.row(m, buf.data());
      if (!backward) {
        for (int64_t n = 0; n < Nt; ++n) {
          const int64_t k = kb[n];
          o[n] = k >= 0 ? a[n] * static_cast<scalar_t>(vb[k]) : scalar_t(0);
        }
      } else {
        const double* gb = Gs + offset[b];
        const scalar_t* g = grad + row * Nt;
        for (int64_t n = 0; n < Nt; ++n) {
          const int64_t k = kb[n];
          o[n] = k >= 0 ? static_cast<scalar_t>(static_cast<double>(g[n]) * vb[k] + gb[k]) : scalar_t(0);
        }
      }
    }
  });
}

}  // namespace hough_cpu
}  // namespace semcorr
