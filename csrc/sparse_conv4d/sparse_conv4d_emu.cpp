// kernel_map4d's and sparse_conv4d's CUDA entries (csrc/sparse_conv4d/sparse_conv4d_launch.h) run on CPU
// tensors under the host emulator.
#include "emu/emu_registry.h"
#include "sparse_conv4d/sparse_conv4d_launch.h"

SC_EMU_BINDINGS(sparse_conv4d) {
  using namespace semcorr::sparse_conv4d_launch;
  using sc_emu_bind::on_host;
  m.def("kernel_map4d", on_host<&kernel_map4d>(), "emulated CUDA kernel_map4d", pybind11::arg("coords"),
        pybind11::arg("kernel_size"));
  m.def("sparse_conv4d", on_host<&sparse_conv4d>(), "emulated CUDA sparse_conv4d forward", pybind11::arg("feats"),
        pybind11::arg("weight"), pybind11::arg("bias"), pybind11::arg("in_rows"), pybind11::arg("out_rows"),
        pybind11::arg("offsets_ptr"));
  m.def("sparse_conv4d_backward", on_host<&sparse_conv4d_backward>(), "emulated CUDA sparse_conv4d backward");
}
