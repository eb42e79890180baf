// max_pool4d: NC-Net's relocalisation pooling of a 4D volume over non-overlapping blocks.
//
//   x            (B, C, H1, W1, H2, W2)   float32/float64 (CPU), + float16/bfloat16 (CUDA)
//   kernel_size  (k1, k2, k3, k4) >= 1    block = stride; trailing positions that do not fill a block are dropped
//   returns values (B, C, H1/k1, W1/k2, H2/k3, W2/k4) (floor) and
//           argmax (B, 4C, ...) int64: channel 4c + d = offset (0 <= . < k_d) along dim d of the block maximum
//   Ties: the first maximum in row-major block order; a NaN counts as the maximum (the first NaN).
//
// _max_pool4d_backward(grad, argmax, x_size, kernel_size) -> grad_x (x_size): grad routed to each maximum.
#pragma once
#include <ATen/core/Tensor.h>

#include <tuple>

namespace semcorr {

std::tuple<at::Tensor, at::Tensor> max_pool4d_cpu(const at::Tensor& x, at::IntArrayRef kernel_size);
at::Tensor max_pool4d_backward_cpu(const at::Tensor& grad, const at::Tensor& argmax, at::IntArrayRef x_size,
                                   at::IntArrayRef kernel_size);

}  // namespace semcorr
