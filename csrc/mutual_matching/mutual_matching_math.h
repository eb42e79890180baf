// The element-wise formula of mutual_matching, shared by the CPU kernel, the CUDA kernels and their emulation.
#pragma once
#include "common/math.cuh"

namespace semcorr {

// NC-Net's order of operations: c * ((c / (mt + eps)) * (c / (ms + eps))), mt = max over targets of c's
// source row, ms = max over sources of c's target column.
template <typename acc_t>
__host__ __device__ __forceinline__ acc_t mutual_filtered(acc_t c, acc_t mt, acc_t ms, acc_t eps) {
  return c * ((c / (mt + eps)) * (c / (ms + eps)));
}

}  // namespace semcorr
