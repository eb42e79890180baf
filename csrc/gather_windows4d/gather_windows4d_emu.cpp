// The CUDA entries of gather_windows4d, gather_windows4d_points and gather_windows4d_linear
// (csrc/gather_windows4d/gather_windows4d_launch.h) run on CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "gather_windows4d/gather_windows4d_launch.h"

SC_EMU_BINDINGS(gather_windows4d) {
  using namespace semcorr::gather_windows4d_launch;
  using sc_emu_bind::on_host;
  m.def("gather_windows4d", on_host<&gather_windows4d>(), "emulated CUDA gather_windows4d forward");
  m.def("gather_windows4d_backward", on_host<&gather_windows4d_backward>(), "emulated CUDA gather_windows4d backward");
  m.def("gather_windows4d_points", on_host<&gather_windows4d_points>(),
        "emulated CUDA gather_windows4d_points forward");
  m.def("gather_windows4d_points_backward", on_host<&gather_windows4d_points_backward>(),
        "emulated CUDA gather_windows4d_points backward");
  m.def("gather_windows4d_linear", on_host<&gather_windows4d_linear>(), "emulated CUDA gather_windows4d_linear",
        pybind11::arg("corr"), pybind11::arg("points"), pybind11::arg("weight"),
        pybind11::arg("bias") = pybind11::none());
}
