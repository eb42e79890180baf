// The per-block work of max_pool4d, __host__ __device__ so that the CPU kernel, the CUDA kernel and its
// emulation share it. Include after torch headers.
#pragma once
#include <cstdint>

#include "common/math.cuh"

namespace semcorr {
namespace max_pool4d_math {

// Sizes, passed by value to kernels.
struct Dims {
  int64_t BC;          // B * C
  int64_t C;
  int64_t in[4], k[4], out[4];
};

// Output element `idx` (flat over (B*C, out0..out3)) -> its output coordinates o; returns its row b*C + c.
SC_HOST_DEVICE inline int64_t decode_output(const Dims& g, int64_t idx, int64_t o[4]) {
  int64_t r = idx;
  for (int d = 3; d >= 0; --d) {
    o[d] = r % g.out[d];
    r /= g.out[d];
  }
  return r;
}

// Output element `idx` (flat over (B*C, out0..out3)): the maximum of its block (first maximum in row-major
// block order; the first NaN wins) -> value, and the flat offsets of the input element and the 4 block
// offsets. Blocks are non-overlapping, so every input element belongs to at most one block.
template <typename scalar_t, typename acc_t>
SC_HOST_DEVICE inline void block_max(const scalar_t* x, const Dims& g, int64_t idx, scalar_t& value,
                                     int64_t off[4]) {
  int64_t o[4];
  const int64_t bc = decode_output(g, idx, o);
  const int64_t s2 = g.in[3], s1 = g.in[2] * s2, s0 = g.in[1] * s1;
  const scalar_t* base =
      x + bc * g.in[0] * s0 + o[0] * g.k[0] * s0 + o[1] * g.k[1] * s1 + o[2] * g.k[2] * s2 + o[3] * g.k[3];
  scalar_t best = base[0];
  acc_t bv = static_cast<acc_t>(best);
  bool best_nan = bv != bv;
  off[0] = off[1] = off[2] = off[3] = 0;
  for (int64_t a0 = 0; a0 < g.k[0] && !best_nan; ++a0)
    for (int64_t a1 = 0; a1 < g.k[1] && !best_nan; ++a1)
      for (int64_t a2 = 0; a2 < g.k[2] && !best_nan; ++a2)
        for (int64_t a3 = 0; a3 < g.k[3]; ++a3) {
          const scalar_t v = base[a0 * s0 + a1 * s1 + a2 * s2 + a3];
          const acc_t av = static_cast<acc_t>(v);
          const bool nan = av != av;
          if (av > bv || nan) {
            best = v, bv = av;
            off[0] = a0, off[1] = a1, off[2] = a2, off[3] = a3;
            if (nan) {
              best_nan = true;
              break;
            }
          }
        }
  value = best;
}

// Flat offset in x of the element selected by block offsets a (for output element idx).
SC_HOST_DEVICE inline int64_t input_offset(const Dims& g, int64_t idx, const int64_t a[4]) {
  int64_t o[4];
  const int64_t bc = decode_output(g, idx, o);
  int64_t off = bc;
  for (int d = 0; d < 4; ++d) off = off * g.in[d] + o[d] * g.k[d] + a[d];
  return off;
}

// argmax layout (B, 4C, out...): the index of offset d of output element idx.
SC_HOST_DEVICE inline int64_t argmax_index(const Dims& g, int64_t idx, int d) {
  const int64_t per = g.out[0] * g.out[1] * g.out[2] * g.out[3];
  const int64_t bc = idx / per, pos = idx % per;
  return (bc * 4 + d) * per + pos;  // (b, c) -> channel 4c + d of batch b: (b*C + c)*4 + d = b*4C + 4c + d
}

}  // namespace max_pool4d_math
}  // namespace semcorr
