// Launch sequences of gather_windows4d's and gather_windows4d_points' CUDA kernels, shared by gather_windows4d_cuda.cu and the host emulator
// (gather_windows4d_emu.cpp). The launch sequences take contiguous, non-empty inputs; the entries at the
// end check the arguments and handle empty inputs; their callers set the device guard and pass the stream.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <optional>

#include "common/launch.h"
#include "common/math.cuh"
#include "gather_windows4d/gather_windows4d_host.h"
#include "gather_windows4d/gather_windows4d_kernel.cuh"

namespace semcorr {
namespace gather_windows4d_launch {

constexpr int kThreads = 256;

inline dim3 grid_for(int64_t n) {
  return dim3(static_cast<unsigned>(std::min<int64_t>(ceil_div<int64_t>(n, kThreads), sc_grid_cap(65535))));
}

inline at::Tensor forward(const gw::Dims& d, const at::Tensor& corr, const at::Tensor& cand, cudaStream_t stream) {
  auto out = at::empty({d.B, d.Hs, d.Ws, d.N, d.w, d.w, d.w, d.w}, corr.options());
  const int64_t total = out.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, corr.scalar_type(), "gather_windows4d_forward", [&] {
    const auto k_fn = &gather_windows4d_kernels::forward_kernel<scalar_t>;
    SC_LAUNCH(k_fn, grid_for(total), dim3(kThreads), 0, stream)(
        d, corr.const_data_ptr<scalar_t>(), cand.const_data_ptr<int64_t>(), out.mutable_data_ptr<scalar_t>(), total);
    SEMCORR_LAUNCH_CHECK();
  });
  return out;
}

// The backward of either op (windows: gw::FixedWindows or gw::CsrWindows), accumulated in acc_t.
template <typename Windows>
at::Tensor backward(const gw::Dims& d, const Windows& windows, const at::Tensor& grad, at::IntArrayRef corr_size,
                    cudaStream_t stream) {
  const auto acc_dtype = grad.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  auto gin = at::empty(corr_size, grad.options().dtype(acc_dtype));
  const int64_t total = gin.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "gather_windows4d_backward", [&] {
    using acc = acc_t<scalar_t>;
    const auto k_fn = &gather_windows4d_kernels::backward_kernel<scalar_t, acc, Windows>;
    SC_LAUNCH(k_fn, grid_for(total), dim3(kThreads), 0, stream)(
        d, windows, grad.const_data_ptr<scalar_t>(), gin.mutable_data_ptr<acc>(), total);
    SEMCORR_LAUNCH_CHECK();
  });
  return gin.to(grad.scalar_type());
}

inline at::Tensor backward(const gw::Dims& d, const at::Tensor& grad, const at::Tensor& cand,
                           at::IntArrayRef corr_size, cudaStream_t stream) {
  return backward(d, gw::FixedWindows{cand.const_data_ptr<int64_t>(), d.N}, grad, corr_size, stream);
}

inline at::Tensor points_forward(const gw::Dims& d, const at::Tensor& corr, const at::Tensor& points,
                                 cudaStream_t stream) {
  auto out = at::empty({d.N, d.w, d.w, d.w, d.w}, corr.options());
  const int64_t total = out.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, corr.scalar_type(), "gather_windows4d_points", [&] {
    const auto k_fn = &gather_windows4d_kernels::points_forward_kernel<scalar_t>;
    SC_LAUNCH(k_fn, grid_for(total), dim3(kThreads), 0, stream)(
        d, corr.const_data_ptr<scalar_t>(), points.const_data_ptr<int64_t>(), out.mutable_data_ptr<scalar_t>(),
        total);
    SEMCORR_LAUNCH_CHECK();
  });
  return out;
}

inline at::Tensor points_backward(const gw::Dims& d, const at::Tensor& grad, const at::Tensor& points,
                                  at::IntArrayRef corr_size, cudaStream_t stream) {
  const auto [start, order] = gather_windows4d_host::points_by_centre(d, points);
  const gw::CsrWindows windows{start.const_data_ptr<int64_t>(), order.const_data_ptr<int64_t>(),
                               points.const_data_ptr<int64_t>()};
  return backward(d, windows, grad, corr_size, stream);
}

// gather_windows4d_linear on CUDA: the gather kernel cuts a bounded chunk of windows, cuBLAS multiplies it by the
// weight (a GPU's L2 cannot hold a tile per SM worth fusing by hand; the chunk keeps the memory bounded).
inline at::Tensor linear_forward(const gw::Dims& d, const at::Tensor& corr, const at::Tensor& points,
                                 const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                                 cudaStream_t stream) {
  const int64_t C = weight.size(0), w4 = d.w4();
  auto out = at::empty({d.N, C}, corr.options());
  const auto wt = weight.reshape({C, w4}).t();
  const int64_t chunk = std::max<int64_t>(1, sc_chunk_cap(int64_t(1) << 24) / w4);
  for (int64_t m0 = 0; m0 < d.N; m0 += chunk) {
    const int64_t n = std::min(chunk, d.N - m0);
    gw::Dims dc = d;
    dc.N = n;
    const auto win = points_forward(dc, corr, points.narrow(0, m0, n), stream).view({n, w4});
    auto o = out.narrow(0, m0, n);
    if (bias.has_value())
      at::addmm_out(o, *bias, win, wt);
    else
      at::mm_out(o, win, wt);
  }
  return out;
}

// The CUDA entries of semcorr::gather_windows4d, gather_windows4d_points, gather_windows4d_linear and the two
// backwards: argument checks and empty inputs around the launch sequences above.
inline at::Tensor gather_windows4d(const at::Tensor& corr, const at::Tensor& candidates, int64_t window,
                                   cudaStream_t stream) {
  const auto d = gather_windows4d_host::check_args(corr, candidates, window, /*allow_half=*/true);
  if (d.B * d.Hs * d.Ws * d.N == 0) return at::empty({d.B, d.Hs, d.Ws, d.N, d.w, d.w, d.w, d.w}, corr.options());
  return forward(d, corr.contiguous(), candidates.contiguous(), stream);
}

inline at::Tensor gather_windows4d_backward(const at::Tensor& grad, const at::Tensor& candidates,
                                            at::IntArrayRef corr_size, int64_t window, cudaStream_t stream) {
  const auto d = gather_windows4d_host::check_backward_args(grad, candidates, corr_size, window, true);
  if (d.B * d.Hs * d.Ws * d.Ht * d.Wt == 0 || grad.numel() == 0) return at::zeros(corr_size, grad.options());
  return backward(d, grad.contiguous(), candidates.contiguous(), corr_size, stream);
}

inline at::Tensor gather_windows4d_points(const at::Tensor& corr, const at::Tensor& points, int64_t window,
                                          cudaStream_t stream) {
  const auto d = gather_windows4d_host::check_points_args(corr, points, window, /*allow_half=*/true);
  if (d.N == 0) return at::empty({0, d.w, d.w, d.w, d.w}, corr.options());
  return points_forward(d, corr.contiguous(), points.contiguous(), stream);
}

inline at::Tensor gather_windows4d_points_backward(const at::Tensor& grad, const at::Tensor& points,
                                                   at::IntArrayRef corr_size, int64_t window, cudaStream_t stream) {
  const auto d = gather_windows4d_host::check_points_backward_args(grad, points, corr_size, window, true);
  if (d.B * d.Hs * d.Ws * d.Ht * d.Wt == 0 || grad.numel() == 0) return at::zeros(corr_size, grad.options());
  return points_backward(d, grad.contiguous(), points.contiguous(), corr_size, stream);
}

inline at::Tensor gather_windows4d_linear(const at::Tensor& corr, const at::Tensor& points, const at::Tensor& weight,
                                          const std::optional<at::Tensor>& bias, cudaStream_t stream) {
  const auto d = gather_windows4d_host::check_linear_args(corr, points, weight, bias, /*allow_half=*/true);
  if (d.N == 0 || weight.size(0) == 0) return at::empty({d.N, weight.size(0)}, corr.options());
  return linear_forward(d, corr.contiguous(), points.contiguous(), weight, bias, stream);
}

}  // namespace gather_windows4d_launch
}  // namespace semcorr
