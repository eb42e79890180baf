// __host__ __device__ candidate generation of patchmatch_propagate, shared by the CPU kernel, the CUDA kernel
// and (through the same formulas, written again in Python) the float64 reference. The random samples come from
// a counter-based hash (splitmix64 finaliser chained over the key), so every backend draws the same candidates.
#pragma once
#include <cstdint>

#include "common/simt.h"

namespace semcorr {
namespace pm {

struct Params {
  int64_t B, Hs, Ws, K, P, R, Ht, Wt, radius;
  uint64_t seed, iteration;
  SC_HOST_DEVICE int64_t N() const { return K * (9 + P + R); }
};

SC_HOST_DEVICE inline uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// hash(seed, iteration, b, i, j, sample): each key component is xor-ed in and mixed in turn.
SC_HOST_DEVICE inline uint64_t hash6(uint64_t seed, uint64_t it, uint64_t b, uint64_t i, uint64_t j, uint64_t s) {
  uint64_t h = mix64(seed);
  h = mix64(h ^ it);
  h = mix64(h ^ b);
  h = mix64(h ^ i);
  h = mix64(h ^ j);
  return mix64(h ^ s);
}

// Uniform integer in [0, n) from 32 random bits (multiply-shift; bias < n / 2^32).
SC_HOST_DEVICE inline int64_t bounded(uint64_t bits32, uint64_t n) { return static_cast<int64_t>((bits32 * n) >> 32); }

SC_HOST_DEVICE inline int64_t clamp(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

// Candidate n of source pixel (b, i, j). `m` points at matches[b] (Hs, Ws, K, 2) contiguous, `off` at offsets
// (P, 2). Writes (row, col), clamped, and returns false for an invalid propagation fallback.
SC_HOST_DEVICE inline bool candidate(const Params& p, const int64_t* m, const int64_t* off, int64_t b, int64_t i,
                                     int64_t j, int64_t n, int64_t* row, int64_t* col) {
  const int64_t K = p.K;
  const int64_t* own = m + (i * p.Ws + j) * K * 2;
  int64_t r = 0, c = 0;
  bool ok = true;
  if (n < K) {
    r = own[2 * n];
    c = own[2 * n + 1];
  } else if (n < K + p.P * K) {
    const int64_t q = (n - K) / K, k = (n - K) % K;
    const int64_t ii = i + off[2 * q], jj = j + off[2 * q + 1];
    if (ii >= 0 && ii < p.Hs && jj >= 0 && jj < p.Ws) {
      const int64_t* nb = m + ((ii * p.Ws + jj) * K + k) * 2;
      r = nb[0];
      c = nb[1];
    } else {
      r = own[2 * k];
      c = own[2 * k + 1];
      ok = false;
    }
  } else if (n < K * (9 + p.P)) {
    const int64_t t = n - K * (1 + p.P), k = t / 8, d8 = t % 8;
    const int64_t d9 = d8 < 4 ? d8 : d8 + 1;  // skip the centre of the 3x3 neighbourhood
    r = own[2 * k] + d9 / 3 - 1;
    c = own[2 * k + 1] + d9 % 3 - 1;
  } else {
    const int64_t t = n - K * (9 + p.P), k = t / p.R;
    const uint64_t h = hash6(p.seed, p.iteration, static_cast<uint64_t>(b), static_cast<uint64_t>(i),
                             static_cast<uint64_t>(j), static_cast<uint64_t>(t));
    const uint64_t span = static_cast<uint64_t>(2 * p.radius + 1);
    r = own[2 * k] + bounded(h & 0xffffffffull, span) - p.radius;
    c = own[2 * k + 1] + bounded(h >> 32, span) - p.radius;
  }
  *row = clamp(r, 0, p.Ht - 1);
  *col = clamp(c, 0, p.Wt - 1);
  return ok;
}

// Candidates and validity of one source pixel: cand (N, 2), valid (N) for pixel (b, i, j).
SC_HOST_DEVICE inline void pixel(const Params& p, const int64_t* m, const int64_t* off, int64_t b, int64_t i,
                                 int64_t j, int64_t* cand, bool* valid) {
  const int64_t N = p.N();
  for (int64_t n = 0; n < N; ++n) {
    int64_t r, c;
    bool ok = candidate(p, m, off, b, i, j, n, &r, &c);
    for (int64_t q = 0; ok && q < n; ++q)
      if (cand[2 * q] == r && cand[2 * q + 1] == c) ok = false;
    cand[2 * n] = r;
    cand[2 * n + 1] = c;
    valid[n] = ok;
  }
}

}  // namespace pm
}  // namespace semcorr
