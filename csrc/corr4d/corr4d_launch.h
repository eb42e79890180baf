// Launch sequences of corr4d's CUDA kernels, shared by the GPU host glue (corr4d_cuda.cu) and the host
// emulator (corr4d_emu.cpp), so tests exercise exactly what runs on a GPU. The entries at the end
// (corr4d, corr4d_backward) check the arguments, return empty inputs' outputs and reshape; their callers set
// the device guard and pass the stream (nullptr under emulation).
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros_like.h>

#include <optional>

#include "common/launch.h"
#include "common/tensor_cores.h"
#include "corr4d/corr4d_host.h"
#include "corr4d/corr4d_kernel.cuh"
#include "corr4d/corr4d_tc_kernel.cuh"

// Kernels are launched through pointers: a template-id's comma would split the SC_LAUNCH macro.
namespace semcorr {
namespace corr4d_launch {

constexpr int kThreads1d = 256;

// Inverse norms in the accumulation type (float for half/bfloat16/float, double for double).
inline at::Tensor inv_norms(const at::Tensor& f3, bool normalize, double eps, cudaStream_t stream) {
  const auto acc_dtype = f3.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const auto opts = f3.options().dtype(acc_dtype);
  if (!normalize) return at::ones({f3.size(0), f3.size(2)}, opts);
  auto inv = at::empty({f3.size(0), f3.size(2)}, opts);
  const int64_t n = f3.size(0) * f3.size(2);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, f3.scalar_type(), "corr4d_inv_norm", [&] {
    using acc = acc_t<scalar_t>;
    const auto inv_norm_kernel_fn = &corr4d_kernels::inv_norm_kernel<scalar_t, acc>;
    SC_LAUNCH(inv_norm_kernel_fn, dim3(ceil_div<int64_t>(n, kThreads1d)),
              dim3(kThreads1d), 0, stream)(f3.const_data_ptr<scalar_t>(), inv.mutable_data_ptr<acc>(),
                                           f3.size(0), f3.size(1), f3.size(2), static_cast<acc>(eps));
    SEMCORR_LAUNCH_CHECK();
  });
  return inv;
}

// The tensor-core forward (float32 inverse norms; scalar_t float for tf32, at::Half / at::BFloat16 otherwise).
template <MmaKind kind, typename scalar_t>
inline void forward_tc(const at::Tensor& src3, const at::Tensor& tgt3, const at::Tensor& inv_s,
                       const at::Tensor& inv_t, at::Tensor& out, bool relu, double power, cudaStream_t stream) {
  const int64_t B = src3.size(0), C = src3.size(1), Ns = src3.size(2), Nt = tgt3.size(2);
  using namespace corr4d_kernels;
  const dim3 grid(ceil_div<int64_t>(Nt, kTcTile), ceil_div<int64_t>(Ns, kTcTile), B);
  const auto kernel = &corr_gemm_tc_kernel<kind, scalar_t>;
  SC_LAUNCH(kernel, grid, dim3(kTcThreads), 0, stream)(
      src3.const_data_ptr<scalar_t>(), tgt3.const_data_ptr<scalar_t>(), inv_s.const_data_ptr<float>(),
      inv_t.const_data_ptr<float>(), out.mutable_data_ptr<scalar_t>(), C, Ns, Nt, relu, static_cast<float>(power));
  SEMCORR_LAUNCH_CHECK();
}

// src3 (B, C, Ns), tgt3 (B, C, Nt) contiguous, non-empty -> (B, Ns, Nt). Tensor cores or SIMT as
// common/tensor_cores.h decides (TF32 for float32 follows the matmul switch unless `sw` says the inputs are exact).
inline at::Tensor forward(const at::Tensor& src3, const at::Tensor& tgt3, bool normalize, bool relu,
                          double power, double eps, cudaStream_t stream, Tf32Switch sw = Tf32Switch::matmul) {
  const int64_t B = src3.size(0), C = src3.size(1), Ns = src3.size(2), Nt = tgt3.size(2);
  TORCH_CHECK(B <= 65535, "semcorr::corr4d: batch size must be <= 65535 on CUDA, got ", B);
  const auto inv_s = inv_norms(src3, normalize, eps, stream);
  const auto inv_t = inv_norms(tgt3, normalize, eps, stream);
  auto out = at::empty({B, Ns, Nt}, src3.options());
  if (launch_tensor_cores(src3.scalar_type(), sw, [&]<MmaKind kind, typename T>() {
        forward_tc<kind, T>(src3, tgt3, inv_s, inv_t, out, relu, power, stream);
      }))
    return out;
  using namespace corr4d_kernels;
  const dim3 grid(ceil_div<int64_t>(Nt, kTile), ceil_div<int64_t>(Ns, kTile), B);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src3.scalar_type(), "corr4d_forward", [&] {
    using acc = acc_t<scalar_t>;
    const auto corr_gemm_kernel_fn = &corr_gemm_kernel<scalar_t, acc>;
    SC_LAUNCH(corr_gemm_kernel_fn, grid, dim3(kThreads, kThreads), 0, stream)(
        src3.const_data_ptr<scalar_t>(), tgt3.const_data_ptr<scalar_t>(), inv_s.const_data_ptr<acc>(),
        inv_t.const_data_ptr<acc>(), out.mutable_data_ptr<scalar_t>(), C, Ns, Nt, relu, static_cast<acc>(power));
    SEMCORR_LAUNCH_CHECK();
  });
  return out;
}

// g, o (B, Ns, Nt) contiguous -> (grad_src3, grad_tgt3).
inline std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& g, const at::Tensor& o,
                                                   const at::Tensor& src3, const at::Tensor& tgt3,
                                                   bool normalize, bool relu, double power, double eps,
                                                   cudaStream_t stream) {
  const int64_t B = src3.size(0), Ns = src3.size(2), Nt = tgt3.size(2);
  TORCH_CHECK(B <= 65535 && Ns <= 2147483647, "semcorr::_corr4d_backward: batch size must be <= 65535 on CUDA");
  const auto inv_s = inv_norms(src3, normalize, eps, stream);
  const auto inv_t = inv_norms(tgt3, normalize, eps, stream);
  auto dp = at::empty({B, Ns, Nt}, src3.options());
  auto rowsum = at::empty({B, Ns}, inv_s.options());
  auto colsum = at::empty({B, Nt}, inv_s.options());
  using namespace corr4d_kernels;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src3.scalar_type(), "corr4d_backward", [&] {
    using acc = acc_t<scalar_t>;
    const auto backward_rows_kernel_fn = &backward_rows_kernel<scalar_t, acc>;
    SC_LAUNCH(backward_rows_kernel_fn, dim3(Ns, B), dim3(kThreads1d), 0, stream)(
        g.const_data_ptr<scalar_t>(), o.const_data_ptr<scalar_t>(), inv_s.const_data_ptr<acc>(),
        inv_t.const_data_ptr<acc>(), dp.mutable_data_ptr<scalar_t>(), rowsum.mutable_data_ptr<acc>(), Ns, Nt,
        relu, static_cast<acc>(power));
    SEMCORR_LAUNCH_CHECK();
    if (normalize) {
      const auto backward_cols_kernel_fn = &backward_cols_kernel<scalar_t, acc>;
      SC_LAUNCH(backward_cols_kernel_fn, dim3(ceil_div<int64_t>(B * Nt, kThreads1d)),
                dim3(kThreads1d), 0, stream)(g.const_data_ptr<scalar_t>(), o.const_data_ptr<scalar_t>(),
                                             colsum.mutable_data_ptr<acc>(), B, Ns, Nt, static_cast<acc>(power));
      SEMCORR_LAUNCH_CHECK();
    }
  });
  return corr4d_host::finish_backward(src3, tgt3, dp, normalize, inv_s, inv_t, rowsum, colsum);
}

// The CUDA entries of semcorr::corr4d and semcorr::_corr4d_backward (src, tgt (B, C, H, W) of any layout).
// A float32 out_dtype of float16/bfloat16 inputs runs the float32 path on the inputs upcast, on tensor cores
// whatever the TF32 switch (exact: common/tensor_cores.h, Tf32Switch::exact_inputs). The backward takes grad and
// out in float32 too and runs in the inputs' dtype, as after a forward in that dtype.
inline at::Tensor corr4d(const at::Tensor& src, const at::Tensor& tgt, bool normalize, bool relu, double power,
                         double eps, std::optional<at::ScalarType> out_dtype, cudaStream_t stream) {
  corr4d_host::check_args(src, tgt, relu, power, eps, /*allow_half=*/true);
  const auto dtype = out_dtype_of(src, out_dtype, "semcorr::corr4d");
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * Nt == 0) return corr4d_host::empty_output(src, tgt).to(dtype);
  const bool up = dtype != src.scalar_type();
  const auto out = forward(src.to(dtype).contiguous().view({B, C, Ns}), tgt.to(dtype).contiguous().view({B, C, Nt}),
                           normalize, relu, power, eps, stream, up ? Tf32Switch::exact_inputs : Tf32Switch::matmul);
  return out.view({B, src.size(2), src.size(3), tgt.size(2), tgt.size(3)});
}

inline std::tuple<at::Tensor, at::Tensor> corr4d_backward(const at::Tensor& grad, const at::Tensor& src,
                                                          const at::Tensor& tgt, const at::Tensor& out,
                                                          bool normalize, bool relu, double power, double eps,
                                                          cudaStream_t stream) {
  corr4d_host::check_args(src, tgt, relu, power, eps, /*allow_half=*/true);
  corr4d_host::check_backward_args(grad, src, tgt, out);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * Nt * C == 0) return {at::zeros_like(src), at::zeros_like(tgt)};
  const auto dtype = src.scalar_type();
  auto [gs, gt] = backward(grad.to(dtype).contiguous().view({B, Ns, Nt}), out.to(dtype).contiguous().view({B, Ns, Nt}),
                           src.contiguous().view({B, C, Ns}), tgt.contiguous().view({B, C, Nt}), normalize, relu,
                           power, eps, stream);
  return {gs.view(src.sizes()), gt.view(tgt.sizes())};
}

}  // namespace corr4d_launch
}  // namespace semcorr
