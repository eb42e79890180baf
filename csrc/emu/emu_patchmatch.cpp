// patchmatch_propagate's and patchmatch_select's CUDA launch sequences run on CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "patchmatch_propagate/patchmatch_propagate_host.h"
#include "patchmatch_select/patchmatch_select_host.h"
#include "patchmatch_propagate/patchmatch_propagate_launch.h"
#include "patchmatch_select/patchmatch_select_launch.h"

namespace {

std::tuple<at::Tensor, at::Tensor> propagate(const at::Tensor& matches, const at::Tensor& offsets,
                                             std::vector<int64_t> target_size, int64_t random_samples, int64_t radius,
                                             int64_t seed, int64_t iteration) {
  const auto p = semcorr::patchmatch_propagate_host::check_args(matches, offsets, target_size, random_samples, radius,
                                                                seed, iteration);
  auto [cand, valid] = semcorr::patchmatch_propagate_host::empty_outputs(p, matches);
  if (p.B * p.Hs * p.Ws * p.N() == 0) return {cand, valid};
  semcorr::patchmatch_propagate_launch::forward(p, matches.contiguous(), offsets.contiguous(), cand, valid, nullptr);
  return {cand, valid};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> select_topk(const at::Tensor& candidates, const at::Tensor& scores,
                                                      const at::Tensor& valid, int64_t k) {
  const auto d = semcorr::patchmatch_select_host::check_args(candidates, scores, valid, k, /*allow_half=*/true);
  auto [om, os, oi] = semcorr::patchmatch_select_host::empty_outputs(d, candidates, scores);
  if (d.B * d.Hs * d.Ws * d.k == 0) return {om, os, oi};
  semcorr::patchmatch_select_launch::forward(candidates.contiguous(), scores.contiguous(), valid.contiguous(), k, om,
                                             os, oi, nullptr);
  return {om, os, oi};
}

}  // namespace

SC_EMU_BINDINGS(patchmatch) {
  m.def("patchmatch_propagate", &propagate, "emulated CUDA patchmatch_propagate");
  m.def("patchmatch_select", &select_topk, "emulated CUDA patchmatch_select");
}
