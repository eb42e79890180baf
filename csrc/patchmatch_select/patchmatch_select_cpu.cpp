// CPU kernel of patchmatch_select: source pixels in parallel, the shared selection loop of
// patchmatch_select_math.h per pixel. The backward (ATen ops, any device) is registered here for CPU.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>

#include "patchmatch_select/patchmatch_select.h"
#include "patchmatch_select/patchmatch_select_host.h"
#include "patchmatch_select/patchmatch_select_math.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor, at::Tensor> patchmatch_select_cpu(const at::Tensor& candidates,
                                                                     const at::Tensor& scores,
                                                                     const at::Tensor& valid, int64_t k) {
  const auto d = patchmatch_select_host::check_args(candidates, scores, valid, k, /*allow_half=*/false);
  auto [om, os, oi] = patchmatch_select_host::empty_outputs(d, candidates, scores);
  const int64_t npix = d.B * d.Hs * d.Ws;
  if (npix * d.k == 0) return {om, os, oi};
  const auto c = candidates.contiguous();
  const auto s = scores.contiguous();
  const auto v = valid.contiguous();
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "patchmatch_select_cpu", [&] {
    const int64_t* cp = c.const_data_ptr<int64_t>();
    const scalar_t* sp = s.const_data_ptr<scalar_t>();
    const bool* vp = v.const_data_ptr<bool>();
    int64_t* mp = om.mutable_data_ptr<int64_t>();
    scalar_t* op = os.mutable_data_ptr<scalar_t>();
    int64_t* ip = oi.mutable_data_ptr<int64_t>();
    const scalar_t ninf = -std::numeric_limits<scalar_t>::infinity();
    at::parallel_for(0, npix, std::max<int64_t>(1, 2048 / std::max<int64_t>(1, d.N * d.k)), [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p)
        pms::select_pixel<scalar_t, scalar_t>(cp + p * d.N * 2, sp + p * d.N, vp + p * d.N, d.N, d.k, ninf,
                                              mp + p * d.k * 2, op + p * d.k, ip + p * d.k);
    });
  });
  return {om, os, oi};
}

at::Tensor patchmatch_select_backward(const at::Tensor& grad, const at::Tensor& indices, int64_t n) {
  return patchmatch_select_host::select_backward(grad, indices, n);
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("patchmatch_select", &patchmatch_select_cpu);
  m.impl("_patchmatch_select_backward", &patchmatch_select_backward);
}

}  // namespace semcorr
