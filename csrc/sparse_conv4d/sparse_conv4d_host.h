// Host-side pieces of kernel_map4d / sparse_conv4d shared by the CPU, CUDA and emulated backends: argument
// checks, the coordinate key encoding, and the compaction of a dense neighbour table into the kernel map.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/amax.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/cumsum.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/masked_select.h>
#include <ATen/ops/zeros.h>

#include <array>
#include <vector>

#include "common/checks.h"

namespace semcorr {
namespace sparse_conv4d_host {

constexpr int64_t kMaxKernelOffsets = int64_t(1) << 20;

// (k1, k2, k3, k4) from 1 or 4 odd positive ints, at most kMaxKernelOffsets offsets in all.
inline std::array<int64_t, 4> kernel_sizes(at::IntArrayRef ks, const char* op = "semcorr::kernel_map4d") {
  TORCH_CHECK(ks.size() == 1 || ks.size() == 4, op, ": `kernel_size` must be an int or 4 ints, got ", ks);
  std::array<int64_t, 4> k{};
  for (int d = 0; d < 4; ++d) {
    k[d] = ks.size() == 1 ? ks[0] : ks[d];
    TORCH_CHECK(k[d] >= 1 && k[d] % 2 == 1, op, ": `kernel_size` must be odd and >= 1 (submanifold convolution "
                "keeps the output on the input coordinates), got ", ks);
  }
  // K = k1*k2*k3*k4 offsets each get a pair list (and on CUDA a row of the (K, N) neighbour table): an absurd
  // kernel size would allocate without bound. 2^20 offsets (e.g. 31^4) is far beyond any published network
  // (Sparse NC-Net: 3^4 and 5^4).
  TORCH_CHECK(k[0] <= kMaxKernelOffsets && k[1] <= kMaxKernelOffsets && k[2] <= kMaxKernelOffsets &&
                  k[3] <= kMaxKernelOffsets && k[0] * k[1] <= kMaxKernelOffsets &&
                  k[0] * k[1] * k[2] <= kMaxKernelOffsets && k[0] * k[1] * k[2] * k[3] <= kMaxKernelOffsets,
              op, ": `kernel_size` ", ks, " gives more than ", kMaxKernelOffsets,
              " (2^20) kernel offsets k1*k2*k3*k4");
  return k;
}

inline void check_coords(const at::Tensor& coords, const char* op = "semcorr::kernel_map4d") {
  check_dim(coords, 2, op, "coords", "(N, 5) rows (b, i, j, k, l)");
  TORCH_CHECK(coords.size(1) == 5, op, ": `coords` must have 5 columns (b, i, j, k, l), got shape ",
              shape_str(coords));
  TORCH_CHECK(coords.scalar_type() == at::kLong || coords.scalar_type() == at::kInt, op,
              ": `coords` must be int32 or int64, got ", coords.scalar_type());
}

// Per-column extents E[d] = max + 1 (after checking every coordinate is >= 0) and the key strides, so that
// key = sum_d coords[d] * stride[d] is a bijection on the bounding box. Synchronises on CUDA.
struct KeySpace {
  std::array<int64_t, 5> extent;
  std::array<int64_t, 5> stride;
};

inline KeySpace key_space(const at::Tensor& c64, const char* op = "semcorr::kernel_map4d") {
  KeySpace ks{};
  auto [mn, mx] = at::aminmax(c64, 0);
  const auto mn_h = mn.cpu(), mx_h = mx.cpu();
  const int64_t* lo = mn_h.const_data_ptr<int64_t>();
  const int64_t* hi = mx_h.const_data_ptr<int64_t>();
  for (int d = 0; d < 5; ++d) {
    TORCH_CHECK(lo[d] >= 0, op, ": `coords` must be >= 0, got ", lo[d], " in column ", d, " (b, i, j, k, l)");
    ks.extent[d] = hi[d] + 1;
  }
  double space = 1;
  for (int d = 4; d >= 0; --d) {
    ks.stride[d] = d == 4 ? 1 : ks.stride[d + 1] * ks.extent[d + 1];
    space *= static_cast<double>(ks.extent[d]);
  }
  TORCH_CHECK(space < 4.0e18, op, ": the coordinate bounding box is too large to index (extents ",
              c10::IntArrayRef(ks.extent.data(), 5), ")");
  return ks;
}

// nbr (K, N) int64: input row of the neighbour of output row n at offset o, or -1. -> (in_rows, out_rows,
// offsets_ptr), offset-major, increasing n within an offset.
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> compact(const at::Tensor& nbr) {
  const int64_t K = nbr.size(0), N = nbr.size(1);
  const auto mask = nbr.ge(0);
  auto in_rows = at::masked_select(nbr, mask);
  auto out_rows = at::masked_select(at::arange(N, nbr.options()).view({1, N}).expand({K, N}), mask);
  auto counts = mask.sum(1);
  auto ptr = at::cat({at::zeros({1}, nbr.options()), at::cumsum(counts, 0)});
  return {in_rows, out_rows, ptr};
}

inline std::array<int64_t, 4> check_conv_args(const at::Tensor& feats, const at::Tensor& weight,
                                              const std::optional<at::Tensor>& bias, const at::Tensor& in_rows,
                                              const at::Tensor& out_rows, const at::Tensor& offsets_ptr,
                                              bool allow_half, const char* op = "semcorr::sparse_conv4d") {
  check_operands(feats, 2, "(N, Cin)", weight, 6, "(Cout, Cin, k1, k2, k3, k4)", op, "feats", "weight", allow_half);
  TORCH_CHECK(weight.size(1) == feats.size(1), op, ": `weight` dim 1 (Cin) must equal `feats` dim 1, got shapes ",
              shape_str(weight), " and ", shape_str(feats));
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == weight.size(0), op, ": `bias` must have shape (Cout,) = (",
                weight.size(0), "), got ", shape_str(*bias));
    check_same_dtype(feats, *bias, op, "feats", "bias");
    check_same_device(feats, *bias, op, "feats", "bias");
  }
  std::array<int64_t, 4> k{weight.size(2), weight.size(3), weight.size(4), weight.size(5)};
  const int64_t K = k[0] * k[1] * k[2] * k[3];
  const auto check_index = [&](const at::Tensor& t, const char* name) {
    TORCH_CHECK(t.dim() == 1 && t.scalar_type() == at::kLong, op, ": kernel map `", name,
                "` must be a 1-D int64 tensor, got ", t.scalar_type(), " of shape ", shape_str(t));
    check_same_device(feats, t, op, "feats", name);
  };
  check_index(in_rows, "in_rows");
  check_index(out_rows, "out_rows");
  check_index(offsets_ptr, "offsets_ptr");
  TORCH_CHECK(offsets_ptr.size(0) == K + 1, op, ": the kernel map has ", offsets_ptr.size(0) - 1,
              " offsets but `weight` has k1*k2*k3*k4 = ", K, " (shape ", shape_str(weight),
              "): build the map with the weight's kernel size");
  TORCH_CHECK(in_rows.size(0) == out_rows.size(0), op, ": `in_rows` and `out_rows` must have the same length, got ",
              in_rows.size(0), " and ", out_rows.size(0));
  return k;
}

// offsets_ptr on the host (checked: starts at 0, non-decreasing, ends at the number of pairs) and the row
// indices checked to lie in [0, N). Synchronises on CUDA.
inline at::Tensor host_ptr(const at::Tensor& offsets_ptr, const at::Tensor& in_rows, const at::Tensor& out_rows,
                           int64_t N, const char* op = "semcorr::sparse_conv4d") {
  auto ptr = offsets_ptr.cpu().contiguous();
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  const int64_t K = ptr.size(0) - 1;
  TORCH_CHECK(p[0] == 0 && p[K] == in_rows.size(0), op, ": `offsets_ptr` must start at 0 and end at the number "
              "of pairs ", in_rows.size(0), ", got ", p[0], " and ", p[K]);
  for (int64_t o = 0; o < K; ++o)
    TORCH_CHECK(p[o] <= p[o + 1], op, ": `offsets_ptr` must be non-decreasing, got ", p[o], " > ", p[o + 1]);
  if (in_rows.size(0) > 0) {
    const auto check_range = [&](const at::Tensor& t, const char* name) {
      auto [mn, mx] = at::aminmax(t);
      const int64_t lo = mn.item<int64_t>(), hi = mx.item<int64_t>();
      TORCH_CHECK(lo >= 0 && hi < N, op, ": kernel map `", name, "` must index rows of `feats` in [0, ", N,
                  "), got values in [", lo, ", ", hi, "] (was the map built for these coordinates?)");
    };
    check_range(in_rows, "in_rows");
    check_range(out_rows, "out_rows");
  }
  return ptr;
}

// The backward's `grad`: (N, Cout), the dtype and device of `feats`.
inline void check_grad(const at::Tensor& grad, const at::Tensor& feats, int64_t Cout, const char* op) {
  const int64_t N = feats.size(0);
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == N && grad.size(1) == Cout, op,
              ": `grad` must have shape (N, Cout) = (", N, ", ", Cout, "), got ", shape_str(grad));
  check_same_dtype(grad, feats, op, "grad", "feats");
  check_same_device(grad, feats, op, "grad", "feats");
}

}  // namespace sparse_conv4d_host
}  // namespace semcorr
