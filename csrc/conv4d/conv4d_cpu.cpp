// CPU kernels of conv4d.
//
// A 4D convolution is a sum over the taps of its leading F dims (F = 1 or 2, "folded" dims) of
// (4-F)-D convolutions of slices. The taps are folded into the channels of ONE batched 3-D (F = 1) or
// 2-D (F = 2) ATen convolution (oneDNN / MKL-DNN on CPU), in one of two ways:
//
//  * gather  (taps -> input channels): for a chunk of output positions of the folded dims, stack the
//    T = k1 (x k2) input slices each of them reads as T*Cin channels; one convolution with the weight
//    reshaped to (Cout, T*Cin, inner kernel) gives the output slices directly (bias fused).
//    Good when Cin is small relative to Cout (1 -> 16) or for square layers (16 -> 16).
//  * scatter (taps -> output channels): for a chunk of input positions of the folded dims, one
//    convolution with the weight reshaped to (T*Cout, Cin, inner kernel) gives every slice's
//    contribution to each of the T output slices it feeds; a parallel shift-and-add accumulates them.
//    Good for thin outputs (16 -> 1), which oneDNN runs poorly as Cout = 1 convolutions.
//
// The folded dims are processed in chunks sized so that the workspace (stacked inputs + the chunk's
// convolution output) stays O(k1 x one 3-D slice of the volume): no im2col of the whole volume, no
// padded or permuted copy of the input. The chunk loop runs in C++, each convolution uses all threads.
//
// Backward: grad_x is conv4d(grad, flip(weight)^T, k - 1 - pad) (the same kernels); grad_weight is the
// weight gradient of the same batched convolutions (at::convolution_backward), accumulated over chunks;
// grad_bias a sum. Everything is deterministic.
//
// bfloat16: the convolutions run in bfloat16 (oneDNN, float32 accumulation); the sums across convolutions (the
// scatter mode's shift-and-add, the weight gradient over chunks) accumulate in float32 and are rounded once.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/convolution.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/checks_cpu.h"
#include "conv4d/conv4d.h"
#include "conv4d/conv4d_host.h"

namespace semcorr {
namespace {

using conv4d_host::Geometry;

enum class Mode { gather, scatter };

// How one call is computed; see the file comment.
struct Plan {
  Mode mode = Mode::gather;
  int fold = 1;  // F: number of leading spatial dims whose taps are folded into channels
  int64_t T = 1;                  // taps of the folded dims
  int64_t outer_in = 1, outer_out = 1;  // positions of the folded dims (input / output)
  int64_t inner_in = 1, inner_out = 1;  // positions of the remaining dims (input / output)
  std::vector<int64_t> inner_in_shape, inner_k, inner_pad, ones, zeros;
  int64_t chunk = 1;  // folded positions per convolution call
};

Plan make_plan(const Geometry& g) {
  Plan p;
  // Defaults measured on a 2-core AVX2 machine at 15^4..25^4, k = 5 (benchmarks/bench_consensus.py).
  // Thin outputs (16 -> 1): scatter over the taps of dims 1-2 (a 2-D convolution with k1*k2*Cout outputs,
  // 7x the baseline's throughput); otherwise gather over the taps of dim 1 (a 3-D convolution with k1*Cin
  // inputs).
  if (g.Cout * 4 <= g.Cin) {
    p.mode = Mode::scatter, p.fold = 2;
  } else {
    p.mode = Mode::gather, p.fold = 1;
  }
  // Developer override for tuning: SEMCORR_CONV4D_PLAN=gather1|gather2|scatter1|scatter2.
  if (const char* env = std::getenv("SEMCORR_CONV4D_PLAN")) {
    const std::string s(env);
    if (s.size() == 7 && s.compare(0, 6, "gather") == 0) p.mode = Mode::gather, p.fold = s[6] == '2' ? 2 : 1;
    if (s.size() == 8 && s.compare(0, 7, "scatter") == 0) p.mode = Mode::scatter, p.fold = s[7] == '2' ? 2 : 1;
  }
  const int F = p.fold;
  for (int d = 0; d < 4; ++d) {
    if (d < F) {
      p.T *= g.k[d], p.outer_in *= g.in[d], p.outer_out *= g.out[d];
    } else {
      p.inner_in *= g.in[d], p.inner_out *= g.out[d];
      p.inner_in_shape.push_back(g.in[d]);
      p.inner_k.push_back(g.k[d]);
      p.inner_pad.push_back(g.pad[d]);
      p.ones.push_back(1);
      p.zeros.push_back(0);
    }
  }
  // Workspace budget: k1 3-D slices of the wider side (the "O(k1 x slice)" of the spec), at least 1 Mi
  // elements so that small volumes run in one call.
  const int64_t slice3 = g.in[1] * g.in[2] * g.in[3];
  const int64_t budget = std::max<int64_t>(g.B * g.k[0] * std::max(g.Cin, g.Cout) * slice3, 1 << 20);
  const int64_t per = p.mode == Mode::gather ? g.B * (p.T * g.Cin * p.inner_in + g.Cout * p.inner_out)
                                             : g.B * (g.Cin * p.inner_in + p.T * g.Cout * p.inner_out);
  const int64_t outer = p.mode == Mode::gather ? p.outer_out : p.outer_in;
  p.chunk = std::clamp<int64_t>(budget / std::max<int64_t>(per, 1), 1, std::max<int64_t>(outer, 1));
  if (const char* env = std::getenv("SEMCORR_CONV4D_CHUNK")) {
    const int64_t c = std::atoll(env);
    if (c > 0) p.chunk = std::min<int64_t>(c, std::max<int64_t>(outer, 1));
  }
  return p;
}

// Folded-dim coordinates of a flat folded index (F = 1: (o, 0); F = 2: (o / n1, o % n1)).
inline void decode(int64_t o, int F, int64_t n1, int64_t& c0, int64_t& c1) {
  if (F == 1) {
    c0 = o, c1 = 0;
  } else {
    c0 = o / n1, c1 = o % n1;
  }
}

// Weight reshapes between (Cout, Cin, k1, k2, k3, k4) and the folded convolution weights.
at::Tensor fold_weight(const at::Tensor& w, const Plan& p) {
  const int64_t Cout = w.size(0), Cin = w.size(1);
  std::vector<int64_t> shape;
  at::Tensor v;
  if (p.mode == Mode::gather) {
    v = p.fold == 1 ? w.permute({0, 2, 1, 3, 4, 5}) : w.permute({0, 2, 3, 1, 4, 5});
    shape = {Cout, p.T * Cin};
  } else {
    v = p.fold == 1 ? w.permute({2, 0, 1, 3, 4, 5}) : w.permute({2, 3, 0, 1, 4, 5});
    shape = {p.T * Cout, Cin};
  }
  shape.insert(shape.end(), p.inner_k.begin(), p.inner_k.end());
  return v.contiguous().view(shape);
}

at::Tensor unfold_weight(const at::Tensor& wf, const Geometry& g, const Plan& p) {
  const int64_t k1 = g.k[0], k2 = g.k[1], k3 = g.k[2], k4 = g.k[3], Cin = g.Cin, Cout = g.Cout;
  if (p.mode == Mode::gather) {
    if (p.fold == 1) return wf.view({Cout, k1, Cin, k2, k3, k4}).permute({0, 2, 1, 3, 4, 5}).contiguous();
    return wf.view({Cout, k1, k2, Cin, k3, k4}).permute({0, 3, 1, 2, 4, 5}).contiguous();
  }
  if (p.fold == 1) return wf.view({k1, Cout, Cin, k2, k3, k4}).permute({1, 2, 0, 3, 4, 5}).contiguous();
  return wf.view({k1, k2, Cout, Cin, k3, k4}).permute({2, 3, 0, 1, 4, 5}).contiguous();
}

// dst[(b, t), (tap, c), inner] = src[b, c, folded slice s, inner], or 0 where s is outside src's ext[0] x ext[1]
// outer slices: one chunk of n slices of the folded convolution's gather (im2col along the outer dims), with
// s = i + sign (tap - pad) and i = the folded position h0 + t on the other side (size other1 along dim 1).
// Rows parallel: each task writes its own rows.
template <typename scalar_t>
void gather_slices(const scalar_t* src, scalar_t* dst, const Geometry& g, const Plan& p, int64_t C, int64_t inner,
                   int64_t outer, const int64_t* ext, int64_t other1, int64_t sign, int64_t h0, int64_t n) {
  const int F = p.fold;
  at::parallel_for(0, g.B * n * p.T * C, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t c = r % C, tap = (r / C) % p.T, t = (r / C / p.T) % n, b = r / C / p.T / n;
      int64_t i0, i1, a0, a1;
      decode(h0 + t, F, other1, i0, i1);
      decode(tap, F, g.k[1], a0, a1);
      const int64_t s0 = i0 + sign * (a0 - g.pad[0]), s1 = F == 2 ? i1 + sign * (a1 - g.pad[1]) : 0;
      scalar_t* d = dst + r * inner;
      if (s0 < 0 || s0 >= ext[0] || s1 < 0 || (F == 2 && s1 >= ext[1])) {
        std::memset(d, 0, sizeof(scalar_t) * inner);
      } else {
        const int64_t sf = F == 2 ? s0 * ext[1] + s1 : s0;
        std::memcpy(d, src + ((b * C + c) * outer + sf) * inner, sizeof(scalar_t) * inner);
      }
    }
  });
}

// X[(b, t), (tap, c), inner] = x[b, c, outer output (o0 + t) + tap - pad] or 0 outside the volume.
template <typename scalar_t>
void gather_inputs(const scalar_t* x, scalar_t* X, const Geometry& g, const Plan& p, int64_t o0, int64_t n) {
  gather_slices(x, X, g, p, g.Cin, p.inner_in, p.outer_in, g.in.data(), g.out[1], /*sign=*/1, o0, n);
}

// Xs[(b, t), c, inner] = x[b, c, outer input h0 + t].
template <typename scalar_t>
void slice_inputs(const scalar_t* x, scalar_t* X, const Geometry& g, const Plan& p, int64_t h0, int64_t n) {
  const int64_t rows = g.B * n * g.Cin, inner = p.inner_in;
  at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t c = r % g.Cin, t = (r / g.Cin) % n, b = r / g.Cin / n;
      std::memcpy(X + r * inner, x + ((b * g.Cin + c) * p.outer_in + h0 + t) * inner, sizeof(scalar_t) * inner);
    }
  });
}

// out[b, o, folded output i, inner] += Y[(b, t), (tap, o), inner] for every input slice h = h0 + t of the
// chunk and tap with i = h - tap + pad. Parallel over output slices: no two tasks write the same memory.
template <typename scalar_t, typename acc_t>
void scatter_add(const scalar_t* Y, acc_t* out, const Geometry& g, const Plan& p, int64_t h0, int64_t n) {
  const int F = p.fold;
  const int64_t inner = p.inner_out;
  at::parallel_for(0, g.B * p.outer_out, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bo = begin; bo < end; ++bo) {
      const int64_t b = bo / p.outer_out, o = bo % p.outer_out;
      int64_t i0, i1;
      decode(o, F, g.out[1], i0, i1);
      for (int64_t tap = 0; tap < p.T; ++tap) {
        int64_t a0, a1;
        decode(tap, F, g.k[1], a0, a1);
        const int64_t hh0 = i0 + a0 - g.pad[0], hh1 = F == 2 ? i1 + a1 - g.pad[1] : 0;
        if (hh0 < 0 || hh0 >= g.in[0] || hh1 < 0 || (F == 2 && hh1 >= g.in[1])) continue;
        const int64_t t = (F == 2 ? hh0 * g.in[1] + hh1 : hh0) - h0;
        if (t < 0 || t >= n) continue;
        for (int64_t c = 0; c < g.Cout; ++c) {
          const scalar_t* src = Y + (((b * n + t) * p.T + tap) * g.Cout + c) * inner;
          acc_t* dst = out + ((b * g.Cout + c) * p.outer_out + o) * inner;
          for (int64_t e = 0; e < inner; ++e) dst[e] += static_cast<acc_t>(src[e]);
        }
      }
    }
  });
}

// gY[(b, t), (tap, o), inner] = grad[b, o, folded output h0 + t - tap + pad] or 0: the gradient of the
// scatter convolution's output.
template <typename scalar_t>
void gather_grads(const scalar_t* grad, scalar_t* gY, const Geometry& g, const Plan& p, int64_t h0, int64_t n) {
  gather_slices(grad, gY, g, p, g.Cout, p.inner_out, p.outer_out, g.out.data(), g.in[1], /*sign=*/-1, h0, n);
}

std::vector<int64_t> batch_shape(int64_t N, int64_t C, const std::vector<int64_t>& inner) {
  std::vector<int64_t> s{N, C};
  s.insert(s.end(), inner.begin(), inner.end());
  return s;
}

// out = conv4d(x, w, bias, pad) for a contiguous x; pad may be negative (crop).
at::Tensor forward_impl(at::Tensor x, const at::Tensor& w, const std::optional<at::Tensor>& bias,
                        std::array<int64_t, 4> pad) {
  for (int d = 0; d < 4; ++d) {
    if (pad[d] < 0) {
      x = x.narrow(2 + d, -pad[d], x.size(2 + d) + 2 * pad[d]);
      pad[d] = 0;
    }
  }
  x = x.contiguous();
  const Geometry g = conv4d_host::geometry(x, w, pad, "semcorr::conv4d");
  const bool has_bias = bias.has_value() && bias->defined();
  auto out = at::empty(g.out_shape(), x.options());
  if (out.numel() == 0) return out;
  if (g.Cin == 0) {
    if (has_bias) out.copy_(bias->view({1, g.Cout, 1, 1, 1, 1}).expand_as(out));
    else out.zero_();
    return out;
  }
  const Plan p = make_plan(g);
  const auto wf = fold_weight(w.contiguous(), p);
  const int64_t outer = p.mode == Mode::gather ? p.outer_out : p.outer_in;
  const int64_t n_max = p.chunk;
  at::Tensor X = p.mode == Mode::gather ? at::empty({g.B * n_max * p.T * g.Cin * p.inner_in}, x.options())
                                        : at::empty({g.B * n_max * g.Cin * p.inner_in}, x.options());
  // the scatter mode's sums over taps: in float32 for bfloat16 (acc is out itself otherwise)
  at::Tensor acc =
      is_bf16(x) && p.mode == Mode::scatter ? at::empty(out.sizes(), out.options().dtype(at::kFloat)) : out;
  if (p.mode == Mode::scatter) {
    if (has_bias) acc.copy_(bias->view({1, g.Cout, 1, 1, 1, 1}).expand_as(acc));
    else acc.zero_();
  }
  auto out4 = out.view({g.B, g.Cout, p.outer_out, p.inner_out});
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "conv4d_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    for (int64_t o0 = 0; o0 < outer; o0 += n_max) {
      const int64_t n = std::min(n_max, outer - o0);
      if (p.mode == Mode::gather) {
        gather_inputs<scalar_t>(x.const_data_ptr<scalar_t>(), X.mutable_data_ptr<scalar_t>(), g, p, o0, n);
        const auto Xv = X.narrow(0, 0, g.B * n * p.T * g.Cin * p.inner_in)
                            .view(batch_shape(g.B * n, p.T * g.Cin, p.inner_in_shape));
        const auto Y = at::convolution(Xv, wf, has_bias ? bias : std::nullopt, p.ones, p.inner_pad, p.ones, false,
                                       p.zeros, 1);
        out4.narrow(2, o0, n).copy_(Y.view({g.B, n, g.Cout, p.inner_out}).permute({0, 2, 1, 3}));
      } else {
        slice_inputs<scalar_t>(x.const_data_ptr<scalar_t>(), X.mutable_data_ptr<scalar_t>(), g, p, o0, n);
        const auto Xv = X.narrow(0, 0, g.B * n * g.Cin * p.inner_in).view(batch_shape(g.B * n, g.Cin, p.inner_in_shape));
        const auto Y = at::convolution(Xv, wf, std::nullopt, p.ones, p.inner_pad, p.ones, false, p.zeros, 1)
                           .contiguous();
        scatter_add<scalar_t, acc_t>(Y.const_data_ptr<scalar_t>(), acc.mutable_data_ptr<acc_t>(), g, p, o0, n);
      }
    }
  });
  if (!acc.is_same(out)) out.copy_(acc);
  return out;
}

// grad_weight of conv4d(x, w, ., pad) for contiguous x and grad, pad >= 0.
at::Tensor weight_grad_impl(const at::Tensor& grad, const at::Tensor& x, const at::Tensor& w, const Geometry& g) {
  const Plan p = make_plan(g);
  const auto wf = fold_weight(w.contiguous(), p);
  auto gwf = at::zeros_like(wf, wf.options().dtype(at::toOpMathType(wf.scalar_type())));  // float32 sums for bf16
  const int64_t outer = p.mode == Mode::gather ? p.outer_out : p.outer_in;
  const int64_t n_max = p.chunk;
  at::Tensor X = p.mode == Mode::gather ? at::empty({g.B * n_max * p.T * g.Cin * p.inner_in}, x.options())
                                        : at::empty({g.B * n_max * g.Cin * p.inner_in}, x.options());
  at::Tensor G = p.mode == Mode::gather ? at::empty({g.B * n_max * g.Cout * p.inner_out}, x.options())
                                        : at::empty({g.B * n_max * p.T * g.Cout * p.inner_out}, x.options());
  const auto grad4 = grad.view({g.B, g.Cout, p.outer_out, p.inner_out});
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "conv4d_backward_cpu", [&] {
    for (int64_t o0 = 0; o0 < outer; o0 += n_max) {
      const int64_t n = std::min(n_max, outer - o0);
      at::Tensor Xv, Gv;
      if (p.mode == Mode::gather) {
        gather_inputs<scalar_t>(x.const_data_ptr<scalar_t>(), X.mutable_data_ptr<scalar_t>(), g, p, o0, n);
        Xv = X.narrow(0, 0, g.B * n * p.T * g.Cin * p.inner_in)
                 .view(batch_shape(g.B * n, p.T * g.Cin, p.inner_in_shape));
        Gv = G.narrow(0, 0, g.B * n * g.Cout * p.inner_out).view({g.B, n, g.Cout, p.inner_out});
        Gv.copy_(grad4.narrow(2, o0, n).permute({0, 2, 1, 3}));
        Gv = Gv.view(batch_shape(g.B * n, g.Cout, std::vector<int64_t>(g.out.begin() + p.fold, g.out.end())));
      } else {
        slice_inputs<scalar_t>(x.const_data_ptr<scalar_t>(), X.mutable_data_ptr<scalar_t>(), g, p, o0, n);
        Xv = X.narrow(0, 0, g.B * n * g.Cin * p.inner_in).view(batch_shape(g.B * n, g.Cin, p.inner_in_shape));
        gather_grads<scalar_t>(grad.const_data_ptr<scalar_t>(), G.mutable_data_ptr<scalar_t>(), g, p, o0, n);
        Gv = G.narrow(0, 0, g.B * n * p.T * g.Cout * p.inner_out)
                 .view(batch_shape(g.B * n, p.T * g.Cout, std::vector<int64_t>(g.out.begin() + p.fold, g.out.end())));
      }
      const auto gw = std::get<1>(at::convolution_backward(Gv, Xv, wf, std::nullopt, p.ones, p.inner_pad, p.ones,
                                                           false, p.zeros, 1, {false, true, false}));
      gwf.add_(gw);
    }
  });
  return unfold_weight(gwf, g, p).to(x.scalar_type());
}

}  // namespace

at::Tensor conv4d_cpu(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                      at::IntArrayRef padding, std::optional<at::ScalarType> out_dtype) {
  check_float_or_bf16(x, "semcorr::conv4d", "x");
  conv4d_host::check_args(x, weight, bias, padding, /*allow_half=*/is_bf16(x));
  at::AutoDispatchBelowADInplaceOrView guard;  // the ATen convolutions inside are not part of the graph
  // float32 out of bfloat16: the float32 kernels on the operands upcast (exact products, float32 sums).
  const auto in = conv4d_host::operands_in(x, weight, bias, out_dtype_of(x, out_dtype, "semcorr::conv4d"));
  return forward_impl(in.x.contiguous(), in.weight, in.bias, conv4d_host::padding4(padding, "semcorr::conv4d"));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv4d_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                                   const at::Tensor& weight,
                                                                   at::IntArrayRef padding,
                                                                   std::array<bool, 3> output_mask) {
  check_float_or_bf16(x, "semcorr::_conv4d_backward", "x");
  const Geometry g = conv4d_host::check_backward_args(grad, x, weight, padding, /*allow_half=*/is_bf16(x));
  at::AutoDispatchBelowADInplaceOrView guard;
  at::Tensor gx, gw, gb;
  const bool empty = grad.numel() == 0 || x.numel() == 0;
  const auto gc = grad.to(x.scalar_type()).contiguous();  // a float32 grad (float32 out_dtype) runs in x's dtype
  if (output_mask[0] && !empty && g.Cin > 0) {
    gx = forward_impl(gc, conv4d_host::transposed_weight(weight), std::nullopt, conv4d_host::transposed_padding(g));
  } else {
    gx = at::zeros_like(x, at::MemoryFormat::Contiguous);
  }
  if (output_mask[1] && !empty && g.Cin > 0) {
    gw = weight_grad_impl(gc, x.contiguous(), weight, g);
  } else {
    gw = at::zeros_like(weight, at::MemoryFormat::Contiguous);
  }
  if (output_mask[2] && !empty) {
    // summed in float32 for bfloat16: ATen's multi-threaded reduction combines partial sums in the output dtype
    gb = gc.sum({0, 2, 3, 4, 5}, false, at::toOpMathType(gc.scalar_type())).to(gc.scalar_type());
  } else {
    gb = at::zeros({g.Cout}, x.options());
  }
  return {gx, gw, gb};
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("conv4d", &conv4d_cpu);
  m.impl("_conv4d_backward", &conv4d_backward_cpu);
}

}  // namespace semcorr
