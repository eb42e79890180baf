// semcorr_ext._emu: the CUDA kernels of csrc/*/*_kernel.cuh compiled as host code against
// csrc/common/simt.h, for tests on machines without a GPU. Bindings live in csrc/emu/emu_<op>.cpp.
#include "emu/emu_registry.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Host emulation of semcorr_ext's CUDA kernels (tests only; slow).";
  for (auto bind : ::sc_emu_bind::binders()) bind(m);
}
