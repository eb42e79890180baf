// gather_windows4d: the w^4 windows of a 4D correlation volume around sparse candidates (PMNC's scoring input).
//
//   corr        (B, Hs, Ws, Ht, Wt) float32/float64 (CPU), + float16/bfloat16 (CUDA)
//   candidates  (B, Hs, Ws, N, 2) int64 (row, col) in the target grid (any value; out-of-grid taps read 0)
//   window      w, odd, >= 1
//   returns     (B, Hs, Ws, N, w, w, w, w): out[b,i,j,n,a,e,c,d] = corr[b, i+a-r, j+e-r, u+c-r, v+d-r] with
//               (u, v) = candidates[b,i,j,n] and r = w // 2, and 0 where that position is outside the volume.
//
// _gather_windows4d_backward(grad, candidates, corr_size, window) -> grad_corr (corr_size, zeros where no window
// reads): the transpose (a scatter-add), computed by gathering: each (b, i', j') source cell of the output sums,
// in a fixed order, the windows of the (2r+1)^2 source pixels that read it, so no two workers write the same
// element. Deterministic on every backend, and the CPU and CUDA kernels add in the same order.
//
// gather_windows4d_points(corr, points, window) -> (M, w, w, w, w): the same windows at a list of 4D positions
//   points      (M, 5) int64 (b, i, j, u, v), any values (taps outside the volume, b included, read 0)
//   returns     out[m, a, e, c, d] = corr[b, i+a-r, j+e-r, u+c-r, v+d-r]. Only the windows asked for are cut
//               (PMNC scores a few new positions per source cell and iteration: gathering them all per cell
//               would copy mostly unused windows).
// _gather_windows4d_points_backward(grad (M, w, w, w, w), points, corr_size, window) -> grad_corr: the points are
// listed by window centre (stable: ascending point index) and each gradient plane gathers from them as above.
//
// gather_windows4d_linear(corr, points, weight, bias) -> (M, C): a linear layer on those windows without
// materialising them (PMNC's first scoring layer), out[m, c] = bias[c] + sum over the window of weight[c] * window.
//   weight      (C, w, w, w, w), the dtype of corr (its side is the window side)
//   bias        (C) or None
// Forward only here; the autograd formula (semcorr_ext/_registrations/patchmatch.py) is built from the two ops above.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>

namespace semcorr {

at::Tensor gather_windows4d_cpu(const at::Tensor& corr, const at::Tensor& candidates, int64_t window);
at::Tensor gather_windows4d_backward_cpu(const at::Tensor& grad, const at::Tensor& candidates,
                                         at::IntArrayRef corr_size, int64_t window);
at::Tensor gather_windows4d_points_cpu(const at::Tensor& corr, const at::Tensor& points, int64_t window);
at::Tensor gather_windows4d_points_backward_cpu(const at::Tensor& grad, const at::Tensor& points,
                                                at::IntArrayRef corr_size, int64_t window);
at::Tensor gather_windows4d_linear_cpu(const at::Tensor& corr, const at::Tensor& points, const at::Tensor& weight,
                                       const std::optional<at::Tensor>& bias);

}  // namespace semcorr
