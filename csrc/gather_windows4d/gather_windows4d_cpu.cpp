// CPU kernels of gather_windows4d: the forward copies whole target rows of each window; the backward gives each
// source cell's (Ht, Wt) plane to one task (gathering, in a fixed order, from the windows that read it).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "gather_windows4d/gather_windows4d.h"
#include "gather_windows4d/gather_windows4d_host.h"

namespace semcorr {

at::Tensor gather_windows4d_cpu(const at::Tensor& corr, const at::Tensor& candidates, int64_t window) {
  const auto d = gather_windows4d_host::check_args(corr, candidates, window, /*allow_half=*/false);
  auto out = at::empty({d.B, d.Hs, d.Ws, d.N, d.w, d.w, d.w, d.w}, corr.options());
  const int64_t nwin = d.B * d.Hs * d.Ws * d.N;
  if (out.numel() == 0) return out;
  const auto c = corr.contiguous();
  const auto k = candidates.contiguous();
  AT_DISPATCH_FLOATING_TYPES(corr.scalar_type(), "gather_windows4d_cpu", [&] {
    const scalar_t* cp = c.const_data_ptr<scalar_t>();
    const int64_t* kp = k.const_data_ptr<int64_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const int64_t w = d.w, r = d.r(), w4 = d.w4();
    at::parallel_for(0, nwin, std::max<int64_t>(1, 8192 / w4), [&](int64_t begin, int64_t end) {
      for (int64_t win = begin; win < end; ++win) {
        const int64_t pix = win / d.N, j = pix % d.Ws, i = (pix / d.Ws) % d.Hs, b = pix / (d.Ws * d.Hs);
        const int64_t u0 = kp[2 * win] - r, v0 = kp[2 * win + 1] - r;
        // the columns [q0, q1) of the window row that fall inside the target grid
        const int64_t q0 = std::clamp<int64_t>(-v0, 0, w), q1 = std::clamp<int64_t>(d.Wt - v0, 0, w);
        scalar_t* o = op + win * w4;
        for (int64_t a = 0; a < w; ++a) {
          const int64_t ii = i + a - r;
          for (int64_t e = 0; e < w; ++e) {
            const int64_t jj = j + e - r;
            const bool src_in = ii >= 0 && ii < d.Hs && jj >= 0 && jj < d.Ws;
            for (int64_t cc = 0; cc < w; ++cc, o += w) {
              const int64_t u = u0 + cc;
              if (!src_in || u < 0 || u >= d.Ht || q0 >= q1) {
                std::fill(o, o + w, scalar_t(0));
                continue;
              }
              const scalar_t* row = cp + (((b * d.Hs + ii) * d.Ws + jj) * d.Ht + u) * d.Wt + v0;
              for (int64_t q = 0; q < q0; ++q) o[q] = 0;
              for (int64_t q = q0; q < q1; ++q) o[q] = row[q];
              for (int64_t q = q1; q < w; ++q) o[q] = 0;
            }
          }
        }
      }
    });
  });
  return out;
}

at::Tensor gather_windows4d_backward_cpu(const at::Tensor& grad, const at::Tensor& candidates,
                                         at::IntArrayRef corr_size, int64_t window) {
  const auto d = gather_windows4d_host::check_backward_args(grad, candidates, corr_size, window, false);
  auto gin = at::zeros(corr_size, grad.options());
  if (gin.numel() == 0 || grad.numel() == 0) return gin;
  const auto g = grad.contiguous();
  const auto k = candidates.contiguous();
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "gather_windows4d_backward_cpu", [&] {
    const scalar_t* gp = g.const_data_ptr<scalar_t>();
    const int64_t* kp = k.const_data_ptr<int64_t>();
    scalar_t* op = gin.mutable_data_ptr<scalar_t>();
    const int64_t plane = d.Ht * d.Wt;
    at::parallel_for(0, d.B * d.Hs * d.Ws, 1, [&](int64_t begin, int64_t end) {
      for (int64_t cell = begin; cell < end; ++cell) {
        const int64_t j2 = cell % d.Ws, i2 = (cell / d.Ws) % d.Hs, b = cell / (d.Ws * d.Hs);
        gw::backward_plane<scalar_t, scalar_t>(d, gp, kp, b, i2, j2, op + cell * plane);
      }
    });
  });
  return gin;
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("gather_windows4d", &gather_windows4d_cpu);
  m.impl("_gather_windows4d_backward", &gather_windows4d_backward_cpu);
}

}  // namespace semcorr
