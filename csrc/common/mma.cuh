// mma.cuh — the warp-level tensor-core vocabulary of semcorr_ext's kernels: one m16n8 multiply-accumulate
// per call, float32 accumulation, operands in the register fragments of the PTX ISA ("Matrix Fragments for
// mma.m16n8k8" (.tf32) and "... mma.m16n8k16 with floating point type" (.f16/.bf16)):
//
//   lane = tid % 32, g = lane / 4 (group), t = lane % 4 (thread in group); A is M x K (row), B is K x N (col)
//   m16n8k8  .tf32  A a[r], r<4: (row g + 8*(r%2), k t + 4*(r/2))      B b[r], r<2: (k t + 4*r, col g)
//   m16n8k16 .f16/.bf16: each register packs two consecutive k (the lower k in the low 16 bits)
//                   A a[r], r<4: (row g + 8*(r%2), k 2t + 8*(r/2) + {0,1})  B b[r], r<2: (k 2t + 8*r + {0,1}, col g)
//   C / D   d[r], r<4: (row g + 8*(r/2), col 2t + r%2)
//
// Under nvcc: inline `mma.sync.aligned` PTX for sm_80+ (the build's archs are 8.0 and 9.0+PTX). Below sm_80 the
// functions trap: the launch code (common/tensor_cores.h) never selects a tensor-core kernel on such a device.
// Under SC_EMULATION: one warp rendezvous per mma (sc_emu::warp_exchange: every lane deposits its A and B
// registers, all lanes read all), then each lane computes its own four D elements exactly as specified for the
// inputs: .tf32 operands use only the top 19 bits of each 32-bit register (the hardware ignores the low 13),
// bf16/f16 products are exact in float32, and the k products are added in float32 in increasing k onto c. The
// hardware's internal summation order/precision is not specified; tests bound the error accordingly.
#pragma once
#include "common/simt.h"

#include <cstdint>
#include <cstring>
#ifdef SC_EMULATION
#include <cmath>
#include <stdexcept>
#include <string>
#endif

namespace semcorr {

enum class MmaKind : int { tf32 = 0, f16 = 1, bf16 = 2 };

// k per mma instruction: 8 for .tf32, 16 for .f16/.bf16.
template <MmaKind kind>
constexpr int mma_k() {
  return kind == MmaKind::tf32 ? 8 : 16;
}

// float -> tf32 (round to nearest, ties away from zero, like cvt.rna.tf32.f32): the float whose low 13 mantissa
// bits are 0. Inf/NaN pass through.
__device__ __forceinline__ float to_tf32(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return __uint_as_float(r);
#else
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;  // magnitude + half ulp: ties away
  return __uint_as_float(u);
#endif
}

// The 16 bits of a 2-byte float type (c10::Half / c10::BFloat16 as AT_DISPATCH gives them), for f16/bf16 operands.
template <typename T>
__device__ __forceinline__ uint32_t bits16(const T& v) {
  static_assert(sizeof(T) == 2, "bits16: a 2-byte floating type expected");
  uint16_t b;
  memcpy(&b, &v, 2);
  return b;
}

// Builds this lane's A fragment (16 x k) from get(row, k) -> the element's operand bits (tf32: the float's 32 bits;
// f16/bf16: the 16 bits in the low half).
template <MmaKind kind, typename Get>
__device__ __forceinline__ void mma_load_a(uint32_t a[4], int lane, Get get) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int row = g + 8 * (r & 1);
    if constexpr (kind == MmaKind::tf32) {
      a[r] = get(row, t + 4 * (r >> 1));
    } else {
      const int k = 2 * t + 8 * (r >> 1);
      a[r] = (get(row, k) & 0xffffu) | (get(row, k + 1) << 16);
    }
  }
}

// This lane's B fragment (k x 8) from get(k, col).
template <MmaKind kind, typename Get>
__device__ __forceinline__ void mma_load_b(uint32_t b[2], int lane, Get get) {
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if constexpr (kind == MmaKind::tf32) {
      b[r] = get(t + 4 * r, g);
    } else {
      const int k = 2 * t + 8 * r;
      b[r] = (get(k, g) & 0xffffu) | (get(k + 1, g) << 16);
    }
  }
}

// (row, col) of this lane's accumulator element r < 4.
__device__ __forceinline__ int mma_d_row(int lane, int r) { return (lane >> 2) + 8 * (r >> 1); }
__device__ __forceinline__ int mma_d_col(int lane, int r) { return 2 * (lane & 3) + (r & 1); }

#ifdef SC_EMULATION
namespace mma_emu {
inline float f16_to_float(uint32_t h) {
  const uint32_t s = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  float v;
  if (e == 0) {
    v = std::ldexp(static_cast<float>(m), -24);  // subnormal (or zero): m * 2^-24, exact
    return s ? -v : v;
  }
  const uint32_t u = e == 31 ? (s | 0x7f800000u | (m << 13)) : (s | ((e + 112) << 23) | (m << 13));
  std::memcpy(&v, &u, 4);
  return v;
}
inline float operand(MmaKind kind, uint32_t bits) {
  uint32_t u;
  if (kind == MmaKind::tf32) u = bits & 0xffffe000u;  // the hardware reads only the tf32 bits
  else if (kind == MmaKind::bf16) u = (bits & 0xffffu) << 16;
  else return f16_to_float(bits & 0xffffu);
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}
// All lanes' registers: words[lane * 6 + i], i < 4: A, 4..5: B.
inline void mma(MmaKind kind, float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], const char* file,
                int line) {
  const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
  uint32_t all[32 * 6];
  const unsigned mask = ::sc_emu::warp_exchange(file, line, 0xffffffffu, mine, 6, all);
  if (mask != 0xffffffffu)
    throw std::runtime_error(std::string("mma.sync at ") + ::sc_emu::where(file, line) +
                             ": needs all 32 lanes of the warp (a partial warp has lanes " +
                             ::sc_emu::hex32(mask) + ")");
  const int lane = ::sc_emu::lane_id();
  if (lane == 0) ::sc_emu::settings().mma_count.fetch_add(1);
  const int K = kind == MmaKind::tf32 ? 8 : 16;
  auto A = [&](int row, int k) {
    if (kind == MmaKind::tf32) return operand(kind, all[((row & 7) * 4 + (k & 3)) * 6 + (row >> 3) + 2 * (k >> 2)]);
    const int kw = k >> 1;
    const uint32_t w = all[((row & 7) * 4 + (kw & 3)) * 6 + (row >> 3) + 2 * (kw >> 2)];
    return operand(kind, (k & 1) ? w >> 16 : w);
  };
  auto B = [&](int k, int col) {
    if (kind == MmaKind::tf32) return operand(kind, all[(col * 4 + (k & 3)) * 6 + 4 + (k >> 2)]);
    const int kw = k >> 1;
    const uint32_t w = all[(col * 4 + (kw & 3)) * 6 + 4 + (kw >> 2)];
    return operand(kind, (k & 1) ? w >> 16 : w);
  };
  for (int r = 0; r < 4; ++r) {
    const int row = mma_d_row(lane, r), col = mma_d_col(lane, r);
    float acc = c[r];
    for (int k = 0; k < K; ++k) acc += A(row, k) * B(k, col);  // products of <= 11-bit mantissas: exact in float
    d[r] = acc;
  }
}
}  // namespace mma_emu
#endif

// d = A (16 x k) * B (k x 8) + c, one warp-wide instruction: all 32 lanes of the warp must call it together.
template <MmaKind kind>
__device__ __forceinline__ void mma_m16n8(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#if defined(SC_EMULATION)
  mma_emu::mma(kind, d, a, b, c, __FILE__, __LINE__);
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (kind == MmaKind::tf32) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
  } else if constexpr (kind == MmaKind::bf16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%10,%11,%12,%13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
  }
#elif defined(__CUDA_ARCH__)
  __trap();  // never launched below sm_80 (see the header comment)
#endif
}

// The spellings of the design: one function per instruction.
__device__ __forceinline__ void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                 const float c[4]) {
  mma_m16n8<MmaKind::tf32>(d, a, b, c);
}
__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                  const float c[4]) {
  mma_m16n8<MmaKind::bf16>(d, a, b, c);
}
__device__ __forceinline__ void mma_m16n8k16_f16(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                 const float c[4]) {
  mma_m16n8<MmaKind::f16>(d, a, b, c);
}

}  // namespace semcorr
