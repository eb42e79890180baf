// kernel_map4d's and sparse_conv4d's CUDA launch sequences (csrc/sparse_conv4d/sparse_conv4d_launch.h) run on
// CPU tensors under the host emulator.
#include "emu/emu_registry.h"
#include "sparse_conv4d/sparse_conv4d_launch.h"

namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_map4d(const at::Tensor& coords, std::vector<int64_t> kernel_size) {
  semcorr::sparse_conv4d_host::check_coords(coords);
  const auto k = semcorr::sparse_conv4d_host::kernel_sizes(kernel_size);
  const int64_t K = k[0] * k[1] * k[2] * k[3];
  const auto lopts = coords.options().dtype(at::kLong);
  if (coords.size(0) == 0) return {at::empty({0}, lopts), at::empty({0}, lopts), at::zeros({K + 1}, lopts)};
  return semcorr::sparse_conv4d_launch::kernel_map(coords, k, nullptr);
}

at::Tensor forward(const at::Tensor& feats, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                   const at::Tensor& in_rows, const at::Tensor& out_rows, const at::Tensor& offsets_ptr) {
  using namespace semcorr;
  sparse_conv4d_host::check_conv_args(feats, weight, bias, in_rows, out_rows, offsets_ptr, /*allow_half=*/true);
  const int64_t N = feats.size(0), Cin = feats.size(1), Cout = weight.size(0);
  const auto ptr = sparse_conv4d_host::host_ptr(offsets_ptr, in_rows, out_rows, N);
  if (N == 0 || Cout == 0 || Cin == 0 || in_rows.size(0) == 0) {
    auto out = at::zeros({N, Cout}, feats.options());
    if (bias.has_value() && N > 0) out.add_(bias->view({1, Cout}));
    return out;
  }
  return sparse_conv4d_launch::forward(feats.contiguous(), weight, bias, in_rows, out_rows, ptr, nullptr);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& feats,
                                                        const at::Tensor& weight, const at::Tensor& in_rows,
                                                        const at::Tensor& out_rows, const at::Tensor& offsets_ptr) {
  using namespace semcorr;
  const auto k = sparse_conv4d_host::check_conv_args(feats, weight, std::nullopt, in_rows, out_rows, offsets_ptr,
                                                     /*allow_half=*/true, "semcorr::_sparse_conv4d_backward");
  const int64_t N = feats.size(0), Cin = feats.size(1), Cout = weight.size(0);
  const auto ptr = sparse_conv4d_host::host_ptr(offsets_ptr, in_rows, out_rows, N);
  if (N == 0 || Cin == 0 || Cout == 0) {
    return {at::zeros_like(feats), at::zeros_like(weight), N == 0 ? at::zeros({Cout}, feats.options()) : grad.sum(0)};
  }
  return sparse_conv4d_launch::backward(grad.contiguous(), feats.contiguous(), weight, in_rows, out_rows, offsets_ptr,
                                        ptr, k, nullptr);
}

}  // namespace

SC_EMU_BINDINGS(sparse_conv4d) {
  m.def("kernel_map4d", &kernel_map4d, "emulated CUDA kernel_map4d", pybind11::arg("coords"),
        pybind11::arg("kernel_size"));
  m.def("sparse_conv4d", &forward, "emulated CUDA sparse_conv4d forward", pybind11::arg("feats"),
        pybind11::arg("weight"), pybind11::arg("bias"), pybind11::arg("in_rows"), pybind11::arg("out_rows"),
        pybind11::arg("offsets_ptr"));
  m.def("sparse_conv4d_backward", &backward, "emulated CUDA sparse_conv4d backward");
}
