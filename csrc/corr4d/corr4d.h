// corr4d: dense 4D correlation of two feature maps (NC-Net FeatureCorrelation + FeatureL2Norm, HPF
// appearance similarity, SFNet matching layer).
//
//   src   (B, C, Hs, Ws)  source features, float32/float64 (CPU), + float16/bfloat16 (CUDA)
//   tgt   (B, C, Ht, Wt)  target features, same dtype and device
//   normalize             divide each C-vector by sqrt(sum_c f^2 + eps)
//   relu                  clamp the correlation at 0
//   power                 raise to this power after relu (power != 1 requires relu)
//   out_dtype             None (the input dtype) or float32 with float16/bfloat16 inputs: the reduced inputs'
//                         products summed, finished and returned in float32 (docs/OPS.md#precision)
//   returns out (B, Hs, Ws, Ht, Wt), out[b,i,j,k,l] = epilogue(<src[b,:,i,j], tgt[b,:,k,l]>)
//
// _corr4d_backward(grad, src, tgt, out, ...) -> (grad_src, grad_tgt): grad and out are (B, Hs, Ws, Ht, Wt), in the
// inputs' dtype or float32 (a float32 out_dtype forward); the gradients have the inputs' dtype.
//
// CUDA paths of the forward GEMM (csrc/common/tensor_cores.h), on compute capability >= 8.0:
//   float16 / bfloat16 -> tensor cores, mma.sync m16n8k16 .f16 / .bf16, float32 accumulation
//   float32            -> tensor cores, mma.sync m16n8k8 .tf32 (inputs rounded to tf32, 10-bit mantissa), float32
//                         accumulation, iff torch.backends.cuda.matmul.allow_tf32 / set_float32_matmul_precision
//                         ("high" or "medium") allows TF32 (PyTorch's default: not allowed); else the SIMT kernel
//   float64, or below sm_80 -> the SIMT kernel (exact float32 / float64 arithmetic)
//   out_dtype float32 with float16 / bfloat16 inputs -> the inputs upcast to float32 and the float32 path with
//                         TF32 tensor cores whatever the switch: TF32 rounding is the identity on 16-bit values
//                         (Tf32Switch::exact_inputs), so the products are exact
// Tensor cores are the throughput path of a GEMM whose inputs are already 16-bit (or accepted as TF32 by the
// user's switch); the inverse norms are computed from the unrounded inputs in float32 on every path, and the
// epilogue (norms, relu, power) is the SIMT kernel's. The backward's GEMMs run in at::bmm (cuBLAS: tensor cores
// under the same switches); its own kernels are element-wise / reductions.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace semcorr {

at::Tensor corr4d_cpu(const at::Tensor& src, const at::Tensor& tgt, bool normalize, bool relu, double power,
                      double eps, std::optional<at::ScalarType> out_dtype);
std::tuple<at::Tensor, at::Tensor> corr4d_backward_cpu(const at::Tensor& grad, const at::Tensor& src,
                                                       const at::Tensor& tgt, const at::Tensor& out,
                                                       bool normalize, bool relu, double power, double eps);

}  // namespace semcorr
