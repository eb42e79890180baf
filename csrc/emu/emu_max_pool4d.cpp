// max_pool4d's CUDA launch sequence (csrc/max_pool4d/max_pool4d_launch.h) run on CPU tensors under the emulator.
#include "emu/emu_registry.h"
#include "max_pool4d/max_pool4d_launch.h"

namespace {

std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& x, std::vector<int64_t> kernel_size) {
  const auto g = semcorr::max_pool4d_host::check_args(x, kernel_size, /*allow_half=*/true);
  return semcorr::max_pool4d_launch::forward(x, g, nullptr);
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& argmax, std::vector<int64_t> x_size,
                    std::vector<int64_t> kernel_size) {
  const auto g = semcorr::max_pool4d_host::check_backward_args(grad, argmax, x_size, kernel_size, true);
  return semcorr::max_pool4d_launch::backward(grad, argmax, g, nullptr);
}

}  // namespace

SC_EMU_BINDINGS(max_pool4d) {
  m.def("max_pool4d", &forward, "emulated CUDA max_pool4d", pybind11::arg("x"), pybind11::arg("kernel_size"));
  m.def("max_pool4d_backward", &backward, "emulated CUDA max_pool4d backward", pybind11::arg("grad"),
        pybind11::arg("argmax"), pybind11::arg("x_size"), pybind11::arg("kernel_size"));
}
