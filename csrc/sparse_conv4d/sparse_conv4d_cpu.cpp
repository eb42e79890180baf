// CPU kernels of kernel_map4d and sparse_conv4d.
// Kernel map: coordinates -> 64-bit keys, sorted once; every (offset, output row) looks its neighbour up by
// binary search (parallel over offsets; each offset's pairs come out in increasing output row).
// Convolution: per offset, gather the input rows -> one BLAS GEMM with that offset's weight slice ->
// scatter-add into the output rows. An offset never maps two pairs to the same output (or input) row, so
// the scatter has no conflicts and the result is deterministic.
// bfloat16: the GEMMs run in bfloat16 (oneDNN, float32 accumulation); the sums over offsets accumulate in
// float32 and are rounded once. Thin layers (Cin, Cout <= kThinChannels, Sparse NC-Net's 16) run wholly in float32
// on converted copies instead: their per-offset GEMMs are memory-bound, and in bfloat16 forward+backward was measured
// 2x slower than float32 at 16 channels, but 1.4x / 1.5x / 1.9x faster at 48 / 64 / 128 (20000 points, k = 3).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "common/checks_cpu.h"
#include "sparse_conv4d/sparse_conv4d.h"
#include "sparse_conv4d/sparse_conv4d_host.h"

namespace semcorr {

std::tuple<at::Tensor, at::Tensor, at::Tensor> kernel_map4d_cpu(const at::Tensor& coords, at::IntArrayRef kernel_size) {
  constexpr const char* op = "semcorr::kernel_map4d";
  sparse_conv4d_host::check_coords(coords);
  const auto k = sparse_conv4d_host::kernel_sizes(kernel_size);
  const int64_t K = k[0] * k[1] * k[2] * k[3], N = coords.size(0);
  const auto lopts = coords.options().dtype(at::kLong);
  if (N == 0) return {at::empty({0}, lopts), at::empty({0}, lopts), at::zeros({K + 1}, lopts)};
  const auto c = coords.to(at::kLong).contiguous();
  const auto ks = sparse_conv4d_host::key_space(c);
  const int64_t* cp = c.const_data_ptr<int64_t>();
  std::vector<int64_t> keys(N), order(N);
  for (int64_t n = 0; n < N; ++n) {
    int64_t key = 0;
    for (int d = 0; d < 5; ++d) key += cp[n * 5 + d] * ks.stride[d];
    keys[n] = key;
  }
  std::iota(order.begin(), order.end(), int64_t(0));
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
  std::vector<int64_t> sorted(N);
  for (int64_t n = 0; n < N; ++n) sorted[n] = keys[order[n]];
  for (int64_t n = 1; n < N; ++n) {
    if (sorted[n] == sorted[n - 1]) {
      const int64_t r = order[n];
      TORCH_CHECK(false, op, ": `coords` must have unique rows, got a duplicate of (", cp[r * 5], ", ", cp[r * 5 + 1],
                  ", ", cp[r * 5 + 2], ", ", cp[r * 5 + 3], ", ", cp[r * 5 + 4], ") at rows ", order[n - 1], " and ", r);
    }
  }
  std::vector<std::vector<int64_t>> ins(K), outs(K);
  at::parallel_for(0, K, 1, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      int64_t delta[5] = {0, 0, 0, 0, 0};
      int64_t rem = o;
      for (int d = 3; d >= 0; --d) {
        delta[d + 1] = rem % k[d] - k[d] / 2;
        rem /= k[d];
      }
      auto& vi = ins[o];
      auto& vo = outs[o];
      for (int64_t n = 0; n < N; ++n) {
        int64_t key = 0;
        bool inside = true;
        for (int d = 0; d < 5; ++d) {
          const int64_t x = cp[n * 5 + d] + delta[d];
          inside = inside && x >= 0 && x < ks.extent[d];
          key += x * ks.stride[d];
        }
        if (!inside) continue;
        const auto it = std::lower_bound(sorted.begin(), sorted.end(), key);
        if (it != sorted.end() && *it == key) {
          vi.push_back(order[it - sorted.begin()]);
          vo.push_back(n);
        }
      }
    }
  });
  auto ptr = at::empty({K + 1}, lopts);
  int64_t* pp = ptr.mutable_data_ptr<int64_t>();
  pp[0] = 0;
  for (int64_t o = 0; o < K; ++o) pp[o + 1] = pp[o] + static_cast<int64_t>(ins[o].size());
  auto in_rows = at::empty({pp[K]}, lopts), out_rows = at::empty({pp[K]}, lopts);
  int64_t* ip = in_rows.mutable_data_ptr<int64_t>();
  int64_t* op_ = out_rows.mutable_data_ptr<int64_t>();
  for (int64_t o = 0; o < K; ++o) {
    std::copy(ins[o].begin(), ins[o].end(), ip + pp[o]);
    std::copy(outs[o].begin(), outs[o].end(), op_ + pp[o]);
  }
  return {in_rows, out_rows, ptr};
}

namespace {

constexpr int64_t kThinChannels = 32;

bool thin_bf16(const at::Tensor& feats, const at::Tensor& weight) {
  return is_bf16(feats) && weight.dim() == 6 && weight.size(0) <= kThinChannels && weight.size(1) <= kThinChannels;
}

at::Tensor to_float(const at::Tensor& t) { return t.to(at::kFloat); }

// weight (Cout, Cin, k1..k4) -> (K, Cin, Cout) contiguous: slice o is the GEMM operand of offset o.
at::Tensor weight_per_offset(const at::Tensor& weight) {
  const int64_t Cout = weight.size(0), Cin = weight.size(1);
  return weight.permute({2, 3, 4, 5, 1, 0}).reshape({-1, Cin, Cout}).contiguous();
}

}  // namespace

at::Tensor sparse_conv4d_cpu(const at::Tensor& feats, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                             const at::Tensor& in_rows, const at::Tensor& out_rows, const at::Tensor& offsets_ptr) {
  check_float_or_bf16(feats, "semcorr::sparse_conv4d", "feats");
  sparse_conv4d_host::check_conv_args(feats, weight, bias, in_rows, out_rows, offsets_ptr,
                                      /*allow_half=*/is_bf16(feats));
  if (thin_bf16(feats, weight)) {
    const auto b = bias.has_value() ? std::optional<at::Tensor>(to_float(*bias)) : std::nullopt;
    return sparse_conv4d_cpu(to_float(feats), to_float(weight), b, in_rows, out_rows, offsets_ptr).to(at::kBFloat16);
  }
  const int64_t N = feats.size(0), Cout = weight.size(0);
  const auto ptr = sparse_conv4d_host::host_ptr(offsets_ptr, in_rows, out_rows, N);
  const auto acc = at::toOpMathType(feats.scalar_type());  // the sum over offsets: float32 for bfloat16
  auto out = bias.has_value() ? bias->view({1, Cout}).expand({N, Cout}).to(acc).contiguous()
                              : at::zeros({N, Cout}, feats.options().dtype(acc));
  if (N == 0 || Cout == 0 || in_rows.size(0) == 0) return out.to(feats.scalar_type());
  const auto f = feats.contiguous();
  const auto w = weight_per_offset(weight);
  const int64_t* p = ptr.const_data_ptr<int64_t>();
  for (int64_t o = 0; o + 1 < ptr.size(0); ++o) {
    if (p[o + 1] == p[o]) continue;
    const auto ir = in_rows.narrow(0, p[o], p[o + 1] - p[o]);
    const auto orr = out_rows.narrow(0, p[o], p[o + 1] - p[o]);
    out.index_add_(0, orr, at::mm(at::index_select(f, 0, ir), w[o]).to(acc));
  }
  return out.to(feats.scalar_type());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> sparse_conv4d_backward_cpu(
    const at::Tensor& grad, const at::Tensor& feats, const at::Tensor& weight, const at::Tensor& in_rows,
    const at::Tensor& out_rows, const at::Tensor& offsets_ptr) {
  constexpr const char* op = "semcorr::_sparse_conv4d_backward";
  check_float_or_bf16(feats, op, "feats");
  const auto k = sparse_conv4d_host::check_conv_args(feats, weight, std::nullopt, in_rows, out_rows, offsets_ptr,
                                                     /*allow_half=*/is_bf16(feats), op);
  if (thin_bf16(feats, weight)) {
    auto [gf, gw, gb] = sparse_conv4d_backward_cpu(to_float(grad), to_float(feats), to_float(weight), in_rows,
                                                   out_rows, offsets_ptr);
    return {gf.to(at::kBFloat16), gw.to(at::kBFloat16), gb.to(at::kBFloat16)};
  }
  const int64_t N = feats.size(0), Cin = feats.size(1), Cout = weight.size(0);
  sparse_conv4d_host::check_grad(grad, feats, Cout, op);
  const auto ptr = sparse_conv4d_host::host_ptr(offsets_ptr, in_rows, out_rows, N, op);
  const int64_t K = ptr.size(0) - 1;
  const auto acc = at::toOpMathType(feats.scalar_type());  // grad_feats sums over offsets: float32 for bf16
  auto grad_feats = at::zeros({N, Cin}, feats.options().dtype(acc));
  auto gw = at::zeros({K, Cin, Cout}, feats.options());
  const auto g = grad.contiguous();
  auto grad_bias = N > 0 ? g.sum(0, false, acc).to(feats.scalar_type()) : at::zeros({Cout}, feats.options());
  if (N > 0 && Cin > 0 && Cout > 0) {
    const auto f = feats.contiguous();
    const auto w = weight_per_offset(weight);
    const int64_t* p = ptr.const_data_ptr<int64_t>();
    for (int64_t o = 0; o < K; ++o) {
      if (p[o + 1] == p[o]) continue;
      const auto ir = in_rows.narrow(0, p[o], p[o + 1] - p[o]);
      const auto orr = out_rows.narrow(0, p[o], p[o + 1] - p[o]);
      const auto go = at::index_select(g, 0, orr);  // (n_o, Cout)
      grad_feats.index_add_(0, ir, at::mm(go, w[o].t()).to(acc));
      gw[o].copy_(at::mm(at::index_select(f, 0, ir).t(), go));
    }
  }
  auto grad_weight = gw.view({k[0], k[1], k[2], k[3], Cin, Cout}).permute({5, 4, 0, 1, 2, 3}).contiguous();
  return {grad_feats.to(feats.scalar_type()), grad_weight, grad_bias};
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("kernel_map4d", &kernel_map4d_cpu);
  m.impl("sparse_conv4d", &sparse_conv4d_cpu);
  m.impl("_sparse_conv4d_backward", &sparse_conv4d_backward_cpu);
}

}  // namespace semcorr
