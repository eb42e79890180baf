// corr4d's CUDA entries (csrc/corr4d/corr4d_launch.h) run on CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "corr4d/corr4d_launch.h"

SC_EMU_BINDINGS(corr4d) {
  using namespace semcorr::corr4d_launch;
  using sc_emu_bind::on_host;
  m.def("corr4d", on_host<&corr4d>(), "emulated CUDA corr4d forward", pybind11::arg("src"), pybind11::arg("tgt"),
        pybind11::arg("normalize"), pybind11::arg("relu"), pybind11::arg("power"), pybind11::arg("eps"),
        pybind11::arg("out_dtype") = pybind11::none());
  m.def("corr4d_backward", on_host<&corr4d_backward>(), "emulated CUDA corr4d backward");
}
