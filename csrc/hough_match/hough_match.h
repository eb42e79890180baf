// hough_match: HPF regularised Hough matching (Min et al., ICCV 2019, `rhm`), batched.
//
//   app          (B, Ns, Nt)  appearance scores of every (source, target) match, float32/float64 (CPU),
//                             + float16/bfloat16 (CUDA)
//   src_centers  (B, Ns, 2)   source box centres (x, y) in pixels, float32/float64 (any float dtype on its own)
//   tgt_centers  (B, Nt, 2)   target box centres (x, y) in pixels, same dtype as src_centers
//   src_size     [W, H] or [W0, H0, W1, H1, ...] (2 or 2*B floats): source image sizes in pixels
//   tgt_size     likewise for the targets
//   ncells       number of cells of the Hough space (HPF: 8192)
//   smooth       convolve the votes with HPF's normalised 7x7 Gaussian (sigma = 7/2/2.354, zero padding 3)
//   returns out (B, Ns, Nt) in app's dtype: out[m, n] = app[m, n] * votes[bin(m, n)]
//
// Per pair: Hough space (Ws+Wt) x (Hs+Ht) pixels, cell = sqrt(hs_w*hs_h/ncells) (double), nbins_x =
// int(hs_w/cell)+1, nbins_y likewise; vote of (m, n) = (src_size - src_center[m]) + tgt_center[n] in the
// centres' dtype, bin = trunc(vote/cell) per axis (clamped into the space), flat id x + y*nbins_x. Bin ids are
// recomputed on the fly in every pass, never stored.
//
// _hough_match_backward(grad, app, ...) -> grad_app (B, Ns, Nt): one scatter pass (votes and grad*app votes),
// the smoothing and its adjoint, one gather pass:
//   grad_app[m,n] = grad[m,n] * V[bin] + (K^T * G)[bin],   G[k] = sum_{bin(m,n)=k} grad * app.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

namespace semcorr {

at::Tensor hough_match_cpu(const at::Tensor& app, const at::Tensor& src_centers, const at::Tensor& tgt_centers,
                           c10::ArrayRef<double> src_size, c10::ArrayRef<double> tgt_size, int64_t ncells,
                           bool smooth);
at::Tensor hough_match_backward_cpu(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& src_centers,
                                    const at::Tensor& tgt_centers, c10::ArrayRef<double> src_size,
                                    c10::ArrayRef<double> tgt_size, int64_t ncells, bool smooth);

}  // namespace semcorr
