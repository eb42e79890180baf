// Launch sequences of kernel_map4d's and sparse_conv4d's CUDA kernels, shared by the GPU host glue
// (sparse_conv4d_cuda.cu) and the host emulator (sparse_conv4d_emu.cpp). The entries at the end check
// the arguments and handle empty inputs; their callers set the device guard and pass the stream.
//
// Kernel map: 64-bit coordinate keys sorted once (at::sort), one thread per (offset, row) binary-searches its
// neighbour into a (K, N) table, compacted (ATen) into the offset-major pair lists. Convolution: one
// gather-GEMM-scatter launch per kernel offset on the stream (the offsets' pair counts are read on the host
// once per call); no atomics anywhere, so forward and backward are deterministic.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/any.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/eq.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>

#include "common/launch.h"
#include "common/tensor_cores.h"
#include "sparse_conv4d/sparse_conv4d_host.h"
#include "sparse_conv4d/sparse_conv4d_kernel.cuh"
#include "sparse_conv4d/sparse_conv4d_tc_kernel.cuh"

namespace semcorr {
namespace sparse_conv4d_launch {

constexpr int kThreads1d = 256;

// coords (N, 5) integer, N > 0 -> (in_rows, out_rows, offsets_ptr).
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_map(const at::Tensor& coords,
                                                                 const std::array<int64_t, 4>& k,
                                                                 cudaStream_t stream) {
  constexpr const char* op = "semcorr::kernel_map4d";
  const int64_t N = coords.size(0), K = k[0] * k[1] * k[2] * k[3];
  const auto c = coords.to(at::kLong).contiguous();
  const auto ks = sparse_conv4d_host::key_space(c);
  auto keys = c.select(1, 4).clone();
  for (int d = 0; d < 4; ++d) keys.add_(c.select(1, d).mul(ks.stride[d]));
  const auto sorted = at::sort(keys, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const auto sorted_keys = std::get<0>(sorted).contiguous();
  const auto order = std::get<1>(sorted).contiguous();
  if (N > 1) {
    TORCH_CHECK(!sorted_keys.narrow(0, 1, N - 1).eq(sorted_keys.narrow(0, 0, N - 1)).any().item<bool>(), op,
                ": `coords` must have unique rows, got duplicates");
  }
  sparse_conv4d_kernels::MapArgs a{};
  for (int d = 0; d < 5; ++d) {
    a.extent[d] = ks.extent[d];
    a.stride[d] = ks.stride[d];
  }
  for (int d = 0; d < 4; ++d) a.k[d] = k[d];
  checked_numel({K, N}, op, "kernel_size");  // the (K, N) neighbour table
  auto nbr = at::empty({K, N}, c.options());
  const auto kmap_search_kernel_fn = &sparse_conv4d_kernels::kmap_search_kernel;
  SC_LAUNCH(kmap_search_kernel_fn, dim3(ceil_div<int64_t>(K * N, kThreads1d)), dim3(kThreads1d), 0, stream)(
      c.const_data_ptr<int64_t>(), sorted_keys.const_data_ptr<int64_t>(), order.const_data_ptr<int64_t>(), N, K, a,
      nbr.mutable_data_ptr<int64_t>());
  SEMCORR_LAUNCH_CHECK();
  return sparse_conv4d_host::compact(nbr);
}

// The tensor-core gather-GEMM-scatter of every offset (scalar_t float for tf32, at::Half / at::BFloat16 otherwise).
template <MmaKind kind, typename scalar_t>
inline void gather_gemm_scatter_tc(const at::Tensor& A, const at::Tensor& a_rows, const at::Tensor& w, int64_t ldw_q,
                                   int64_t ldw_n, const at::Tensor& c_rows, at::Tensor& Cacc,
                                   const at::Tensor& ptr_host, cudaStream_t stream) {
  using namespace sparse_conv4d_kernels;
  const int64_t Kd = A.size(1), Nd = Cacc.size(1), K = ptr_host.size(0) - 1;
  const int64_t* p = ptr_host.const_data_ptr<int64_t>();
  const int64_t wstride = w.size(1) * w.size(2);
  const auto kernel = &gather_gemm_scatter_tc_kernel<kind, scalar_t>;
  for (int64_t o = 0; o < K; ++o) {
    const int64_t P = p[o + 1] - p[o];
    if (P == 0) continue;
    SC_LAUNCH(kernel, dim3(ceil_div<int64_t>(P, kTcTile), ceil_div<int64_t>(Nd, kTcTile)), dim3(kTcThreads), 0,
              stream)(A.const_data_ptr<scalar_t>(), a_rows.const_data_ptr<int64_t>() + p[o],
                      w.const_data_ptr<scalar_t>() + o * wstride, ldw_q, ldw_n, c_rows.const_data_ptr<int64_t>() + p[o],
                      Cacc.mutable_data_ptr<float>(), P, Kd, Nd);
    SEMCORR_LAUNCH_CHECK();
  }
}

// One gather-GEMM-scatter per offset: C[c_rows] += A[a_rows] @ W_o, W_o = w[o] addressed through (ldw_q, ldw_n).
// Tensor cores or SIMT as common/tensor_cores.h decides (TF32 for float32 follows torch.backends.cudnn.allow_tf32).
inline void gather_gemm_scatter(const at::Tensor& A, const at::Tensor& a_rows, const at::Tensor& w, int64_t ldw_q,
                                int64_t ldw_n, const at::Tensor& c_rows, at::Tensor& Cacc, const at::Tensor& ptr_host,
                                cudaStream_t stream) {
  if (launch_tensor_cores(A.scalar_type(), Tf32Switch::conv, [&]<MmaKind kind, typename T>() {
        gather_gemm_scatter_tc<kind, T>(A, a_rows, w, ldw_q, ldw_n, c_rows, Cacc, ptr_host, stream);
      }))
    return;
  using namespace sparse_conv4d_kernels;
  const int64_t Kd = A.size(1), Nd = Cacc.size(1), K = ptr_host.size(0) - 1;
  const int64_t* p = ptr_host.const_data_ptr<int64_t>();
  const int64_t wstride = w.size(1) * w.size(2);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, A.scalar_type(), "sparse_conv4d_gemm", [&] {
    using acc = acc_t<scalar_t>;
    const auto kernel_fn = &gather_gemm_scatter_kernel<scalar_t, acc>;
    for (int64_t o = 0; o < K; ++o) {
      const int64_t P = p[o + 1] - p[o];
      if (P == 0) continue;
      SC_LAUNCH(kernel_fn, dim3(ceil_div<int64_t>(P, kTile), ceil_div<int64_t>(Nd, kTile)), dim3(kThreads, kThreads),
                0, stream)(A.const_data_ptr<scalar_t>(), a_rows.const_data_ptr<int64_t>() + p[o],
                           w.const_data_ptr<scalar_t>() + o * wstride, ldw_q, ldw_n,
                           c_rows.const_data_ptr<int64_t>() + p[o], Cacc.mutable_data_ptr<acc>(), P, Kd, Nd);
      SEMCORR_LAUNCH_CHECK();
    }
  });
}

inline at::ScalarType acc_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// weight (Cout, Cin, k1..k4) -> (K, Cin, Cout) contiguous.
inline at::Tensor weight_per_offset(const at::Tensor& weight) {
  return weight.permute({2, 3, 4, 5, 1, 0}).reshape({-1, weight.size(1), weight.size(0)}).contiguous();
}

// feats (N, Cin) contiguous, N > 0, Cin > 0, Cout > 0; ptr_host the checked offsets on the host.
inline at::Tensor forward(const at::Tensor& feats, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          const at::Tensor& in_rows, const at::Tensor& out_rows, const at::Tensor& ptr_host,
                          cudaStream_t stream) {
  const int64_t N = feats.size(0), Cout = weight.size(0);
  const auto w = weight_per_offset(weight);
  auto out = at::zeros({N, Cout}, feats.options().dtype(acc_dtype(feats.scalar_type())));
  gather_gemm_scatter(feats, in_rows.contiguous(), w, /*ldw_q=*/Cout, /*ldw_n=*/1, out_rows.contiguous(), out,
                      ptr_host, stream);
  if (bias.has_value()) out.add_(bias->to(out.scalar_type()).view({1, Cout}));
  return out.to(feats.scalar_type());
}

// The tensor-core weight gradient gw (K, Cin, Cout) of every offset.
template <MmaKind kind, typename scalar_t>
inline void wgrad_tc(const at::Tensor& feats, const at::Tensor& ir, const at::Tensor& g, const at::Tensor& orr,
                     const at::Tensor& ptr, at::Tensor& gw, cudaStream_t stream) {
  using namespace sparse_conv4d_kernels;
  const int64_t Cin = feats.size(1), Cout = g.size(1), K = gw.size(0);
  const auto kernel = &wgrad_tc_kernel<kind, scalar_t>;
  SC_LAUNCH(kernel, dim3(ceil_div<int64_t>(Cout, kTcTile), ceil_div<int64_t>(Cin, kTcTile), K), dim3(kTcThreads), 0,
            stream)(feats.const_data_ptr<scalar_t>(), ir.const_data_ptr<int64_t>(), g.const_data_ptr<scalar_t>(),
                    orr.const_data_ptr<int64_t>(), ptr.const_data_ptr<int64_t>(), gw.mutable_data_ptr<scalar_t>(), Cin,
                    Cout);
  SEMCORR_LAUNCH_CHECK();
}

// -> (grad_feats, grad_weight, grad_bias); g (N, Cout) and feats contiguous, N, Cin, Cout > 0. The GEMMs (feature
// and weight gradients) on tensor cores or SIMT as the forward.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor& g, const at::Tensor& feats,
                                                               const at::Tensor& weight, const at::Tensor& in_rows,
                                                               const at::Tensor& out_rows,
                                                               const at::Tensor& offsets_ptr,
                                                               const at::Tensor& ptr_host,
                                                               const std::array<int64_t, 4>& k, cudaStream_t stream) {
  using namespace sparse_conv4d_kernels;
  const int64_t N = feats.size(0), Cin = feats.size(1), Cout = weight.size(0), K = ptr_host.size(0) - 1;
  TORCH_CHECK(K <= 65535, "semcorr::_sparse_conv4d_backward: at most 65535 kernel offsets on CUDA, got ", K);
  const auto w = weight_per_offset(weight);
  const auto ir = in_rows.contiguous(), orr = out_rows.contiguous();
  auto gf = at::zeros({N, Cin}, feats.options().dtype(acc_dtype(feats.scalar_type())));
  // grad_feats[in] += grad[out] @ W_o^T: W_o^T[co][ci] = w[o, ci, co] -> (ldw_q, ldw_n) = (1, Cout)
  gather_gemm_scatter(g, orr, w, /*ldw_q=*/1, /*ldw_n=*/Cout, ir, gf, ptr_host, stream);
  auto gw = at::empty({K, Cin, Cout}, feats.options());
  const auto ptr = offsets_ptr.contiguous();
  if (!launch_tensor_cores(feats.scalar_type(), Tf32Switch::conv,
                           [&]<MmaKind kind, typename T>() { wgrad_tc<kind, T>(feats, ir, g, orr, ptr, gw, stream); })) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(), "sparse_conv4d_wgrad", [&] {
      using acc = acc_t<scalar_t>;
      const auto wgrad_kernel_fn = &wgrad_kernel<scalar_t, acc>;
      SC_LAUNCH(wgrad_kernel_fn, dim3(ceil_div<int64_t>(Cout, kTile), ceil_div<int64_t>(Cin, kTile), K),
                dim3(kThreads, kThreads), 0, stream)(feats.const_data_ptr<scalar_t>(), ir.const_data_ptr<int64_t>(),
                                                    g.const_data_ptr<scalar_t>(), orr.const_data_ptr<int64_t>(),
                                                    ptr.const_data_ptr<int64_t>(), gw.mutable_data_ptr<scalar_t>(),
                                                    Cin, Cout);
      SEMCORR_LAUNCH_CHECK();
    });
  }
  auto grad_weight = gw.view({k[0], k[1], k[2], k[3], Cin, Cout}).permute({5, 4, 0, 1, 2, 3}).contiguous();
  auto grad_bias = g.to(acc_dtype(g.scalar_type())).sum(0).to(g.scalar_type());
  return {gf.to(feats.scalar_type()), grad_weight, grad_bias};
}

// The CUDA entries of semcorr::kernel_map4d, sparse_conv4d and _sparse_conv4d_backward: argument checks and
// empty inputs around the launch sequences above.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_map4d(const at::Tensor& coords,
                                                                   at::IntArrayRef kernel_size, cudaStream_t stream) {
  sparse_conv4d_host::check_coords(coords);
  const auto k = sparse_conv4d_host::kernel_sizes(kernel_size);
  const int64_t K = k[0] * k[1] * k[2] * k[3];
  const auto lopts = coords.options().dtype(at::kLong);
  if (coords.size(0) == 0) return {at::empty({0}, lopts), at::empty({0}, lopts), at::zeros({K + 1}, lopts)};
  return kernel_map(coords, k, stream);
}

inline at::Tensor sparse_conv4d(const at::Tensor& feats, const at::Tensor& weight,
                                const std::optional<at::Tensor>& bias, const at::Tensor& in_rows,
                                const at::Tensor& out_rows, const at::Tensor& offsets_ptr, cudaStream_t stream) {
  sparse_conv4d_host::check_conv_args(feats, weight, bias, in_rows, out_rows, offsets_ptr, /*allow_half=*/true);
  const int64_t N = feats.size(0), Cin = feats.size(1), Cout = weight.size(0);
  const auto ptr = sparse_conv4d_host::host_ptr(offsets_ptr, in_rows, out_rows, N);
  if (N == 0 || Cout == 0 || Cin == 0 || in_rows.size(0) == 0) {
    auto out = at::zeros({N, Cout}, feats.options());
    if (bias.has_value() && N > 0) out.add_(bias->view({1, Cout}));
    return out;
  }
  return forward(feats.contiguous(), weight, bias, in_rows, out_rows, ptr, stream);
}

inline std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_conv4d_backward(
    const at::Tensor& grad, const at::Tensor& feats, const at::Tensor& weight, const at::Tensor& in_rows,
    const at::Tensor& out_rows, const at::Tensor& offsets_ptr, cudaStream_t stream) {
  constexpr const char* op = "semcorr::_sparse_conv4d_backward";
  const auto k = sparse_conv4d_host::check_conv_args(feats, weight, std::nullopt, in_rows, out_rows, offsets_ptr,
                                                     /*allow_half=*/true, op);
  const int64_t N = feats.size(0), Cin = feats.size(1), Cout = weight.size(0);
  sparse_conv4d_host::check_grad(grad, feats, Cout, op);
  const auto ptr = sparse_conv4d_host::host_ptr(offsets_ptr, in_rows, out_rows, N, op);
  if (N == 0 || Cin == 0 || Cout == 0) {
    return {at::zeros_like(feats), at::zeros_like(weight), N == 0 ? at::zeros({Cout}, feats.options()) : grad.sum(0)};
  }
  return backward(grad.contiguous(), feats.contiguous(), weight, in_rows, out_rows, offsets_ptr, ptr, k, stream);
}

}  // namespace sparse_conv4d_launch
}  // namespace semcorr
