// The CUDA launch sequences of gather_windows4d, gather_windows4d_points and gather_windows4d_linear run on CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "gather_windows4d/gather_windows4d_host.h"
#include "gather_windows4d/gather_windows4d_launch.h"

namespace {

at::Tensor forward(const at::Tensor& corr, const at::Tensor& candidates, int64_t window) {
  const auto d = semcorr::gather_windows4d_host::check_args(corr, candidates, window, /*allow_half=*/true);
  if (d.B * d.Hs * d.Ws * d.N == 0) return at::empty({d.B, d.Hs, d.Ws, d.N, d.w, d.w, d.w, d.w}, corr.options());
  return semcorr::gather_windows4d_launch::forward(d, corr.contiguous(), candidates.contiguous(), nullptr);
}

at::Tensor backward(const at::Tensor& grad, const at::Tensor& candidates, std::vector<int64_t> corr_size,
                    int64_t window) {
  const auto d = semcorr::gather_windows4d_host::check_backward_args(grad, candidates, corr_size, window, true);
  if (d.B * d.Hs * d.Ws * d.Ht * d.Wt == 0 || grad.numel() == 0) return at::zeros(corr_size, grad.options());
  return semcorr::gather_windows4d_launch::backward(d, grad.contiguous(), candidates.contiguous(), corr_size, nullptr);
}

at::Tensor points_forward(const at::Tensor& corr, const at::Tensor& points, int64_t window) {
  const auto d = semcorr::gather_windows4d_host::check_points_args(corr, points, window, /*allow_half=*/true);
  if (d.N == 0) return at::empty({0, d.w, d.w, d.w, d.w}, corr.options());
  return semcorr::gather_windows4d_launch::points_forward(d, corr.contiguous(), points.contiguous(), nullptr);
}

at::Tensor points_backward(const at::Tensor& grad, const at::Tensor& points, std::vector<int64_t> corr_size,
                           int64_t window) {
  const auto d = semcorr::gather_windows4d_host::check_points_backward_args(grad, points, corr_size, window, true);
  if (d.B * d.Hs * d.Ws * d.Ht * d.Wt == 0 || grad.numel() == 0) return at::zeros(corr_size, grad.options());
  return semcorr::gather_windows4d_launch::points_backward(d, grad.contiguous(), points.contiguous(), corr_size,
                                                           nullptr);
}

at::Tensor linear_forward(const at::Tensor& corr, const at::Tensor& points, const at::Tensor& weight,
                          const std::optional<at::Tensor>& bias) {
  const auto d = semcorr::gather_windows4d_host::check_linear_args(corr, points, weight, bias, /*allow_half=*/true);
  if (d.N == 0 || weight.size(0) == 0) return at::empty({d.N, weight.size(0)}, corr.options());
  return semcorr::gather_windows4d_launch::linear_forward(d, corr.contiguous(), points.contiguous(), weight, bias,
                                                          nullptr);
}

}  // namespace

SC_EMU_BINDINGS(gather_windows4d) {
  m.def("gather_windows4d", &forward, "emulated CUDA gather_windows4d forward");
  m.def("gather_windows4d_backward", &backward, "emulated CUDA gather_windows4d backward");
  m.def("gather_windows4d_points", &points_forward, "emulated CUDA gather_windows4d_points forward");
  m.def("gather_windows4d_points_backward", &points_backward, "emulated CUDA gather_windows4d_points backward");
  m.def("gather_windows4d_linear", &linear_forward, "emulated CUDA gather_windows4d_linear",
        pybind11::arg("corr"), pybind11::arg("points"), pybind11::arg("weight"), pybind11::arg("bias") = pybind11::none());
}
