// CUDA glue of conv4d: the entries of conv4d_launch.h (checks, empty inputs, launch sequence; shared with the host
// emulator) under the device guard of `x` with the current stream (common/cuda_entry.h); the kernels are in
// conv4d_kernel.cuh and conv4d_tc_kernel.cuh.
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "conv4d/conv4d_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("conv4d", cuda_entry<&conv4d_launch::conv4d, 0>);
  m.impl("_conv4d_backward", cuda_entry<&conv4d_launch::conv4d_backward, 1>);
}

}  // namespace semcorr
