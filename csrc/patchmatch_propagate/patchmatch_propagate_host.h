// Argument checks of patchmatch_propagate shared by the CPU, CUDA and emulated backends.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <tuple>

#include "common/checks.h"
#include "patchmatch_propagate/patchmatch_propagate_math.h"

namespace semcorr {
namespace patchmatch_propagate_host {

inline pm::Params check_args(const at::Tensor& matches, const at::Tensor& offsets, at::IntArrayRef target_size,
                             int64_t random_samples, int64_t radius, int64_t seed, int64_t iteration) {
  constexpr const char* op = "semcorr::patchmatch_propagate";
  TORCH_CHECK(matches.dim() == 5 && matches.size(4) == 2, op,
              ": `matches` must be a 5-D tensor (B, Hs, Ws, K, 2) of (row, col), got shape ", shape_str(matches));
  TORCH_CHECK(matches.scalar_type() == at::kLong, op, ": `matches` must be int64, got ", matches.scalar_type());
  TORCH_CHECK(offsets.dim() == 2 && offsets.size(1) == 2, op, ": `offsets` must be a 2-D tensor (P, 2), got shape ",
              shape_str(offsets));
  TORCH_CHECK(offsets.scalar_type() == at::kLong, op, ": `offsets` must be int64, got ", offsets.scalar_type());
  check_same_device(matches, offsets, op, "matches", "offsets");
  TORCH_CHECK(target_size.size() == 2 && target_size[0] > 0 && target_size[1] > 0, op,
              ": `target_size` must be [Ht, Wt] with both > 0, got ", target_size);
  TORCH_CHECK(random_samples >= 0, op, ": `random_samples` must be >= 0, got ", random_samples);
  TORCH_CHECK(radius >= 0 && radius < (int64_t(1) << 30), op, ": `radius` must be in [0, 2^30), got ", radius);
  TORCH_CHECK(iteration >= 0, op, ": `iteration` must be >= 0, got ", iteration);
  pm::Params p;
  p.B = matches.size(0);
  p.Hs = matches.size(1);
  p.Ws = matches.size(2);
  p.K = matches.size(3);
  p.P = offsets.size(0);
  p.R = random_samples;
  p.Ht = target_size[0];
  p.Wt = target_size[1];
  p.radius = radius;
  p.seed = static_cast<uint64_t>(seed);
  p.iteration = static_cast<uint64_t>(iteration);
  // N = K * (9 + P + R) candidates per source pixel: bound R before it is multiplied (no int64 overflow).
  TORCH_CHECK(random_samples < kMaxAllocNumel, op, ": `random_samples` = ", random_samples,
              " is more than an op allocates (2^31 - 1)");
  checked_numel({p.B, p.Hs, p.Ws, p.K, 9 + p.P + p.R, 2}, op, "random_samples");
  return p;
}

inline std::tuple<at::Tensor, at::Tensor> empty_outputs(const pm::Params& p, const at::Tensor& matches) {
  return {at::empty({p.B, p.Hs, p.Ws, p.N(), 2}, matches.options()),
          at::empty({p.B, p.Hs, p.Ws, p.N()}, matches.options().dtype(at::kBool))};
}

}  // namespace patchmatch_propagate_host
}  // namespace semcorr
