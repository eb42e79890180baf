// conv4d: dense 4D convolution (cross-correlation, stride 1, zero padding) of a 4D correlation volume, the
// building block of neighbourhood consensus (NC-Net Conv4d, ANC-Net's non-isotropic 3x3x5x5 kernels).
//
//   x       (B, Cin, H1, W1, H2, W2)          float32/float64 (CPU), + float16/bfloat16 (CUDA)
//   weight  (Cout, Cin, k1, k2, k3, k4)       any kernel size >= 1 per dim (odd for "same" output)
//   bias    (Cout,) or undefined
//   padding (p1, p2, p3, p4) >= 0             zeros outside the volume
//   returns (B, Cout, H1', W1', H2', W2'), Hd' = Hd + 2 pd - kd + 1, and
//     out[b,o,i1,i2,i3,i4] = bias[o] + sum_{c,a1..a4} weight[o,c,a1..a4] * x[b,c,i1+a1-p1,...,i4+a4-p4]
//   An input with a zero-sized dim gives an output with that dim 0.
//   out_dtype: None (the input dtype) or float32 with float16/bfloat16 inputs: the reduced inputs' products summed
//   and returned in float32 (docs/OPS.md#precision).
//
// _conv4d_backward(grad, x, weight, padding, output_mask) -> (grad_x, grad_weight, grad_bias); grad is
// (B, Cout, H1', W1', H2', W2'), in x's dtype or float32 (a float32 out_dtype forward; the backward then runs in x's
// dtype). Entries whose output_mask is false are returned as zeros.
//
// CUDA paths (csrc/common/tensor_cores.h), for the forward's implicit GEMM and both GEMMs of the backward (the input
// gradient runs through the forward kernel, the weight gradient has its own), on compute capability >= 8.0:
//   float16 / bfloat16 -> tensor cores, mma.sync m16n8k16 .f16 / .bf16, float32 accumulation
//   float32            -> tensor cores, mma.sync m16n8k8 .tf32 (operands rounded to tf32), float32 accumulation,
//                         iff torch.backends.cudnn.allow_tf32 (PyTorch's default: True, as its conv3d under cuDNN);
//                         else the SIMT kernel
//   float64, or below sm_80 -> the SIMT kernels (exact float32 / float64 arithmetic)
//   out_dtype float32 with float16 / bfloat16 inputs (forward) -> x, weight and bias upcast to float32 and the
//                         float32 path with TF32 tensor cores whatever the switch: TF32 rounding is the identity on
//                         16-bit values (Tf32Switch::exact_inputs), so the products are exact
#pragma once
#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <tuple>

namespace semcorr {

at::Tensor conv4d_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                      at::IntArrayRef padding, std::optional<at::ScalarType> out_dtype);
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv4d_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                                   const at::Tensor& weight,
                                                                   at::IntArrayRef padding,
                                                                   std::array<bool, 3> output_mask);

}  // namespace semcorr
