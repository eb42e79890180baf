// CUDA glue of kernel_soft_argmax: the entries of kernel_soft_argmax_launch.h (checks, empty inputs, launch
// sequence; shared with the host emulator) under the device guard of `corr` with the current stream
// (common/cuda_entry.h).
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "kernel_soft_argmax/kernel_soft_argmax_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("kernel_soft_argmax", cuda_entry<&kernel_soft_argmax_launch::kernel_soft_argmax, 0>);
  m.impl("_kernel_soft_argmax_backward", cuda_entry<&kernel_soft_argmax_launch::kernel_soft_argmax_backward, 1>);
}

}  // namespace semcorr
