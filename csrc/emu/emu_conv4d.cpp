// conv4d's CUDA launch sequence (csrc/conv4d/conv4d_launch.h) run on CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "conv4d/conv4d_launch.h"

namespace {

at::Tensor forward(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                   std::vector<int64_t> padding) {
  const auto g = semcorr::conv4d_host::check_args(x, weight, bias, padding, /*allow_half=*/true);
  return semcorr::conv4d_launch::forward(x.contiguous(), weight.contiguous(), bias, g, nullptr);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& x,
                                                        const at::Tensor& weight, std::vector<int64_t> padding,
                                                        std::array<bool, 3> mask) {
  const auto g = semcorr::conv4d_host::check_backward_args(grad, x, weight, padding, /*allow_half=*/true);
  return semcorr::conv4d_launch::backward(grad.contiguous(), x.contiguous(), weight.contiguous(), g, mask, nullptr);
}

}  // namespace

SC_EMU_BINDINGS(conv4d) {
  m.def("conv4d", &forward, "emulated CUDA conv4d forward", pybind11::arg("x"), pybind11::arg("weight"),
        pybind11::arg("bias"), pybind11::arg("padding"));
  m.def("conv4d_backward", &backward, "emulated CUDA conv4d backward", pybind11::arg("grad"), pybind11::arg("x"),
        pybind11::arg("weight"), pybind11::arg("padding"), pybind11::arg("output_mask"));
}
