// CUDA glue of kernel_map4d and sparse_conv4d: the entries of sparse_conv4d_launch.h (checks, empty inputs,
// launch sequences; shared with the host emulator) under the device guard of `coords` / `feats` with the current
// stream (common/cuda_entry.h).
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "sparse_conv4d/sparse_conv4d_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("kernel_map4d", cuda_entry<&sparse_conv4d_launch::kernel_map4d, 0>);
  m.impl("sparse_conv4d", cuda_entry<&sparse_conv4d_launch::sparse_conv4d, 0>);
  m.impl("_sparse_conv4d_backward", cuda_entry<&sparse_conv4d_launch::sparse_conv4d_backward, 1>);
}

}  // namespace semcorr
