// max_pool4d's CUDA entries (csrc/max_pool4d/max_pool4d_launch.h) run on CPU tensors under the emulator.
#include "emu/emu_registry.h"
#include "max_pool4d/max_pool4d_launch.h"

SC_EMU_BINDINGS(max_pool4d) {
  using namespace semcorr::max_pool4d_launch;
  using sc_emu_bind::on_host;
  m.def("max_pool4d", on_host<&max_pool4d>(), "emulated CUDA max_pool4d", pybind11::arg("x"),
        pybind11::arg("kernel_size"));
  m.def("max_pool4d_backward", on_host<&max_pool4d_backward>(), "emulated CUDA max_pool4d backward",
        pybind11::arg("grad"), pybind11::arg("argmax"), pybind11::arg("x_size"), pybind11::arg("kernel_size"));
}
