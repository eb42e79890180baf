// CUDA glue of hough_vote: the entries of hough_vote_launch.h (checks, empty inputs, launch sequence; shared
// with the host emulator) under the device guard of `app` with the current stream (common/cuda_entry.h); the
// kernels are in csrc/hough_common/.
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "hough_vote/hough_vote_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("hough_vote", cuda_entry<&hough_vote_launch::hough_vote, 0>);
  m.impl("_hough_vote_backward", cuda_entry<&hough_vote_launch::hough_vote_backward, 1>);
}

}  // namespace semcorr
