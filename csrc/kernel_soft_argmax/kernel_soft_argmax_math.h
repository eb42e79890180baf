// Scalar pieces of kernel_soft_argmax shared by the CPU kernel, the CUDA kernels and their emulation, so the
// backends cannot drift apart.
#pragma once
#include <math.h>

#include "common/math.cuh"

namespace semcorr {

// L2normalize's epsilon (SFNet): s = c / sqrt(sum c^2 + 1e-6).
constexpr double kKsaNormEps = 1e-6;

// linspace(-1, 1, n)[i] (numpy / torch; n == 1 gives -1).
template <typename T> __host__ __device__ __forceinline__ T ksa_coord(int64_t i, int64_t n) {
  return n > 1 ? T(-1) + T(2) * static_cast<T>(i) / static_cast<T>(n - 1) : T(-1);
}

__host__ __device__ __forceinline__ float ksa_exp(float x) { return expf(x); }
__host__ __device__ __forceinline__ double ksa_exp(double x) { return exp(x); }
__host__ __device__ __forceinline__ float ksa_rsqrt(float x) { return 1.0f / sqrtf(x); }
__host__ __device__ __forceinline__ double ksa_rsqrt(double x) { return 1.0 / sqrt(x); }

// One factor of the separable Gaussian: exp(-d^2 / (2 sigma^2)) = exp(-d^2 * inv2s2); 1 without a kernel.
template <typename T> __host__ __device__ __forceinline__ T ksa_gauss1(int64_t d, T inv2s2, bool kernel) {
  if (!kernel) return T(1);
  const T f = static_cast<T>(d);
  return ksa_exp(-f * f * inv2s2);
}

// The op's scalar parameters in the accumulation type.
template <typename T> struct KsaParams {
  T beta;
  T inv2s2;  // 1 / (2 sigma^2), 0 without a kernel
  bool kernel;
  bool normalize;
};

template <typename T> inline KsaParams<T> ksa_params(double beta, double sigma, bool normalize) {
  const bool kernel = sigma > 0.0;
  return {static_cast<T>(beta), static_cast<T>(kernel ? 1.0 / (2.0 * sigma * sigma) : 0.0), kernel, normalize};
}

}  // namespace semcorr
