// CUDA glue of patchmatch_propagate: device guard and current stream around the entry of
// patchmatch_propagate_launch.h (checks, empty inputs, launch sequence; shared with the host emulator).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "patchmatch_propagate/patchmatch_propagate.h"
#include "patchmatch_propagate/patchmatch_propagate_launch.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor> patchmatch_propagate_cuda(const at::Tensor& matches, const at::Tensor& offsets,
                                                             at::IntArrayRef target_size, int64_t random_samples,
                                                             int64_t radius, int64_t seed, int64_t iteration) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(matches));
  return patchmatch_propagate_launch::patchmatch_propagate(matches, offsets, target_size, random_samples, radius, seed,
                                                           iteration, c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) { m.impl("patchmatch_propagate", &patchmatch_propagate_cuda); }

}  // namespace semcorr
