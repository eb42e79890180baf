// CUDA glue of hough_match: the entries of hough_match_launch.h (checks, empty inputs, launch sequence; shared
// with the host emulator) under the device guard of `app` with the current stream (common/cuda_entry.h); the
// kernels are in csrc/hough_common/.
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "hough_match/hough_match_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("hough_match", cuda_entry<&hough_match_launch::hough_match, 0>);
  m.impl("_hough_match_backward", cuda_entry<&hough_match_launch::hough_match_backward, 1>);
}

}  // namespace semcorr
