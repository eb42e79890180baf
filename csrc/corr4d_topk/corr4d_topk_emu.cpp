// corr4d_topk's CUDA entries (csrc/corr4d_topk/corr4d_topk_launch.h) run on CPU tensors under the host
// emulator.
#include "emu/emu_registry.h"
#include "corr4d_topk/corr4d_topk_launch.h"

SC_EMU_BINDINGS(corr4d_topk) {
  using namespace semcorr::corr4d_topk_launch;
  using sc_emu_bind::on_host;
  m.def("corr4d_topk", on_host<&corr4d_topk>(), "emulated CUDA corr4d_topk forward", pybind11::arg("src"),
        pybind11::arg("tgt"), pybind11::arg("k"), pybind11::arg("normalize"), pybind11::arg("eps"));
  m.def("corr4d_topk_backward", on_host<&corr4d_topk_backward>(), "emulated CUDA corr4d_topk backward");
}
