// kernel_soft_argmax's CUDA launch sequence run on CPU tensors under the host emulator.
#include <ATen/ops/empty.h>

#include "emu/emu_registry.h"
#include "kernel_soft_argmax/kernel_soft_argmax_host.h"
#include "kernel_soft_argmax/kernel_soft_argmax_launch.h"

namespace {

at::Tensor forward(const at::Tensor& corr, double beta, double sigma, bool normalize) {
  const auto d = semcorr::kernel_soft_argmax_host::check_args(corr, beta, sigma, /*allow_half=*/true);
  if (d.rows() == 0) return semcorr::kernel_soft_argmax_host::output_like(corr);
  return semcorr::kernel_soft_argmax_launch::forward(corr.contiguous(), beta, sigma, normalize, nullptr);
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& corr, double beta, double sigma, bool normalize) {
  const auto d = semcorr::kernel_soft_argmax_host::check_args(corr, beta, sigma, /*allow_half=*/true);
  semcorr::kernel_soft_argmax_host::check_backward_args(grad, corr);
  if (corr.numel() == 0) return at::empty(corr.sizes(), corr.options());
  (void)d;
  return semcorr::kernel_soft_argmax_launch::backward(grad.contiguous(), corr.contiguous(), beta, sigma, normalize,
                                                      nullptr);
}

}  // namespace

SC_EMU_BINDINGS(kernel_soft_argmax) {
  m.def("kernel_soft_argmax", &forward, "emulated CUDA kernel_soft_argmax forward");
  m.def("kernel_soft_argmax_backward", &backward, "emulated CUDA kernel_soft_argmax backward");
}
