// CUDA glue of corr4d_topk: the entries of corr4d_topk_launch.h (checks, empty inputs, launch sequence; shared
// with the host emulator) under the device guard of `src` with the current stream (common/cuda_entry.h).
#include <torch/library.h>

#include "common/cuda_entry.h"
#include "corr4d_topk/corr4d_topk_launch.h"

namespace semcorr {

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("corr4d_topk", cuda_entry<&corr4d_topk_launch::corr4d_topk, 0>);
  m.impl("_corr4d_topk_backward", cuda_entry<&corr4d_topk_launch::corr4d_topk_backward, 1>);
}

}  // namespace semcorr
