// Launch sequence of patchmatch_propagate's CUDA kernel, shared by patchmatch_propagate_cuda.cu and the host
// emulator (patchmatch_propagate_emu.cpp). The launch sequence takes contiguous inputs and preallocated, non-empty
// outputs; the entry at the end checks the arguments and allocates; its callers set the device guard and stream.
#pragma once
#include <ATen/core/Tensor.h>

#include <tuple>

#include "patchmatch_propagate/patchmatch_propagate_host.h"
#include "common/launch.h"
#include "common/math.cuh"
#include "patchmatch_propagate/patchmatch_propagate_kernel.cuh"

namespace semcorr {
namespace patchmatch_propagate_launch {

constexpr int kThreads = 128;

inline void forward(const pm::Params& p, const at::Tensor& matches, const at::Tensor& offsets, at::Tensor& cand,
                    at::Tensor& valid, cudaStream_t stream) {
  const int64_t npix = p.B * p.Hs * p.Ws;
  TORCH_CHECK(ceil_div<int64_t>(npix, kThreads) <= 2147483647LL,
              "semcorr::patchmatch_propagate: too many source pixels for one CUDA launch: ", npix);
  const auto k_fn = &patchmatch_propagate_kernels::propagate_kernel;
  SC_LAUNCH(k_fn, dim3(static_cast<unsigned>(ceil_div<int64_t>(npix, kThreads))), dim3(kThreads), 0, stream)(
      p, matches.const_data_ptr<int64_t>(), offsets.const_data_ptr<int64_t>(), cand.mutable_data_ptr<int64_t>(),
      valid.mutable_data_ptr<bool>());
  SEMCORR_LAUNCH_CHECK();
}

// The CUDA entry of semcorr::patchmatch_propagate: argument checks, the outputs and empty inputs around the launch
// sequence above.
inline std::tuple<at::Tensor, at::Tensor> patchmatch_propagate(const at::Tensor& matches, const at::Tensor& offsets,
                                                               at::IntArrayRef target_size, int64_t random_samples,
                                                               int64_t radius, int64_t seed, int64_t iteration,
                                                               cudaStream_t stream) {
  const auto p = patchmatch_propagate_host::check_args(matches, offsets, target_size, random_samples, radius, seed,
                                                       iteration);
  auto [cand, valid] = patchmatch_propagate_host::empty_outputs(p, matches);
  if (p.B * p.Hs * p.Ws * p.N() == 0) return {cand, valid};
  forward(p, matches.contiguous(), offsets.contiguous(), cand, valid, stream);
  return {cand, valid};
}

}  // namespace patchmatch_propagate_launch
}  // namespace semcorr
