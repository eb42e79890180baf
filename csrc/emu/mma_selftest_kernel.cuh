// Self-test kernel of the warp-level MMA vocabulary (csrc/common/mma.cuh) for tests/test_emu_mma.py: one
// m16n8 multiply-accumulate per warp, fragments built by mma_load_a/mma_load_b, so the test checks the PTX
// fragment layouts and the emulated arithmetic against a float64 matmul of the operands' rounded values.
#pragma once
#include "common/mma.cuh"

#include <cstdint>

namespace semcorr {
namespace emu_selftest {

// Per warp w: D[w] (16 x 8) = A[w] (16 x k, row-major) @ B[w] (k x 8, row-major) + C[w] (16 x 8). A and B hold the
// operand bits (tf32: float bits, used as given — the instruction must ignore the low 13; f16/bf16: 16 bits).
// `threads` may be a non-multiple of 32: the partial warp must make mma.sync fail.
template <MmaKind kind>
__global__ void mma_selftest_kernel(const uint32_t* __restrict__ A, const uint32_t* __restrict__ B,
                                    const float* __restrict__ C, float* __restrict__ D) {
  constexpr int K = mma_k<kind>();
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
  const uint32_t* Aw = A + w * 16 * K;
  const uint32_t* Bw = B + w * K * 8;
  uint32_t a[4], b[2];
  mma_load_a<kind>(a, lane, [&](int row, int k) { return Aw[row * K + k]; });
  mma_load_b<kind>(b, lane, [&](int k, int col) { return Bw[k * 8 + col]; });
  float c[4], d[4];
#pragma unroll
  for (int r = 0; r < 4; ++r) c[r] = C[w * 128 + mma_d_row(lane, r) * 8 + mma_d_col(lane, r)];
  mma_m16n8<kind>(d, a, b, c);
#pragma unroll
  for (int r = 0; r < 4; ++r) D[w * 128 + mma_d_row(lane, r) * 8 + mma_d_col(lane, r)] = d[r];
}

template <MmaKind kind>
inline void launch_mma_selftest(const uint32_t* A, const uint32_t* B, const float* C, float* D, int threads,
                                cudaStream_t stream) {
  const auto kernel = &mma_selftest_kernel<kind>;
  SC_LAUNCH(kernel, dim3(1), dim3(threads), 0, stream)(A, B, C, D);
}

}  // namespace emu_selftest
}  // namespace semcorr
