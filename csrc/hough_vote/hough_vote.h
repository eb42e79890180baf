// hough_vote: general binned Hough voting (SCNet probabilistic Hough matching and variants with scale bins).
//
//   app            (B, Ns, Nt) scores, float32/float64 (CPU), + float16/bfloat16 (CUDA)
//   bins           (B, Ns, Nt) int64 (int32 accepted) bin id of each match in [0, prod(nbins)), -1 = no vote
//   nbins          1 to 3 positive sizes: the bin grid (flat id = row-major over nbins)
//   smooth_kernel  optional kernel with len(nbins) dims, odd sizes, any float dtype, CPU or app's device:
//                  votes are cross-correlated with it, centred, zero padding (F.conv{1,2,3}d, padding=k//2)
//   returns out (B, Ns, Nt): out = app * smoothed_votes[bins], 0 where bins == -1
//
// _hough_vote_backward(grad, app, bins, nbins, smooth_kernel) -> grad_app (B, Ns, Nt).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>
#include <c10/util/Optional.h>

namespace semcorr {

at::Tensor hough_vote_cpu(const at::Tensor& app, const at::Tensor& bins, c10::IntArrayRef nbins,
                          const std::optional<at::Tensor>& smooth_kernel);
at::Tensor hough_vote_backward_cpu(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& bins,
                                   c10::IntArrayRef nbins, const std::optional<at::Tensor>& smooth_kernel);

}  // namespace semcorr
