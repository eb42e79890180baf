// mutual_matching's CUDA entries (csrc/mutual_matching/mutual_matching_launch.h) run on CPU tensors under the
// host emulator.
#include "emu/emu_registry.h"
#include "mutual_matching/mutual_matching_launch.h"

SC_EMU_BINDINGS(mutual_matching) {
  using namespace semcorr::mutual_matching_launch;
  using sc_emu_bind::on_host;
  m.def("mutual_matching", on_host<&mutual_matching>(), "emulated CUDA mutual_matching forward");
  m.def("mutual_matching_backward", on_host<&mutual_matching_backward>(), "emulated CUDA mutual_matching backward");
}
