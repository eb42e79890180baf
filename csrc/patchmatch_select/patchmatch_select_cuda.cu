// CUDA host glue of patchmatch_select: checks, device guard, current stream; the launch sequence is in
// patchmatch_select_launch.h (shared with the host emulator). The backward is ATen ops (patchmatch_select_host.h).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "patchmatch_select/patchmatch_select.h"
#include "patchmatch_select/patchmatch_select_host.h"
#include "patchmatch_select/patchmatch_select_launch.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor, at::Tensor> patchmatch_select_cuda(const at::Tensor& candidates,
                                                                      const at::Tensor& scores,
                                                                      const at::Tensor& valid, int64_t k) {
  const auto d = patchmatch_select_host::check_args(candidates, scores, valid, k, /*allow_half=*/true);
  auto [om, os, oi] = patchmatch_select_host::empty_outputs(d, candidates, scores);
  if (d.B * d.Hs * d.Ws * d.k == 0) return {om, os, oi};
  const c10::cuda::CUDAGuard guard(candidates.device());
  patchmatch_select_launch::forward(candidates.contiguous(), scores.contiguous(), valid.contiguous(), k, om, os, oi,
                                    c10::cuda::getCurrentCUDAStream());
  return {om, os, oi};
}

TORCH_LIBRARY_IMPL(semcorr, CUDA, m) {
  m.impl("patchmatch_select", &patchmatch_select_cuda);
  m.impl("_patchmatch_select_backward", &patchmatch_select_backward);
}

}  // namespace semcorr
