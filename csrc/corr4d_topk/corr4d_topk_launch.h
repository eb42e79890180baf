// Launch sequences of corr4d_topk's CUDA kernels, shared by the GPU host glue (corr4d_topk_cuda.cu) and the
// host emulator (corr4d_topk_emu.cpp). The entries at the end check the arguments and handle empty
// inputs; their callers set the device guard and pass the stream. The inverse norms come from corr4d's launch
// sequence (same numbers).
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/searchsorted.h>
#include <ATen/ops/sort.h>

#include "corr4d/corr4d_launch.h"
#include "corr4d_topk/corr4d_topk_host.h"
#include "corr4d_topk/corr4d_topk_kernel.cuh"
#include "corr4d_topk/corr4d_topk_tc_kernel.cuh"

namespace semcorr {
namespace corr4d_topk_launch {

constexpr int kThreads1d = 256;

// The tensor-core forward (float32 inverse norms; scalar_t float for tf32, at::Half / at::BFloat16 otherwise).
template <MmaKind kind, typename scalar_t>
inline void forward_tc(const at::Tensor& src3, const at::Tensor& tgt3, const at::Tensor& inv_s,
                       const at::Tensor& inv_t, at::Tensor& values, at::Tensor& indices, int64_t k,
                       cudaStream_t stream) {
  const int64_t B = src3.size(0), C = src3.size(1), Ns = src3.size(2), Nt = tgt3.size(2);
  using namespace corr4d_topk_kernels;
  const auto kernel = &topk_tc_kernel<kind, scalar_t>;
  SC_LAUNCH(kernel, dim3(ceil_div<int64_t>(Ns, kRows), B), dim3(kTcThreads), 0, stream)(
      src3.const_data_ptr<scalar_t>(), tgt3.const_data_ptr<scalar_t>(), inv_s.const_data_ptr<float>(),
      inv_t.const_data_ptr<float>(), values.mutable_data_ptr<scalar_t>(), indices.mutable_data_ptr<int64_t>(), C, Ns,
      Nt, static_cast<int>(k));
  SEMCORR_LAUNCH_CHECK();
}

// src3 (B, C, Ns), tgt3 (B, C, Nt) contiguous, B*Ns > 0, 1 <= k <= 32 -> (values (B, Ns, k), indices (B, Ns, k)).
// Tensor cores or SIMT as common/tensor_cores.h decides (TF32 for float32 follows the matmul switch).
inline std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& src3, const at::Tensor& tgt3, int64_t k,
                                                  bool normalize, double eps, cudaStream_t stream) {
  const int64_t B = src3.size(0), C = src3.size(1), Ns = src3.size(2), Nt = tgt3.size(2);
  TORCH_CHECK(B <= 65535, "semcorr::corr4d_topk: batch size must be <= 65535 on CUDA, got ", B);
  static_assert(corr4d_topk_kernels::kMaxK == kTopkMaxK, "kMaxK mismatch");
  const auto inv_s = corr4d_launch::inv_norms(src3, normalize, eps, stream);
  const auto inv_t = corr4d_launch::inv_norms(tgt3, normalize, eps, stream);
  auto values = at::empty({B, Ns, k}, src3.options());
  auto indices = at::empty({B, Ns, k}, src3.options().dtype(at::kLong));
  if (launch_tensor_cores(src3.scalar_type(), Tf32Switch::matmul, [&]<MmaKind kind, typename T>() {
        forward_tc<kind, T>(src3, tgt3, inv_s, inv_t, values, indices, k, stream);
      }))
    return {values, indices};
  using namespace corr4d_topk_kernels;
  const dim3 grid(ceil_div<int64_t>(Ns, kRows), B);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src3.scalar_type(), "corr4d_topk_forward", [&] {
    using acc = acc_t<scalar_t>;
    const auto topk_kernel_fn = &topk_kernel<scalar_t, acc>;
    SC_LAUNCH(topk_kernel_fn, grid, dim3(kThreads, kThreads), 0, stream)(
        src3.const_data_ptr<scalar_t>(), tgt3.const_data_ptr<scalar_t>(), inv_s.const_data_ptr<acc>(),
        inv_t.const_data_ptr<acc>(), values.mutable_data_ptr<scalar_t>(), indices.mutable_data_ptr<int64_t>(), C, Ns,
        Nt, static_cast<int>(k));
    SEMCORR_LAUNCH_CHECK();
  });
  return {values, indices};
}

// g, v, idx (B, Ns, k) contiguous, src3/tgt3 as forward, B*Ns*k*C > 0 -> (grad_src3, grad_tgt3).
inline std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& g, const at::Tensor& v, const at::Tensor& idx,
                                                   const at::Tensor& src3, const at::Tensor& tgt3, bool normalize,
                                                   double eps, cudaStream_t stream) {
  constexpr const char* op = "semcorr::_corr4d_topk_backward";
  const int64_t B = src3.size(0), C = src3.size(1), Ns = src3.size(2), Nt = tgt3.size(2), k = v.size(2);
  TORCH_CHECK(B <= 65535 && Ns <= 2147483647, op, ": batch size must be <= 65535 on CUDA, got ", B);
  {
    auto [mn, mx] = at::aminmax(idx);
    const int64_t lo = mn.item<int64_t>(), hi = mx.item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < Nt, op, ": `indices` must be in [0, Ht*Wt) = [0, ", Nt, "), got values in [", lo,
                ", ", hi, "]");
  }
  const auto inv_s = corr4d_launch::inv_norms(src3, normalize, eps, stream);
  const auto inv_t = corr4d_launch::inv_norms(tgt3, normalize, eps, stream);
  auto grad_src = at::empty_like(src3);
  auto grad_tgt = at::empty_like(tgt3);
  // entries grouped by (b, t): a stable sort of b*Nt + t keeps each group in entry order
  const auto lopts = idx.options();
  const auto keys = idx.add(at::arange(B, lopts).view({B, 1, 1}).mul(Nt)).view({-1});
  const auto sorted = at::sort(keys, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const auto& sorted_keys = std::get<0>(sorted);
  const auto perm = std::get<1>(sorted).contiguous();
  const auto seg = at::searchsorted(sorted_keys, at::arange(B * Nt + 1, lopts)).contiguous();
  using namespace corr4d_topk_kernels;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, src3.scalar_type(), "corr4d_topk_backward", [&] {
    using acc = acc_t<scalar_t>;
    const auto grad_src_kernel_fn = &grad_src_kernel<scalar_t, acc>;
    SC_LAUNCH(grad_src_kernel_fn, dim3(Ns, B), dim3(128), 0, stream)(
        g.const_data_ptr<scalar_t>(), v.const_data_ptr<scalar_t>(), idx.const_data_ptr<int64_t>(),
        src3.const_data_ptr<scalar_t>(), tgt3.const_data_ptr<scalar_t>(), inv_s.const_data_ptr<acc>(),
        inv_t.const_data_ptr<acc>(), grad_src.mutable_data_ptr<scalar_t>(), C, Ns, Nt, k, normalize);
    SEMCORR_LAUNCH_CHECK();
    const auto grad_tgt_kernel_fn = &grad_tgt_kernel<scalar_t, acc>;
    SC_LAUNCH(grad_tgt_kernel_fn, dim3(ceil_div<int64_t>(B * C * Nt, kThreads1d)), dim3(kThreads1d), 0, stream)(
        g.const_data_ptr<scalar_t>(), v.const_data_ptr<scalar_t>(), perm.const_data_ptr<int64_t>(),
        seg.const_data_ptr<int64_t>(), src3.const_data_ptr<scalar_t>(), tgt3.const_data_ptr<scalar_t>(),
        inv_s.const_data_ptr<acc>(), inv_t.const_data_ptr<acc>(), grad_tgt.mutable_data_ptr<scalar_t>(), B, C, Ns,
        Nt, k, normalize);
    SEMCORR_LAUNCH_CHECK();
  });
  return {grad_src, grad_tgt};
}

// The CUDA entries of semcorr::corr4d_topk and semcorr::_corr4d_topk_backward: argument checks, empty inputs,
// reshapes around the launch sequences above.
inline std::tuple<at::Tensor, at::Tensor> corr4d_topk(const at::Tensor& src, const at::Tensor& tgt, int64_t k,
                                                      bool normalize, double eps, cudaStream_t stream) {
  corr4d_topk_host::check_args(src, tgt, k, eps, /*cuda_kernel=*/true);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * k == 0 || C == 0) return corr4d_topk_host::trivial_output(src, k);
  auto [v, i] = forward(src.contiguous().view({B, C, Ns}), tgt.contiguous().view({B, C, Nt}), k, normalize, eps,
                        stream);
  return {v.view({B, src.size(2), src.size(3), k}), i.view({B, src.size(2), src.size(3), k})};
}

inline std::tuple<at::Tensor, at::Tensor> corr4d_topk_backward(const at::Tensor& grad, const at::Tensor& src,
                                                               const at::Tensor& tgt, const at::Tensor& values,
                                                               const at::Tensor& indices, bool normalize,
                                                               double eps, cudaStream_t stream) {
  const auto [B, C, Ns, Nt, k] =
      corr4d_topk_host::check_backward_args(grad, src, tgt, values, indices, eps, /*cuda_kernel=*/true);
  if (B * Ns * k * C == 0) return {at::zeros_like(src), at::zeros_like(tgt)};
  auto [gs, gt] = backward(grad.contiguous().view({B, Ns, k}), values.contiguous().view({B, Ns, k}),
                           indices.contiguous().view({B, Ns, k}), src.contiguous().view({B, C, Ns}),
                           tgt.contiguous().view({B, C, Nt}), normalize, eps, stream);
  return {gs.view(src.sizes()), gt.view(tgt.sizes())};
}

}  // namespace corr4d_topk_launch
}  // namespace semcorr
