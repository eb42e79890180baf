// CUDA host glue of patchmatch_propagate: checks, device guard, current stream; the launch sequence is in
// patchmatch_propagate_launch.h (shared with the host emulator).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "patchmatch_propagate/patchmatch_propagate.h"
#include "patchmatch_propagate/patchmatch_propagate_host.h"
#include "patchmatch_propagate/patchmatch_propagate_launch.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor> patchmatch_propagate_cuda(const at::Tensor& matches, const at::Tensor& offsets,
                                                             at::IntArrayRef target_size, int64_t random_samples,
                                                             int64_t radius, int64_t seed, int64_t iteration) {
  const auto p = patchmatch_propagate_host::check_args(matches, offsets, target_size, random_samples, radius, seed,
                                                       iteration);
  auto [cand, valid] = patchmatch_propagate_host::empty_outputs(p, matches);
  if (p.B * p.Hs * p.Ws * p.N() == 0) return {cand, valid};
  const c10::cuda::CUDAGuard guard(matches.device());
  patchmatch_propagate_launch::forward(p, matches.contiguous(), offsets.contiguous(), cand, valid,
                                       c10::cuda::getCurrentCUDAStream());
  return {cand, valid};
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) { m.impl("patchmatch_propagate", &patchmatch_propagate_cuda); }

}  // namespace semcorr
