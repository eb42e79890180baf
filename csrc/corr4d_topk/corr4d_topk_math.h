// The ordering and insertion of corr4d_topk shared by the CPU kernel, the CUDA kernel and its emulation.
#pragma once
#include "common/math.cuh"

namespace semcorr {

// Does (v, i) rank before (w, j)? Larger value first, NaN above everything (as torch.topk), ties (and two
// NaNs) to the smaller index.
template <typename T, typename I>
__host__ __device__ __forceinline__ bool topk_before(T v, I i, T w, I j) {
  const bool vn = v != v, wn = w != w;
  if (vn || wn) return vn && (!wn || i < j);
  return v > w || (v == w && i < j);
}

// Insert (v, i) into the sorted list (vals, idx) of length k (k >= 1) if it ranks before the last entry.
// The list starts filled with (-inf, max index), which every finite candidate beats.
template <typename T, typename I>
__host__ __device__ __forceinline__ void topk_insert(T* vals, I* idx, int64_t k, T v, I i) {
  if (!topk_before(v, i, vals[k - 1], idx[k - 1])) return;
  int64_t p = k - 1;
  while (p > 0 && topk_before(v, i, vals[p - 1], idx[p - 1])) {
    vals[p] = vals[p - 1];
    idx[p] = idx[p - 1];
    --p;
  }
  vals[p] = v;
  idx[p] = i;
}

}  // namespace semcorr
