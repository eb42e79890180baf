// mutual_matching's CUDA launch sequence run on CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "mutual_matching/mutual_matching_host.h"
#include "mutual_matching/mutual_matching_launch.h"

namespace {

at::Tensor forward(const at::Tensor& corr, double eps) {
  const auto d = semcorr::mutual_matching_host::check_args(corr, eps, /*allow_half=*/true);
  if (corr.numel() == 0) return at::empty_like(corr);
  return semcorr::mutual_matching_launch::forward(corr.contiguous().view({d.B, d.Ns, d.Nt}), eps, nullptr)
      .view(corr.sizes());
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& corr, double eps) {
  const auto d = semcorr::mutual_matching_host::check_args(corr, eps, /*allow_half=*/true);
  semcorr::mutual_matching_host::check_backward_args(grad, corr);
  if (corr.numel() == 0) return at::empty_like(corr);
  return semcorr::mutual_matching_launch::backward(grad.contiguous().view({d.B, d.Ns, d.Nt}),
                                                   corr.contiguous().view({d.B, d.Ns, d.Nt}), eps, nullptr)
      .view(corr.sizes());
}

}  // namespace

SC_EMU_BINDINGS(mutual_matching) {
  m.def("mutual_matching", &forward, "emulated CUDA mutual_matching forward");
  m.def("mutual_matching_backward", &backward, "emulated CUDA mutual_matching backward");
}
