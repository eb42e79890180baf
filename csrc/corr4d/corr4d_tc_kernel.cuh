// Tensor-core forward kernel of corr4d (mma.sync, csrc/common/mma_tile.cuh), torch-free like corr4d_kernel.cuh.
// Inputs float16/bfloat16 (m16n8k16) or float32 rounded to tf32 (m16n8k8); float32 accumulation; the same fused
// epilogue as the SIMT kernel (inverse norms, relu, power). Chosen by corr4d_launch.h (common/tensor_cores.h).
#pragma once
#include "common/mma_tile.cuh"
#include "corr4d/corr4d_math.h"

namespace semcorr {
namespace corr4d_kernels {

// 64 x 64 output tile per block of 4 warps (2 x 2), each warp 32 x 32 = 2 x 4 m16n8 fragments.
constexpr int kTcTile = 64;
constexpr int kTcFM = 2, kTcFN = 4;
constexpr int kTcThreads = 128;

// Grid (ceil(Nt/64), ceil(Ns/64), B), block 128.
template <MmaKind kind, typename scalar_t>
__global__ void __launch_bounds__(kTcThreads)
    corr_gemm_tc_kernel(const scalar_t* __restrict__ src, const scalar_t* __restrict__ tgt,
                        const float* __restrict__ inv_s, const float* __restrict__ inv_t, scalar_t* __restrict__ out,
                        int64_t C, int64_t Ns, int64_t Nt, bool relu, float power) {
  using smem_t = mma_smem_t<kind, scalar_t>;
  __shared__ smem_t As[kMmaDepth][kTcTile + kMmaPad];
  __shared__ smem_t Bs[kMmaDepth][kTcTile + kMmaPad];
  const int64_t b = blockIdx.z;
  const int64_t s0 = static_cast<int64_t>(blockIdx.y) * kTcTile;
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTcTile;
  float acc[kTcFM][kTcFN][4];
  mma_zero(acc);
  mma_tile_cn<kind, kTcTile, kTcTile, kTcFM, kTcFN>(src + b * C * Ns, tgt + b * C * Nt, C, Ns, Nt, s0, t0, As, Bs,
                                                    acc);
  mma_tile_store<kTcTile>(acc, [&](int row, int col, float a) {
    const int64_t s = s0 + row, t = t0 + col;
    if (s >= Ns || t >= Nt) return;
    const float v = a * inv_s[b * Ns + s] * inv_t[b * Nt + t];
    out[(b * Ns + s) * Nt + t] = static_cast<scalar_t>(corr_epilogue(v, relu, power));
  });
}

}  // namespace corr4d_kernels
}  // namespace semcorr
