// CUDA kernels of mutual_matching, torch-free (also compiled under the host emulator).
// corr, out, grad: (B, Ns, Nt) contiguous. max_t/arg_t: (B, Ns) maximum over targets of each source row;
// max_s/arg_s: (B, Nt) maximum over sources of each target column (acc type / int64).
#pragma once
#include "common/reduce.cuh"
#include "mutual_matching/mutual_matching_math.h"

namespace semcorr {
namespace mutual_matching_kernels {

// One block per (b, s) row (grid (Ns, B)): maximum over t, lowest t on ties.
template <typename scalar_t, typename acc_t>
__global__ void row_max_kernel(const scalar_t* __restrict__ corr, acc_t* __restrict__ max_t,
                               int64_t* __restrict__ arg_t, int64_t Ns, int64_t Nt) {
  __shared__ acc_t pv[32];
  __shared__ int64_t pi[32];
  const int64_t row = static_cast<int64_t>(blockIdx.y) * Ns + blockIdx.x;
  const scalar_t* r = corr + row * Nt;
  acc_t best = Nt > 0 ? static_cast<acc_t>(r[0]) : acc_t(0);
  int64_t bi = 0;
  for (int64_t t = threadIdx.x; t < Nt; t += blockDim.x) {
    const acc_t v = static_cast<acc_t>(r[t]);
    if (v > best) { best = v; bi = t; }  // strided t increases, so the first maximum of this thread is kept
  }
  block_argmax(best, bi, pv, pi);
  if (threadIdx.x == 0) { max_t[row] = best; arg_t[row] = bi; }
}

// One thread per (b, t) walking down the rows (coalesced across t): maximum over s, lowest s on ties.
template <typename scalar_t, typename acc_t>
__global__ void col_max_kernel(const scalar_t* __restrict__ corr, acc_t* __restrict__ max_s,
                               int64_t* __restrict__ arg_s, int64_t B, int64_t Ns, int64_t Nt) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * Nt) return;
  const int64_t b = idx / Nt, t = idx % Nt;
  const scalar_t* c = corr + b * Ns * Nt + t;
  acc_t best = static_cast<acc_t>(c[0]);
  int64_t bi = 0;
  for (int64_t s = 1; s < Ns; ++s) {
    const acc_t v = static_cast<acc_t>(c[s * Nt]);
    if (v > best) { best = v; bi = s; }
  }
  max_s[idx] = best;
  arg_s[idx] = bi;
}

template <typename scalar_t, typename acc_t>
__global__ void forward_kernel(const scalar_t* __restrict__ corr, const acc_t* __restrict__ max_t,
                               const acc_t* __restrict__ max_s, scalar_t* __restrict__ out, int64_t B,
                               int64_t Ns, int64_t Nt, acc_t eps) {
  const int64_t total = B * Ns * Nt;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i % Nt, row = i / Nt, b = row / Ns;
    out[i] = static_cast<scalar_t>(mutual_filtered(static_cast<acc_t>(corr[i]), max_t[row], max_s[b * Nt + t], eps));
  }
}

// Backward, part 1: the gradient with both maxima held fixed, d/dc = 3 c^2 / ((mt+eps)(ms+eps)).
template <typename scalar_t, typename acc_t>
__global__ void backward_elem_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ corr,
                                     const acc_t* __restrict__ max_t, const acc_t* __restrict__ max_s,
                                     acc_t* __restrict__ grad_in, int64_t B, int64_t Ns, int64_t Nt, acc_t eps) {
  const int64_t total = B * Ns * Nt;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i % Nt, row = i / Nt, b = row / Ns;
    const acc_t c = static_cast<acc_t>(corr[i]);
    grad_in[i] = static_cast<acc_t>(grad[i]) * acc_t(3) * (c / (max_t[row] + eps)) * (c / (max_s[b * Nt + t] + eps));
  }
}

// Backward, part 2 (after part 1): d/dmax_t[s] = -sum_t grad * out / (mt + eps), routed to the argmax entry of
// the row. One block per (b, s); every block writes a different row, so no atomics.
template <typename scalar_t, typename acc_t>
__global__ void backward_rows_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ corr,
                                     const acc_t* __restrict__ max_t, const int64_t* __restrict__ arg_t,
                                     const acc_t* __restrict__ max_s, acc_t* __restrict__ grad_in, int64_t Ns,
                                     int64_t Nt, acc_t eps) {
  __shared__ acc_t partial[32];
  const int64_t b = blockIdx.y, row = b * Ns + blockIdx.x;
  const acc_t mt = max_t[row];
  acc_t sum = 0;
  for (int64_t t = threadIdx.x; t < Nt; t += blockDim.x) {
    const acc_t c = static_cast<acc_t>(corr[row * Nt + t]);
    sum += static_cast<acc_t>(grad[row * Nt + t]) * mutual_filtered(c, mt, max_s[b * Nt + t], eps);
  }
  sum = block_sum(sum, partial);
  if (threadIdx.x == 0) grad_in[row * Nt + arg_t[row]] -= sum / (mt + eps);
}

// Backward, part 3 (after part 2): d/dmax_s[t] = -sum_s grad * out / (ms + eps), routed to the argmax entry
// of the column. One thread per (b, t); every thread writes a different column.
template <typename scalar_t, typename acc_t>
__global__ void backward_cols_kernel(const scalar_t* __restrict__ grad, const scalar_t* __restrict__ corr,
                                     const acc_t* __restrict__ max_t, const acc_t* __restrict__ max_s,
                                     const int64_t* __restrict__ arg_s, acc_t* __restrict__ grad_in, int64_t B,
                                     int64_t Ns, int64_t Nt, acc_t eps) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * Nt) return;
  const int64_t b = idx / Nt, t = idx % Nt;
  const acc_t ms = max_s[idx];
  acc_t sum = 0;
  for (int64_t s = 0; s < Ns; ++s) {
    const int64_t i = (b * Ns + s) * Nt + t;
    sum += static_cast<acc_t>(grad[i]) * mutual_filtered(static_cast<acc_t>(corr[i]), max_t[b * Ns + s], ms, eps);
  }
  grad_in[(b * Ns + arg_s[idx]) * Nt + t] -= sum / (ms + eps);
}

}  // namespace mutual_matching_kernels
}  // namespace semcorr
