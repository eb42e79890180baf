// hough_match's and hough_vote's CUDA launch sequence (csrc/hough_match/hough_launch.h) run on CPU tensors
// under the host emulator.
#include "emu/emu_registry.h"
#include "hough_match/hough_launch.h"

namespace {

using semcorr::hough_match_host::check_args;

at::Tensor match_forward(const at::Tensor& app, const at::Tensor& sc, const at::Tensor& tc,
                         const std::vector<double>& src_size, const std::vector<double>& tgt_size, int64_t ncells,
                         bool smooth) {
  check_args(app, sc, tc, src_size, tgt_size, ncells, /*allow_half=*/true);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return semcorr::hough_launch::hough_match(nullptr, app, sc, tc, src_size, tgt_size, ncells, smooth, nullptr);
}

at::Tensor match_backward(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& sc, const at::Tensor& tc,
                          const std::vector<double>& src_size, const std::vector<double>& tgt_size, int64_t ncells,
                          bool smooth) {
  constexpr const char* op = "semcorr::_hough_match_backward";
  check_args(app, sc, tc, src_size, tgt_size, ncells, true, op);
  semcorr::hough_match_host::check_backward_args(grad, app, op);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return semcorr::hough_launch::hough_match(&grad, app, sc, tc, src_size, tgt_size, ncells, smooth, nullptr);
}

at::Tensor vote_forward(const at::Tensor& app, const at::Tensor& bins, const std::vector<int64_t>& nbins,
                        const std::optional<at::Tensor>& kernel) {
  semcorr::hough_vote_host::check_args(app, bins, nbins, kernel, /*allow_half=*/true);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return semcorr::hough_launch::hough_vote(nullptr, app, bins, nbins, kernel, "semcorr::hough_vote", nullptr);
}

at::Tensor vote_backward(const at::Tensor& grad, const at::Tensor& app, const at::Tensor& bins,
                         const std::vector<int64_t>& nbins, const std::optional<at::Tensor>& kernel) {
  constexpr const char* op = "semcorr::_hough_vote_backward";
  semcorr::hough_vote_host::check_args(app, bins, nbins, kernel, true, op);
  semcorr::hough_vote_host::check_backward_args(grad, app, op);
  if (app.numel() == 0) return at::zeros_like(app, at::MemoryFormat::Contiguous);
  return semcorr::hough_launch::hough_vote(&grad, app, bins, nbins, kernel, op, nullptr);
}

}  // namespace

SC_EMU_BINDINGS(hough) {
  m.def("hough_match", &match_forward, "emulated CUDA hough_match forward", pybind11::arg("app"),
        pybind11::arg("src_centers"), pybind11::arg("tgt_centers"), pybind11::arg("src_size"),
        pybind11::arg("tgt_size"), pybind11::arg("ncells"), pybind11::arg("smooth"));
  m.def("hough_match_backward", &match_backward, "emulated CUDA hough_match backward");
  m.def("hough_vote", &vote_forward, "emulated CUDA hough_vote forward", pybind11::arg("app"), pybind11::arg("bins"),
        pybind11::arg("nbins"), pybind11::arg("smooth_kernel") = pybind11::none());
  m.def("hough_vote_backward", &vote_backward, "emulated CUDA hough_vote backward");
}
