// CUDA host glue of kernel_map4d and sparse_conv4d: argument checks, device guard, current stream, empty
// early-returns; the launch sequences are in sparse_conv4d_launch.h (shared with the host emulator).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "sparse_conv4d/sparse_conv4d.h"
#include "sparse_conv4d/sparse_conv4d_launch.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_map4d_cuda(const at::Tensor& coords, at::IntArrayRef kernel_size) {
  sparse_conv4d_host::check_coords(coords);
  const auto k = sparse_conv4d_host::kernel_sizes(kernel_size);
  const int64_t K = k[0] * k[1] * k[2] * k[3];
  const auto lopts = coords.options().dtype(at::kLong);
  if (coords.size(0) == 0) return {at::empty({0}, lopts), at::empty({0}, lopts), at::zeros({K + 1}, lopts)};
  const c10::cuda::CUDAGuard guard(coords.device());
  return sparse_conv4d_launch::kernel_map(coords, k, c10::cuda::getCurrentCUDAStream());
}

at::Tensor sparse_conv4d_cuda(const at::Tensor& feats, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                              const at::Tensor& in_rows, const at::Tensor& out_rows, const at::Tensor& offsets_ptr) {
  sparse_conv4d_host::check_conv_args(feats, weight, bias, in_rows, out_rows, offsets_ptr, /*allow_half=*/true);
  const int64_t N = feats.size(0), Cin = feats.size(1), Cout = weight.size(0);
  const c10::cuda::CUDAGuard guard(feats.device());
  const auto ptr = sparse_conv4d_host::host_ptr(offsets_ptr, in_rows, out_rows, N);
  if (N == 0 || Cout == 0 || Cin == 0 || in_rows.size(0) == 0) {
    auto out = at::zeros({N, Cout}, feats.options());
    if (bias.has_value() && N > 0) out.add_(bias->view({1, Cout}));
    return out;
  }
  return sparse_conv4d_launch::forward(feats.contiguous(), weight, bias, in_rows, out_rows, ptr,
                                       c10::cuda::getCurrentCUDAStream());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_conv4d_backward_cuda(
    const at::Tensor& grad, const at::Tensor& feats, const at::Tensor& weight, const at::Tensor& in_rows,
    const at::Tensor& out_rows, const at::Tensor& offsets_ptr) {
  constexpr const char* op = "semcorr::_sparse_conv4d_backward";
  const auto k = sparse_conv4d_host::check_conv_args(feats, weight, std::nullopt, in_rows, out_rows, offsets_ptr,
                                                     /*allow_half=*/true, op);
  const int64_t N = feats.size(0), Cin = feats.size(1), Cout = weight.size(0);
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == N && grad.size(1) == Cout, op, ": `grad` must have shape (N, Cout) = (",
              N, ", ", Cout, "), got ", shape_str(grad));
  check_same_dtype(grad, feats, op, "grad", "feats");
  check_same_device(grad, feats, op, "grad", "feats");
  const c10::cuda::CUDAGuard guard(feats.device());
  const auto ptr = sparse_conv4d_host::host_ptr(offsets_ptr, in_rows, out_rows, N, op);
  if (N == 0 || Cin == 0 || Cout == 0) {
    return {at::zeros_like(feats), at::zeros_like(weight),
            N == 0 ? at::zeros({Cout}, feats.options()) : grad.sum(0)};
  }
  return sparse_conv4d_launch::backward(grad.contiguous(), feats.contiguous(), weight, in_rows, out_rows, offsets_ptr,
                                        ptr, k, c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("kernel_map4d", &kernel_map4d_cuda);
  m.impl("sparse_conv4d", &sparse_conv4d_cuda);
  m.impl("_sparse_conv4d_backward", &sparse_conv4d_backward_cuda);
}

}  // namespace semcorr
