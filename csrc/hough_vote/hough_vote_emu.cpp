// hough_vote's CUDA entries (csrc/hough_vote/hough_vote_launch.h) run on CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "hough_vote/hough_vote_launch.h"

SC_EMU_BINDINGS(hough_vote) {
  using namespace semcorr::hough_vote_launch;
  using sc_emu_bind::on_host;
  m.def("hough_vote", on_host<&hough_vote>(), "emulated CUDA hough_vote forward", pybind11::arg("app"),
        pybind11::arg("bins"), pybind11::arg("nbins"), pybind11::arg("smooth_kernel") = pybind11::none());
  m.def("hough_vote_backward", on_host<&hough_vote_backward>(), "emulated CUDA hough_vote backward");
}
