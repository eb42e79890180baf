// patchmatch_select's CUDA entry (csrc/patchmatch_select/patchmatch_select_launch.h) run on CPU tensors under
// the host emulator.
#include "emu/emu_registry.h"
#include "patchmatch_select/patchmatch_select_launch.h"

SC_EMU_BINDINGS(patchmatch_select) {
  using namespace semcorr::patchmatch_select_launch;
  using sc_emu_bind::on_host;
  m.def("patchmatch_select", on_host<&patchmatch_select>(), "emulated CUDA patchmatch_select");
}
