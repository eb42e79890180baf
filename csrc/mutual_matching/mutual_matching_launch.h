// Launch sequences of mutual_matching's CUDA kernels, shared by mutual_matching_cuda.cu and the host emulator
// (mutual_matching_emu.cpp). The launch sequences take (B, Ns, Nt) contiguous, non-empty inputs; the
// entries at the end check the arguments and handle empty inputs, their callers set the device guard and pass
// the stream.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>

#include <algorithm>

#include "mutual_matching/mutual_matching_host.h"
#include "common/launch.h"
#include "mutual_matching/mutual_matching_kernel.cuh"

// Kernels are launched through pointers: a template-id's comma would split the SC_LAUNCH macro.
namespace semcorr {
namespace mutual_matching_launch {

constexpr int kThreads = 256;

inline at::ScalarType acc_dtype(const at::Tensor& t) { return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

// Grid of a grid-stride element-wise kernel: enough blocks to fill a GPU, not one per element.
inline dim3 elementwise_grid(int64_t n) { return dim3(static_cast<unsigned>(std::min<int64_t>(ceil_div<int64_t>(n, kThreads), sc_grid_cap(65535)))); }

struct Maxima {
  at::Tensor max_t, arg_t, max_s, arg_s;
};

inline Maxima maxima(const at::Tensor& c, cudaStream_t stream) {
  const int64_t B = c.size(0), Ns = c.size(1), Nt = c.size(2);
  TORCH_CHECK(B <= 65535, "semcorr::mutual_matching: batch size must be <= 65535 on CUDA, got ", B);
  const auto fopt = c.options().dtype(acc_dtype(c));
  const auto iopt = c.options().dtype(at::kLong);
  Maxima m{at::empty({B, Ns}, fopt), at::empty({B, Ns}, iopt), at::empty({B, Nt}, fopt), at::empty({B, Nt}, iopt)};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "mutual_matching_maxima", [&] {
    using acc = acc_t<scalar_t>;
    using namespace mutual_matching_kernels;
    const auto row_max_kernel_fn = &row_max_kernel<scalar_t, acc>;
    SC_LAUNCH(row_max_kernel_fn, dim3(Ns, B), dim3(kThreads), 0, stream)(
        c.const_data_ptr<scalar_t>(), m.max_t.mutable_data_ptr<acc>(), m.arg_t.mutable_data_ptr<int64_t>(), Ns, Nt);
    SEMCORR_LAUNCH_CHECK();
    const auto col_max_kernel_fn = &col_max_kernel<scalar_t, acc>;
    SC_LAUNCH(col_max_kernel_fn, dim3(ceil_div<int64_t>(B * Nt, kThreads)), dim3(kThreads), 0, stream)(
        c.const_data_ptr<scalar_t>(), m.max_s.mutable_data_ptr<acc>(), m.arg_s.mutable_data_ptr<int64_t>(), B, Ns, Nt);
    SEMCORR_LAUNCH_CHECK();
  });
  return m;
}

inline at::Tensor forward(const at::Tensor& c, double eps, cudaStream_t stream) {
  const int64_t B = c.size(0), Ns = c.size(1), Nt = c.size(2);
  const auto m = maxima(c, stream);
  auto out = at::empty_like(c);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "mutual_matching_forward", [&] {
    using acc = acc_t<scalar_t>;
    const auto forward_kernel_fn = &mutual_matching_kernels::forward_kernel<scalar_t, acc>;
    SC_LAUNCH(forward_kernel_fn, elementwise_grid(B * Ns * Nt), dim3(kThreads),
              0, stream)(c.const_data_ptr<scalar_t>(), m.max_t.const_data_ptr<acc>(), m.max_s.const_data_ptr<acc>(),
                         out.mutable_data_ptr<scalar_t>(), B, Ns, Nt, static_cast<acc>(eps));
    SEMCORR_LAUNCH_CHECK();
  });
  return out;
}

inline at::Tensor backward(const at::Tensor& g, const at::Tensor& c, double eps, cudaStream_t stream) {
  const int64_t B = c.size(0), Ns = c.size(1), Nt = c.size(2);
  const auto m = maxima(c, stream);
  auto grad_in = at::empty({B, Ns, Nt}, c.options().dtype(acc_dtype(c)));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, c.scalar_type(), "mutual_matching_backward", [&] {
    using acc = acc_t<scalar_t>;
    using namespace mutual_matching_kernels;
    const acc e = static_cast<acc>(eps);
    const auto backward_elem_kernel_fn = &backward_elem_kernel<scalar_t, acc>;
    SC_LAUNCH(backward_elem_kernel_fn, elementwise_grid(B * Ns * Nt), dim3(kThreads), 0, stream)(
        g.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(), m.max_t.const_data_ptr<acc>(),
        m.max_s.const_data_ptr<acc>(), grad_in.mutable_data_ptr<acc>(), B, Ns, Nt, e);
    SEMCORR_LAUNCH_CHECK();
    const auto backward_rows_kernel_fn = &backward_rows_kernel<scalar_t, acc>;
    SC_LAUNCH(backward_rows_kernel_fn, dim3(Ns, B), dim3(kThreads), 0, stream)(
        g.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(), m.max_t.const_data_ptr<acc>(),
        m.arg_t.const_data_ptr<int64_t>(), m.max_s.const_data_ptr<acc>(), grad_in.mutable_data_ptr<acc>(), Ns, Nt, e);
    SEMCORR_LAUNCH_CHECK();
    const auto backward_cols_kernel_fn = &backward_cols_kernel<scalar_t, acc>;
    SC_LAUNCH(backward_cols_kernel_fn, dim3(ceil_div<int64_t>(B * Nt, kThreads)), dim3(kThreads), 0,
              stream)(g.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(), m.max_t.const_data_ptr<acc>(),
                      m.max_s.const_data_ptr<acc>(), m.arg_s.const_data_ptr<int64_t>(),
                      grad_in.mutable_data_ptr<acc>(), B, Ns, Nt, e);
    SEMCORR_LAUNCH_CHECK();
  });
  return grad_in.to(c.scalar_type());
}

// The CUDA entries of semcorr::mutual_matching and its backward: argument checks, empty inputs and the
// (B, Ns, Nt) view around the launch sequences above.
inline at::Tensor mutual_matching(const at::Tensor& corr, double eps, cudaStream_t stream) {
  const auto d = mutual_matching_host::check_args(corr, eps, /*allow_half=*/true);
  if (corr.numel() == 0) return at::empty_like(corr);
  return forward(corr.contiguous().view({d.B, d.Ns, d.Nt}), eps, stream).view(corr.sizes());
}

inline at::Tensor mutual_matching_backward(const at::Tensor& grad, const at::Tensor& corr, double eps,
                                           cudaStream_t stream) {
  const auto d = mutual_matching_host::check_args(corr, eps, /*allow_half=*/true);
  mutual_matching_host::check_backward_args(grad, corr);
  if (corr.numel() == 0) return at::empty_like(corr);
  return backward(grad.contiguous().view({d.B, d.Ns, d.Nt}), corr.contiguous().view({d.B, d.Ns, d.Nt}), eps, stream)
      .view(corr.sizes());
}

}  // namespace mutual_matching_launch
}  // namespace semcorr
