// hough_match's CUDA entries (csrc/hough_match/hough_match_launch.h) run on CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "hough_match/hough_match_launch.h"

SC_EMU_BINDINGS(hough_match) {
  using namespace semcorr::hough_match_launch;
  using sc_emu_bind::on_host;
  m.def("hough_match", on_host<&hough_match>(), "emulated CUDA hough_match forward", pybind11::arg("app"),
        pybind11::arg("src_centers"), pybind11::arg("tgt_centers"), pybind11::arg("src_size"),
        pybind11::arg("tgt_size"), pybind11::arg("ncells"), pybind11::arg("smooth"));
  m.def("hough_match_backward", on_host<&hough_match_backward>(), "emulated CUDA hough_match backward");
}
