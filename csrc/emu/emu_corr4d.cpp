// corr4d's CUDA launch sequence (csrc/corr4d/corr4d_launch.h) run on CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "corr4d/corr4d_launch.h"

namespace {

at::Tensor forward(const at::Tensor& src, const at::Tensor& tgt, bool normalize, bool relu, double power,
                   double eps) {
  semcorr::corr4d_host::check_args(src, tgt, relu, power, eps, /*allow_half=*/true);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * Nt == 0) return semcorr::corr4d_host::empty_output(src, tgt);
  const auto out = semcorr::corr4d_launch::forward(src.contiguous().view({B, C, Ns}),
                                                   tgt.contiguous().view({B, C, Nt}), normalize, relu, power, eps,
                                                   nullptr);
  return out.view({B, src.size(2), src.size(3), tgt.size(2), tgt.size(3)});
}

std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& src, const at::Tensor& tgt,
                                            const at::Tensor& out, bool normalize, bool relu, double power,
                                            double eps) {
  semcorr::corr4d_host::check_args(src, tgt, relu, power, eps, /*allow_half=*/true);
  semcorr::corr4d_host::check_backward_args(grad, src, tgt, out);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * Nt * C == 0) return {at::zeros_like(src), at::zeros_like(tgt)};
  auto [gs, gt] = semcorr::corr4d_launch::backward(
      grad.contiguous().view({B, Ns, Nt}), out.contiguous().view({B, Ns, Nt}), src.contiguous().view({B, C, Ns}),
      tgt.contiguous().view({B, C, Nt}), normalize, relu, power, eps, nullptr);
  return {gs.view(src.sizes()), gt.view(tgt.sizes())};
}

}  // namespace

SC_EMU_BINDINGS(corr4d) {
  m.def("corr4d", &forward, "emulated CUDA corr4d forward", pybind11::arg("src"), pybind11::arg("tgt"),
        pybind11::arg("normalize"), pybind11::arg("relu"), pybind11::arg("power"), pybind11::arg("eps"));
  m.def("corr4d_backward", &backward, "emulated CUDA corr4d backward");
}
