// Small __host__ __device__ helpers shared by CPU kernels, CUDA kernels and their emulation.
#pragma once
#include "common/simt.h"

namespace semcorr {

// Accumulation type: float for half/bfloat16/float, double for double (docs/OPS.md#precision).
template <typename T> struct acc_type { using type = float; };
template <> struct acc_type<double> { using type = double; };
template <typename T> using acc_t = typename acc_type<T>::type;

template <typename T> __host__ __device__ __forceinline__ T ceil_div(T a, T b) { return (a + b - 1) / b; }

// x ** p for x >= 0 with the common powers done exactly (HPF uses 3); pow(0, p) = 0 for p > 0.
template <typename T> __host__ __device__ __forceinline__ T pow_nonneg(T x, T p) {
  if (p == T(1)) return x;
  if (p == T(2)) return x * x;
  if (p == T(3)) return x * x * x;
  return x > T(0) ? static_cast<T>(pow(x, p)) : T(0);
}

}  // namespace semcorr
