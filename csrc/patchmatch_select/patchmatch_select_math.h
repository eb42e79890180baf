// __host__ __device__ selection loop of patchmatch_select shared by the CPU and CUDA kernels.
#pragma once
#include <cstdint>

#include "common/simt.h"

namespace semcorr {
namespace pms {

// Does candidate (sa, ia) rank before (sb, ib)? Higher score first; NaN after every number; then lower index.
template <typename A>
SC_HOST_DEVICE inline bool before(A sa, int64_t ia, A sb, int64_t ib) {
  const bool na = sa != sa, nb = sb != sb;
  if (na != nb) return nb;
  if (!na && sa != sb) return sa > sb;
  return ia < ib;
}

// Selects the k best valid entries of one pixel: cand (N, 2), score (N), valid (N) -> om (k, 2), os (k), oi (k).
// Each pass takes the best valid entry ranking after the previous pick: O(k N), no scratch memory.
template <typename T, typename A>
SC_HOST_DEVICE inline void select_pixel(const int64_t* cand, const T* score, const bool* valid, int64_t N, int64_t k,
                                        A neg_inf, int64_t* om, T* os, int64_t* oi) {
  int64_t prev = -1;
  A prev_s = A(0);
  bool exhausted = false;
  for (int64_t t = 0; t < k; ++t) {
    int64_t best = -1;
    A best_s = A(0);
    for (int64_t n = 0; n < N && !exhausted; ++n) {
      if (!valid[n]) continue;
      const A s = static_cast<A>(score[n]);
      if (prev >= 0 && !before(prev_s, prev, s, n)) continue;
      if (best < 0 || before(s, n, best_s, best)) {
        best = n;
        best_s = s;
      }
    }
    oi[t] = best;
    if (best >= 0) {
      om[2 * t] = cand[2 * best];
      om[2 * t + 1] = cand[2 * best + 1];
      os[t] = score[best];
    } else {
      om[2 * t] = -1;
      om[2 * t + 1] = -1;
      os[t] = static_cast<T>(neg_inf);
    }
    prev = best;
    prev_s = best_s;
    exhausted = best < 0;  // nothing left: the remaining slots stay empty
  }
}

}  // namespace pms
}  // namespace semcorr
