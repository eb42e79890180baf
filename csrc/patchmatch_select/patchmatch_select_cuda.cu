// CUDA glue of patchmatch_select: device guard and current stream around the entry of
// patchmatch_select_launch.h (checks, empty inputs, launch sequence; shared with the host emulator). The backward
// is ATen ops (patchmatch_select_cpu.cpp, registered here for CUDA tensors too).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "patchmatch_select/patchmatch_select.h"
#include "patchmatch_select/patchmatch_select_launch.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor, at::Tensor> patchmatch_select_cuda(const at::Tensor& candidates,
                                                                      const at::Tensor& scores, const at::Tensor& valid,
                                                                      int64_t k) {
  const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(candidates));
  return patchmatch_select_launch::patchmatch_select(candidates, scores, valid, k, c10::cuda::getCurrentCUDAStream());
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("patchmatch_select", &patchmatch_select_cuda);
  m.impl("_patchmatch_select_backward", &patchmatch_select_backward);
}

}  // namespace semcorr
