// CPU kernels of gather_windows4d, gather_windows4d_points and gather_windows4d_linear: the forward copies whole
// target rows of each window; the backward gives each source cell's (Ht, Wt) plane to one task (gathering, in a
// fixed order, from the windows that read it).
// bfloat16 (docs/OPS.md#precision): the copies are exact; the backward sums in float32 and rounds once; the
// linear layer is a bfloat16 GEMM (oneDNN, float32 accumulation).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <c10/util/accumulate.h>

#include <algorithm>
#include <array>
#include <vector>

#include "common/checks_cpu.h"
#include "gather_windows4d/gather_windows4d.h"
#include "gather_windows4d/gather_windows4d_host.h"

namespace semcorr {

namespace {

// A window wholly inside the volume: w^3 target rows of w contiguous values (W > 0: the window side known at
// compile time, so the row copy unrolls; the common case, PMNC's matches are rarely at the border).
template <int64_t W, typename scalar_t>
void copy_inner_window(const gw::Dims& d, const scalar_t* cp, int64_t b, int64_t i, int64_t j, int64_t u, int64_t v,
                       scalar_t* o) {
  const int64_t w = W > 0 ? W : d.w, r = w / 2;
  const int64_t row_step = d.Wt, src_step = d.Ht * d.Wt;
  const scalar_t* base = cp + (((b * d.Hs + i - r) * d.Ws + j - r) * d.Ht + u - r) * d.Wt + v - r;
  for (int64_t a = 0; a < w; ++a)
    for (int64_t e = 0; e < w; ++e) {
      const scalar_t* plane = base + (a * d.Ws + e) * src_step;
      for (int64_t c = 0; c < w; ++c, o += w) std::copy_n(plane + c * row_step, w, o);
    }
}

// Copies the window centred at (b, i, j, u, v) into o (w^4), whole target rows at a time; 0 outside the volume.
template <typename scalar_t>
void copy_window(const gw::Dims& d, const scalar_t* cp, int64_t b, int64_t i, int64_t j, int64_t u, int64_t v,
                 scalar_t* o) {
  const int64_t w = d.w, r = d.r(), u0 = u - r, v0 = v - r;
  if (b >= 0 && b < d.B && i >= r && i + r < d.Hs && j >= r && j + r < d.Ws && u0 >= 0 && u + r < d.Ht &&
      v0 >= 0 && v + r < d.Wt) {
    if (w == 5) return copy_inner_window<5>(d, cp, b, i, j, u, v, o);
    if (w == 3) return copy_inner_window<3>(d, cp, b, i, j, u, v, o);
    return copy_inner_window<0>(d, cp, b, i, j, u, v, o);
  }
  // the columns [q0, q1) of a window row that fall inside the target grid
  const int64_t q0 = std::clamp<int64_t>(-v0, 0, w), q1 = std::clamp<int64_t>(d.Wt - v0, 0, w);
  const bool b_in = b >= 0 && b < d.B;
  for (int64_t a = 0; a < w; ++a) {
    const int64_t ii = i + a - r;
    for (int64_t e = 0; e < w; ++e) {
      const int64_t jj = j + e - r;
      const bool src_in = b_in && ii >= 0 && ii < d.Hs && jj >= 0 && jj < d.Ws;
      for (int64_t cc = 0; cc < w; ++cc, o += w) {
        const int64_t uu = u0 + cc;
        if (!src_in || uu < 0 || uu >= d.Ht || q0 >= q1) {
          std::fill(o, o + w, scalar_t(0));
          continue;
        }
        const scalar_t* row = cp + (((b * d.Hs + ii) * d.Ws + jj) * d.Ht + uu) * d.Wt + v0;
        for (int64_t q = 0; q < q0; ++q) o[q] = 0;
        for (int64_t q = q0; q < q1; ++q) o[q] = row[q];
        for (int64_t q = q1; q < w; ++q) o[q] = 0;
      }
    }
  }
}

// A window's centre (b, i, j, u, v).
using Centre = std::array<int64_t, 5>;

// The forward of gather_windows4d and gather_windows4d_points: window m (of n) of out is the window centred at
// centre_of(index data, m).
template <typename scalar_t, typename CentreOf>
void copy_windows(const gw::Dims& d, const at::Tensor& corr, const at::Tensor& index, int64_t n, at::Tensor& out,
                  CentreOf centre_of) {
  const scalar_t* cp = corr.const_data_ptr<scalar_t>();
  const int64_t* ip = index.const_data_ptr<int64_t>();
  scalar_t* op = out.mutable_data_ptr<scalar_t>();
  at::parallel_for(0, n, std::max<int64_t>(1, 8192 / d.w4()), [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      const auto [b, i, j, u, v] = centre_of(ip, m);
      copy_window(d, cp, b, i, j, u, v, op + m * d.w4());
    }
  });
}

// Each source cell's (Ht, Wt) gradient plane is one task, gathering from the windows that read it (fixed order).
template <typename Windows>
at::Tensor backward_planes(const gw::Dims& d, const Windows& windows, const at::Tensor& grad,
                           at::IntArrayRef corr_size) {
  auto gin = at::zeros(corr_size, grad.options().dtype(at::toOpMathType(grad.scalar_type())));
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, grad.scalar_type(), "gather_windows4d_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = grad.const_data_ptr<scalar_t>();
    acc_t* op = gin.mutable_data_ptr<acc_t>();
    const int64_t plane = d.Ht * d.Wt;
    at::parallel_for(0, d.B * d.Hs * d.Ws, 1, [&](int64_t begin, int64_t end) {
      for (int64_t cell = begin; cell < end; ++cell) {
        const int64_t j2 = cell % d.Ws, i2 = (cell / d.Ws) % d.Hs, b = cell / (d.Ws * d.Hs);
        gw::backward_plane<scalar_t, acc_t>(d, windows, gp, b, i2, j2, op + cell * plane);
      }
    });
  });
  return gin.to(grad.scalar_type());
}

}  // namespace

at::Tensor gather_windows4d_cpu(const at::Tensor& corr, const at::Tensor& candidates, int64_t window) {
  check_float_or_bf16(corr, "semcorr::gather_windows4d", "corr");
  const auto d = gather_windows4d_host::check_args(corr, candidates, window, /*allow_half=*/is_bf16(corr));
  auto out = at::empty({d.B, d.Hs, d.Ws, d.N, d.w, d.w, d.w, d.w}, corr.options());
  const int64_t nwin = d.B * d.Hs * d.Ws * d.N;
  if (out.numel() == 0) return out;
  // window win: candidate win % N of source pixel win / N, whose target cell (u, v) candidates gives
  const auto centre_of = [&d](const int64_t* kp, int64_t win) {
    const int64_t pix = win / d.N;
    return Centre{pix / (d.Ws * d.Hs), (pix / d.Ws) % d.Hs, pix % d.Ws, kp[2 * win], kp[2 * win + 1]};
  };
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, corr.scalar_type(), "gather_windows4d_cpu", [&] {
    copy_windows<scalar_t>(d, corr.contiguous(), candidates.contiguous(), nwin, out, centre_of);
  });
  return out;
}

at::Tensor gather_windows4d_backward_cpu(const at::Tensor& grad, const at::Tensor& candidates,
                                         at::IntArrayRef corr_size, int64_t window) {
  check_float_or_bf16(grad, "semcorr::_gather_windows4d_backward", "grad");
  const auto d = gather_windows4d_host::check_backward_args(grad, candidates, corr_size, window, is_bf16(grad));
  if (c10::multiply_integers(corr_size) == 0 || grad.numel() == 0) return at::zeros(corr_size, grad.options());
  const auto k = candidates.contiguous();
  return backward_planes(d, gw::FixedWindows{k.const_data_ptr<int64_t>(), d.N}, grad.contiguous(), corr_size);
}

at::Tensor gather_windows4d_points_cpu(const at::Tensor& corr, const at::Tensor& points, int64_t window) {
  check_float_or_bf16(corr, "semcorr::gather_windows4d_points", "corr");
  const auto d = gather_windows4d_host::check_points_args(corr, points, window, /*allow_half=*/is_bf16(corr));
  auto out = at::empty({d.N, d.w, d.w, d.w, d.w}, corr.options());
  if (out.numel() == 0) return out;
  const auto centre_of = [](const int64_t* pp, int64_t m) {
    const int64_t* q = pp + 5 * m;
    return Centre{q[0], q[1], q[2], q[3], q[4]};
  };
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, corr.scalar_type(), "gather_windows4d_points_cpu", [&] {
    copy_windows<scalar_t>(d, corr.contiguous(), points.contiguous(), d.N, out, centre_of);
  });
  return out;
}

at::Tensor gather_windows4d_points_backward_cpu(const at::Tensor& grad, const at::Tensor& points,
                                                at::IntArrayRef corr_size, int64_t window) {
  check_float_or_bf16(grad, "semcorr::_gather_windows4d_points_backward", "grad");
  const auto d = gather_windows4d_host::check_points_backward_args(grad, points, corr_size, window, is_bf16(grad));
  if (c10::multiply_integers(corr_size) == 0 || grad.numel() == 0) return at::zeros(corr_size, grad.options());
  const auto p = points.contiguous();
  const auto [start, order] = gather_windows4d_host::points_by_centre(d, p);
  const gw::CsrWindows windows{start.const_data_ptr<int64_t>(), order.const_data_ptr<int64_t>(),
                               p.const_data_ptr<int64_t>()};
  return backward_planes(d, windows, grad.contiguous(), corr_size);
}

// Tiles of windows small enough to stay in a core's L2 are cut into a per-task buffer and multiplied there by the
// weight (BLAS), so the windows never reach memory: gathering them into a large tensor first cost more than the
// GEMM itself in PMNC.
at::Tensor gather_windows4d_linear_cpu(const at::Tensor& corr, const at::Tensor& points, const at::Tensor& weight,
                                       const std::optional<at::Tensor>& bias) {
  check_float_or_bf16(corr, "semcorr::gather_windows4d_linear", "corr");
  const auto d = gather_windows4d_host::check_linear_args(corr, points, weight, bias, /*allow_half=*/is_bf16(corr));
  const int64_t C = weight.size(0), w4 = d.w4();
  auto out = at::empty({d.N, C}, corr.options());
  if (out.numel() == 0) return out;
  const auto c = corr.contiguous();
  const auto p = points.contiguous();
  const auto wt = weight.reshape({C, w4}).t();  // (w^4, C)
  const int64_t tile = std::max<int64_t>(8, (256 << 10) / (w4 * static_cast<int64_t>(corr.element_size())));
  const int64_t ntiles = (d.N + tile - 1) / tile;
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, corr.scalar_type(), "gather_windows4d_linear_cpu", [&] {
    const scalar_t* cp = c.const_data_ptr<scalar_t>();
    const int64_t* pp = p.const_data_ptr<int64_t>();
    // The ATen calls below run on OpenMP worker threads, which do not inherit the caller's thread-local state:
    // without it they would dispatch to autograd again (this kernel runs below it) and addmm_out refuses a bias
    // that requires grad.
    const at::ThreadLocalState caller_state;
    at::parallel_for(0, ntiles, 1, [&](int64_t t0, int64_t t1) {
      const at::ThreadLocalStateGuard state_guard(caller_state);
      auto buf = at::empty({tile, w4}, corr.options());
      scalar_t* bp = buf.mutable_data_ptr<scalar_t>();
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t m0 = t * tile, n = std::min(tile, d.N - m0);
        for (int64_t k = 0; k < n; ++k) {
          const int64_t* q = pp + 5 * (m0 + k);
          copy_window(d, cp, q[0], q[1], q[2], q[3], q[4], bp + k * w4);
        }
        auto o = out.narrow(0, m0, n);
        if (bias.has_value())
          at::addmm_out(o, *bias, buf.narrow(0, 0, n), wt);
        else
          at::mm_out(o, buf.narrow(0, 0, n), wt);
      }
    });
  });
  return out;
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("gather_windows4d", &gather_windows4d_cpu);
  m.impl("_gather_windows4d_backward", &gather_windows4d_backward_cpu);
  m.impl("gather_windows4d_points", &gather_windows4d_points_cpu);
  m.impl("_gather_windows4d_points_backward", &gather_windows4d_points_backward_cpu);
  m.impl("gather_windows4d_linear", &gather_windows4d_linear_cpu);
}

}  // namespace semcorr
