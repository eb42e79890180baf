// patchmatch_propagate's CUDA entry (csrc/patchmatch_propagate/patchmatch_propagate_launch.h) run on CPU
// tensors under the host emulator.
#include "emu/emu_registry.h"
#include "patchmatch_propagate/patchmatch_propagate_launch.h"

SC_EMU_BINDINGS(patchmatch_propagate) {
  using namespace semcorr::patchmatch_propagate_launch;
  using sc_emu_bind::on_host;
  m.def("patchmatch_propagate", on_host<&patchmatch_propagate>(), "emulated CUDA patchmatch_propagate");
}
