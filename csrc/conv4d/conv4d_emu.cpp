// conv4d's CUDA entries (csrc/conv4d/conv4d_launch.h) run on CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "conv4d/conv4d_launch.h"

SC_EMU_BINDINGS(conv4d) {
  using namespace semcorr::conv4d_launch;
  using sc_emu_bind::on_host;
  m.def("conv4d", on_host<&conv4d>(), "emulated CUDA conv4d forward", pybind11::arg("x"), pybind11::arg("weight"),
        pybind11::arg("bias"), pybind11::arg("padding"), pybind11::arg("out_dtype") = pybind11::none());
  m.def("conv4d_backward", on_host<&conv4d_backward>(), "emulated CUDA conv4d backward", pybind11::arg("grad"),
        pybind11::arg("x"), pybind11::arg("weight"), pybind11::arg("padding"), pybind11::arg("output_mask"));
}
