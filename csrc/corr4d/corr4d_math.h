// The element-wise part of corr4d shared by the CPU kernel, the CUDA kernel and its emulation, so the
// three backends cannot drift apart.
#pragma once
#include "common/math.cuh"

namespace semcorr {

// raw: the (normalised) dot product S. Applies relu (if asked) then S ** power.
template <typename T> __host__ __device__ __forceinline__ T corr_epilogue(T raw, bool relu, T power) {
  if (relu && raw < T(0)) raw = T(0);
  return power == T(1) ? raw : pow_nonneg(raw, power);
}

// dL/dS from the incoming gradient g and the forward output o = epilogue(S). power != 1 implies relu (the
// op rejects it otherwise), and for S > 0, p * S^(p-1) = p * o^((p-1)/p). relu'(0) = 0 as torch.relu.
template <typename T> __host__ __device__ __forceinline__ T corr_epilogue_grad(T g, T o, bool relu, T power) {
  if (!relu) return g;
  if (!(o > T(0))) return T(0);
  if (power == T(1)) return g;
  if (power == T(2)) return g * T(2) * static_cast<T>(sqrt(o));
  return g * power * static_cast<T>(pow(o, (power - T(1)) / power));
}

}  // namespace semcorr
