// CUDA glue of gather_windows4d, gather_windows4d_points and gather_windows4d_linear: the entries of
// gather_windows4d_launch.h (checks, empty inputs, launch sequences) under the device guard of the correlation
// (of the gradient for the backwards) with the current stream (common/cuda_entry.h).
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "gather_windows4d/gather_windows4d_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("gather_windows4d", cuda_entry<&gather_windows4d_launch::gather_windows4d, 0>);
  m.impl("_gather_windows4d_backward", cuda_entry<&gather_windows4d_launch::gather_windows4d_backward, 0>);
  m.impl("gather_windows4d_points", cuda_entry<&gather_windows4d_launch::gather_windows4d_points, 0>);
  m.impl("_gather_windows4d_points_backward",
         cuda_entry<&gather_windows4d_launch::gather_windows4d_points_backward, 0>);
  m.impl("gather_windows4d_linear", cuda_entry<&gather_windows4d_launch::gather_windows4d_linear, 0>);
}

}  // namespace semcorr
