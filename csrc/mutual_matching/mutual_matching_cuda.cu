// CUDA glue of mutual_matching: the entries of mutual_matching_launch.h (checks, empty inputs, launch sequence;
// shared with the host emulator) under the device guard of `corr` with the current stream (common/cuda_entry.h).
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "mutual_matching/mutual_matching_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("mutual_matching", cuda_entry<&mutual_matching_launch::mutual_matching, 0>);
  m.impl("_mutual_matching_backward", cuda_entry<&mutual_matching_launch::mutual_matching_backward, 1>);
}

}  // namespace semcorr
