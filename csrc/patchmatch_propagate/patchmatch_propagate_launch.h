// Launch sequence of patchmatch_propagate's CUDA kernel, shared by patchmatch_propagate_cuda.cu and the host
// emulator (csrc/emu/emu_patchmatch.cpp). Inputs contiguous; outputs preallocated and non-empty.
#pragma once
#include <ATen/core/Tensor.h>

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

}  // namespace patchmatch_propagate_launch
}  // namespace semcorr
