// corr4d: dense 4D correlation of two feature maps (NC-Net FeatureCorrelation + FeatureL2Norm, HPF
// appearance similarity, SFNet matching layer).
//
//   src   (B, C, Hs, Ws)  source features, float32/float64 (CPU), + float16/bfloat16 (CUDA)
//   tgt   (B, C, Ht, Wt)  target features, same dtype and device
//   normalize             divide each C-vector by sqrt(sum_c f^2 + eps)
//   relu                  clamp the correlation at 0
//   power                 raise to this power after relu (power != 1 requires relu)
//   returns out (B, Hs, Ws, Ht, Wt), out[b,i,j,k,l] = epilogue(<src[b,:,i,j], tgt[b,:,k,l]>)
//
// _corr4d_backward(grad, src, tgt, out, ...) -> (grad_src, grad_tgt): grad and out are (B, Hs, Ws, Ht, Wt).
#pragma once
#include <ATen/core/Tensor.h>

#include <tuple>

namespace semcorr {

at::Tensor corr4d_cpu(const at::Tensor& src, const at::Tensor& tgt, bool normalize, bool relu, double power,
                      double eps);
std::tuple<at::Tensor, at::Tensor> corr4d_backward_cpu(const at::Tensor& grad, const at::Tensor& src,
                                                       const at::Tensor& tgt, const at::Tensor& out,
                                                       bool normalize, bool relu, double power, double eps);
#ifdef WITH_CUDA
at::Tensor corr4d_cuda(const at::Tensor& src, const at::Tensor& tgt, bool normalize, bool relu, double power,
                       double eps);
std::tuple<at::Tensor, at::Tensor> corr4d_backward_cuda(const at::Tensor& grad, const at::Tensor& src,
                                                        const at::Tensor& tgt, const at::Tensor& out,
                                                        bool normalize, bool relu, double power, double eps);
#endif

}  // namespace semcorr
