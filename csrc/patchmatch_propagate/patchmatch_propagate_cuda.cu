// CUDA glue of patchmatch_propagate: the entry of patchmatch_propagate_launch.h (checks, empty inputs, launch
// sequence; shared with the host emulator) under the device guard of `matches` with the current stream
// (common/cuda_entry.h).
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "patchmatch_propagate/patchmatch_propagate_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("patchmatch_propagate", cuda_entry<&patchmatch_propagate_launch::patchmatch_propagate, 0>);
}

}  // namespace semcorr
