// CPU kernel of patchmatch_propagate: source pixels in parallel, each generating its candidates and marking
// duplicates with the shared __host__ __device__ code of patchmatch_propagate_math.h.
#include <ATen/Parallel.h>
#include <algorithm>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "patchmatch_propagate/patchmatch_propagate.h"
#include "patchmatch_propagate/patchmatch_propagate_host.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor> patchmatch_propagate_cpu(const at::Tensor& matches, const at::Tensor& offsets,
                                                            at::IntArrayRef target_size, int64_t random_samples,
                                                            int64_t radius, int64_t seed, int64_t iteration) {
  const auto p = patchmatch_propagate_host::check_args(matches, offsets, target_size, random_samples, radius, seed,
                                                       iteration);
  auto [cand, valid] = patchmatch_propagate_host::empty_outputs(p, matches);
  const int64_t N = p.N(), npix = p.B * p.Hs * p.Ws;
  if (npix * N == 0) return {cand, valid};
  const auto m = matches.contiguous();
  const auto o = offsets.contiguous();
  const int64_t* mp = m.const_data_ptr<int64_t>();
  const int64_t* op = o.const_data_ptr<int64_t>();
  int64_t* cp = cand.mutable_data_ptr<int64_t>();
  bool* vp = valid.mutable_data_ptr<bool>();
  const int64_t grain = std::max<int64_t>(1, 4096 / (N * (N + 1)));
  at::parallel_for(0, npix, grain, [&](int64_t begin, int64_t end) {
    for (int64_t pix = begin; pix < end; ++pix) {
      const int64_t b = pix / (p.Hs * p.Ws), ij = pix % (p.Hs * p.Ws);
      pm::pixel(p, mp + b * p.Hs * p.Ws * p.K * 2, op, b, ij / p.Ws, ij % p.Ws, cp + pix * N * 2, vp + pix * N);
    }
  });
  return {cand, valid};
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) { m.impl("patchmatch_propagate", &patchmatch_propagate_cpu); }

}  // namespace semcorr
