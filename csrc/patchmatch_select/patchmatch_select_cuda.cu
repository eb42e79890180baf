// CUDA glue of patchmatch_select: the entry of patchmatch_select_launch.h (checks, empty inputs, launch
// sequence; shared with the host emulator) under the device guard of `candidates` with the current stream
// (common/cuda_entry.h). The backward is ATen ops (patchmatch_select_cpu.cpp, registered here for CUDA tensors
// too).
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "patchmatch_select/patchmatch_select.h"
#include "patchmatch_select/patchmatch_select_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("patchmatch_select", cuda_entry<&patchmatch_select_launch::patchmatch_select, 0>);
  m.impl("_patchmatch_select_backward", &patchmatch_select_backward);
}

}  // namespace semcorr
