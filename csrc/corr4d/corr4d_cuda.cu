// CUDA glue of corr4d: the entries of corr4d_launch.h (checks, empty inputs, launch sequence; shared with the host
// emulator) under the device guard of `src` with the current stream (common/cuda_entry.h); the kernels are in
// corr4d_kernel.cuh and corr4d_tc_kernel.cuh.
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "corr4d/corr4d_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("corr4d", cuda_entry<&corr4d_launch::corr4d, 0>);
  m.impl("_corr4d_backward", cuda_entry<&corr4d_launch::corr4d_backward, 1>);
}

}  // namespace semcorr
