// patchmatch_propagate: the candidate-generation step of PatchMatch neighbourhood consensus (PMNC).
//
//   matches      (B, Hs, Ws, K, 2) int64: the K current matches (row, col) in the target grid of each source
//                pixel (values outside the grid are clamped into it)
//   offsets      (P, 2) int64: source-grid offsets (di, dj) whose matches are propagated
//   target_size  [Ht, Wt] (both > 0)
//   random_samples R >= 0, radius >= 0: R uniform samples in the square [-radius, radius]^2 around each own match
//   seed, iteration: key of the counter-based hash that draws the random samples (identical on every backend)
//
// Returns (candidates (B, Hs, Ws, N, 2) int64, valid (B, Hs, Ws, N) bool) with N = K * (9 + P + R), candidate
// order per source pixel p = (i, j) (n is the index along dim 3):
//   [0, K)                      own matches m_k
//   K + p*K + k                 propagation: match k of p + offsets[p] (if outside the source grid: a copy of
//                               m_k marked invalid)
//   K + P*K + k*8 + d           refinement: m_k + the d-th of the 8 neighbours (-1,-1),(-1,0),(-1,1),(0,-1),
//                               (0,1),(1,-1),(1,0),(1,1)
//   K*(9+P) + k*R + r           random sample r around m_k, from hash(seed, iteration, b, i, j, k*R + r)
// Every candidate is clamped into [0, Ht) x [0, Wt). valid[n] is false for a propagation fallback and for any
// candidate equal to an earlier one (the first occurrence of each distinct candidate is the valid one).
#pragma once
#include <ATen/core/Tensor.h>

#include <tuple>

namespace semcorr {

std::tuple<at::Tensor, at::Tensor> patchmatch_propagate_cpu(const at::Tensor& matches, const at::Tensor& offsets,
                                                            at::IntArrayRef target_size, int64_t random_samples,
                                                            int64_t radius, int64_t seed, int64_t iteration);

}  // namespace semcorr
