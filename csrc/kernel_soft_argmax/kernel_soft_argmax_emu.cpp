// kernel_soft_argmax's CUDA entries (csrc/kernel_soft_argmax/kernel_soft_argmax_launch.h) run on CPU tensors
// under the host emulator.
#include "emu/emu_registry.h"
#include "kernel_soft_argmax/kernel_soft_argmax_launch.h"

SC_EMU_BINDINGS(kernel_soft_argmax) {
  using namespace semcorr::kernel_soft_argmax_launch;
  using sc_emu_bind::on_host;
  m.def("kernel_soft_argmax", on_host<&kernel_soft_argmax>(), "emulated CUDA kernel_soft_argmax forward");
  m.def("kernel_soft_argmax_backward", on_host<&kernel_soft_argmax_backward>(),
        "emulated CUDA kernel_soft_argmax backward");
}
