// Launch sequence of patchmatch_select's CUDA kernel, shared by patchmatch_select_cuda.cu and the host emulator
// (patchmatch_select_emu.cpp). The launch sequence takes contiguous inputs and preallocated, non-empty outputs;
// the entry at the end checks the arguments and allocates; its callers set the device guard and the stream.
#pragma once
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#include <limits>
#include <tuple>

#include "patchmatch_select/patchmatch_select_host.h"
#include "common/launch.h"
#include "common/math.cuh"
#include "patchmatch_select/patchmatch_select_kernel.cuh"

namespace semcorr {
namespace patchmatch_select_launch {

constexpr int kThreads = 128;

inline void forward(const at::Tensor& cand, const at::Tensor& scores, const at::Tensor& valid, int64_t k,
                    at::Tensor& om, at::Tensor& os, at::Tensor& oi, cudaStream_t stream) {
  const int64_t N = cand.size(3), npix = cand.size(0) * cand.size(1) * cand.size(2);
  TORCH_CHECK(ceil_div<int64_t>(npix, kThreads) <= 2147483647LL,
              "semcorr::patchmatch_select: too many source pixels for one CUDA launch: ", npix);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, scores.scalar_type(), "patchmatch_select", [&] {
    using acc = acc_t<scalar_t>;
    const auto k_fn = &patchmatch_select_kernels::select_kernel<scalar_t, acc>;
    SC_LAUNCH(k_fn, dim3(static_cast<unsigned>(ceil_div<int64_t>(npix, kThreads))), dim3(kThreads), 0, stream)(
        cand.const_data_ptr<int64_t>(), scores.const_data_ptr<scalar_t>(), valid.const_data_ptr<bool>(), npix, N, k,
        -std::numeric_limits<acc>::infinity(), om.mutable_data_ptr<int64_t>(), os.mutable_data_ptr<scalar_t>(),
        oi.mutable_data_ptr<int64_t>());
    SEMCORR_LAUNCH_CHECK();
  });
}

// The CUDA entry of semcorr::patchmatch_select (its backward is ATen ops, patchmatch_select_backward): argument
// checks, the outputs and empty inputs around the launch sequence above.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> patchmatch_select(const at::Tensor& candidates,
                                                                        const at::Tensor& scores,
                                                                        const at::Tensor& valid, int64_t k,
                                                                        cudaStream_t stream) {
  const auto d = patchmatch_select_host::check_args(candidates, scores, valid, k, /*allow_half=*/true);
  auto [om, os, oi] = patchmatch_select_host::empty_outputs(d, candidates, scores);
  if (d.B * d.Hs * d.Ws * d.k == 0) return {om, os, oi};
  forward(candidates.contiguous(), scores.contiguous(), valid.contiguous(), k, om, os, oi, stream);
  return {om, os, oi};
}

}  // namespace patchmatch_select_launch
}  // namespace semcorr
