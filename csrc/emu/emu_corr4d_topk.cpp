// corr4d_topk's CUDA launch sequence (csrc/corr4d_topk/corr4d_topk_launch.h) run on CPU tensors under the
// host emulator.
#include "emu/emu_registry.h"
#include "corr4d_topk/corr4d_topk_launch.h"

namespace {

std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& src, const at::Tensor& tgt, int64_t k, bool normalize,
                                           double eps) {
  semcorr::corr4d_topk_host::check_args(src, tgt, k, eps, /*cuda_kernel=*/true);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  if (B * Ns * k == 0 || C == 0) return semcorr::corr4d_topk_host::trivial_output(src, k);
  auto [v, i] = semcorr::corr4d_topk_launch::forward(src.contiguous().view({B, C, Ns}),
                                                     tgt.contiguous().view({B, C, Nt}), k, normalize, eps, nullptr);
  return {v.view({B, src.size(2), src.size(3), k}), i.view({B, src.size(2), src.size(3), k})};
}

std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& src, const at::Tensor& tgt,
                                            const at::Tensor& values, const at::Tensor& indices, bool normalize,
                                            double eps) {
  semcorr::corr4d_topk_host::check_args(src, tgt, values.dim() == 4 ? values.size(3) : 0, eps, /*cuda_kernel=*/true,
                                        "semcorr::_corr4d_topk_backward");
  semcorr::corr4d_topk_host::check_backward_args(grad, src, tgt, values, indices);
  const int64_t B = src.size(0), C = src.size(1), Ns = src.size(2) * src.size(3), Nt = tgt.size(2) * tgt.size(3);
  const int64_t k = values.size(3);
  if (B * Ns * k * C == 0) return {at::zeros_like(src), at::zeros_like(tgt)};
  auto [gs, gt] = semcorr::corr4d_topk_launch::backward(
      grad.contiguous().view({B, Ns, k}), values.contiguous().view({B, Ns, k}), indices.contiguous().view({B, Ns, k}),
      src.contiguous().view({B, C, Ns}), tgt.contiguous().view({B, C, Nt}), normalize, eps, nullptr);
  return {gs.view(src.sizes()), gt.view(tgt.sizes())};
}

}  // namespace

SC_EMU_BINDINGS(corr4d_topk) {
  m.def("corr4d_topk", &forward, "emulated CUDA corr4d_topk forward", pybind11::arg("src"), pybind11::arg("tgt"),
        pybind11::arg("k"), pybind11::arg("normalize"), pybind11::arg("eps"));
  m.def("corr4d_topk_backward", &backward, "emulated CUDA corr4d_topk backward");
}
