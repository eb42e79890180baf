// CUDA glue of max_pool4d: the entries of max_pool4d_launch.h under the device guard of their first tensor
// (x, grad) with the current stream (common/cuda_entry.h).
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "max_pool4d/max_pool4d_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("max_pool4d", cuda_entry<&max_pool4d_launch::max_pool4d, 0>);
  m.impl("_max_pool4d_backward", cuda_entry<&max_pool4d_launch::max_pool4d_backward, 0>);
}

}  // namespace semcorr
