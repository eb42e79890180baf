// kernel_soft_argmax: SFNet's kernel soft-argmax (Lee et al., CVPR 2019) over a 4D correlation volume, and the
// plain soft-argmax when the kernel is off.
//
//   corr       (B, Hs, Ws, Ht, Wt) source-major correlation; float32/float64 (CPU), + float16/bfloat16 (CUDA)
//   beta       softmax inverse temperature (SFNet: 50)
//   sigma      std of the Gaussian kernel in target grid cells (SFNet: 5); sigma <= 0 disables the kernel
//              (plain soft-argmax; the Python wrapper maps sigma=None to 0)
//   normalize  divide each source position's Ht*Wt scores by sqrt(sum s^2 + 1e-6) first (SFNet L2normalize)
//   returns out (B, Hs, Ws, 2): for each source position the expected target position (x, y) on
//   linspace(-1, 1, Wt) x linspace(-1, 1, Ht) under p = softmax(beta * g * s), where g is the Gaussian
//   centred on the discrete argmax (lowest flat index on ties; no gradient flows through it).
//
// _kernel_soft_argmax_backward(grad, corr, beta, sigma, normalize) -> grad_corr (B, Hs, Ws, Ht, Wt); grad is
// (B, Hs, Ws, 2). The probabilities are recomputed from corr, never stored.
#pragma once
#include <ATen/core/Tensor.h>

namespace semcorr {

at::Tensor kernel_soft_argmax_cpu(const at::Tensor& corr, double beta, double sigma, bool normalize);
at::Tensor kernel_soft_argmax_backward_cpu(const at::Tensor& grad, const at::Tensor& corr, double beta, double sigma,
                                           bool normalize);

}  // namespace semcorr
