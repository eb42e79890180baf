// Submanifold sparse 4D convolution (Sparse NC-Net's neighbourhood consensus without MinkowskiEngine).
//
// kernel_map4d(coords, kernel_size) -> (in_rows, out_rows, offsets_ptr)
//   coords       (N, 5) int32/int64, rows (b, i, j, k, l), all >= 0, unique rows
//   kernel_size  1 or 4 odd positive ints (k1, k2, k3, k4)
//   K = k1*k2*k3*k4 kernel offsets, enumerated in weight order o = ((a*k2 + b)*k3 + c)*k4 + d, the offset
//   being delta_o = (a - k1/2, b - k2/2, c - k3/2, d - k4/2) (the batch never changes).
//   For each o, the pairs (in_rows[p], out_rows[p]) for p in [offsets_ptr[o], offsets_ptr[o+1]) list every
//   output row n whose neighbour coords[n] + delta_o is present (at row in_rows[p]), in increasing n.
//   int64 outputs; offsets_ptr has K + 1 entries (offsets_ptr[0] = 0).
//
// sparse_conv4d(feats, weight, bias, in_rows, out_rows, offsets_ptr) -> out (N, Cout)
//   feats (N, Cin), weight (Cout, Cin, k1, k2, k3, k4), bias (Cout,) or None.
//   out[n] = bias + sum_o sum over pairs (m, n) of offset o: weight[:, :, a, b, c, d] @ feats[m]
//   (cross-correlation, as conv3d / conv4d with "same" zero padding on a dense coordinate set).
//
// _sparse_conv4d_backward(grad, feats, weight, in_rows, out_rows, offsets_ptr)
//   -> (grad_feats (N, Cin), grad_weight like weight, grad_bias (Cout,)). Deterministic on every backend:
//   within one offset every output row and every input row occurs at most once, so offsets are processed one
//   after the other and each pair owns its rows (no atomics).
//
// CUDA paths of the gather-GEMM-scatter (forward, feature gradient) and the weight gradient's GEMM, as conv4d's
// (csrc/common/tensor_cores.h): on compute capability >= 8.0 float16 / bfloat16 take tensor cores (mma.sync
// m16n8k16, float32 accumulation), float32 takes TF32 tensor cores (m16n8k8) iff torch.backends.cudnn.allow_tf32;
// otherwise (and float64) the SIMT kernels.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace semcorr {

std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_map4d_cpu(const at::Tensor& coords, at::IntArrayRef kernel_size);
at::Tensor sparse_conv4d_cpu(const at::Tensor& feats, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                             const at::Tensor& in_rows, const at::Tensor& out_rows, const at::Tensor& offsets_ptr);
std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_conv4d_backward_cpu(
    const at::Tensor& grad, const at::Tensor& feats, const at::Tensor& weight, const at::Tensor& in_rows,
    const at::Tensor& out_rows, const at::Tensor& offsets_ptr);

}  // namespace semcorr
