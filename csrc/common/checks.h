// Argument checks shared by every op's host code. Each message names the argument and says what was
// expected and what was given, so a user can fix the call without reading our source.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

namespace semcorr {

inline std::string shape_str(const at::Tensor& t) { return c10::str(t.sizes()); }

// `name` must have `dim` dimensions; `layout` spells them out for the message, e.g. "(B, C, H, W)".
inline void check_dim(const at::Tensor& t, int64_t dim, const char* op, const char* name, const char* layout) {
  TORCH_CHECK(t.dim() == dim, op, ": `", name, "` must be a ", dim, "-D tensor ", layout, ", got shape ",
              shape_str(t));
}

inline void check_float(const at::Tensor& t, const char* op, const char* name, bool allow_half) {
  const auto s = t.scalar_type();
  const bool ok = s == at::kFloat || s == at::kDouble ||
                  (allow_half && (s == at::kHalf || s == at::kBFloat16));
  TORCH_CHECK(ok, op, ": `", name, "` must be a floating tensor (float32/float64",
              allow_half ? "/float16/bfloat16" : "", "), got ", s);
}

inline void check_same_dtype(const at::Tensor& a, const at::Tensor& b, const char* op, const char* na,
                             const char* nb) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), op, ": `", na, "` and `", nb,
              "` must have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
}

// The output dtype of a GEMM-shaped op (corr4d, conv4d) whose input `t` has the op's dtype, given its `out_dtype`
// argument: the input dtype when `out_dtype` is None or that dtype; float32 for float16/bfloat16 inputs asked for
// float32 (their products exact, summed and returned in float32: a reduced-precision volume ties in its argmax,
// docs/OPS.md#precision); anything else raises, naming `out_dtype`.
inline at::ScalarType out_dtype_of(const at::Tensor& t, std::optional<at::ScalarType> out_dtype, const char* op) {
  const auto s = t.scalar_type();
  if (!out_dtype.has_value() || *out_dtype == s) return s;
  TORCH_CHECK(*out_dtype == at::kFloat && (s == at::kHalf || s == at::kBFloat16), op,
              ": `out_dtype` must be None, the input dtype (", s,
              ") or float32 with float16/bfloat16 inputs, got ", *out_dtype);
  return at::kFloat;
}

// `t` (`grad` or `out` of a backward) has the dtype of the op's input `input`, or float32 when that input is
// float16/bfloat16 (the output of a float32 out_dtype forward, and its gradient).
inline void check_output_dtype(const at::Tensor& t, const at::Tensor& input, const char* op, const char* name,
                               const char* input_name) {
  const auto s = input.scalar_type();
  TORCH_CHECK(t.scalar_type() == s || (t.scalar_type() == at::kFloat && (s == at::kHalf || s == at::kBFloat16)),
              op, ": `", name, "` must have the dtype of `", input_name, "` (", s,
              ") or float32 for float16/bfloat16 inputs, got ", t.scalar_type());
}

inline void check_same_device(const at::Tensor& a, const at::Tensor& b, const char* op, const char* na,
                              const char* nb) {
  TORCH_CHECK(a.device() == b.device(), op, ": `", na, "` and `", nb,
              "` must be on the same device, got ", a.device(), " and ", b.device());
}

// The checks two operands of one computation share, in this order: their ranks (`layout_a` / `layout_b` spell the
// dimensions out for the message), a floating dtype (`a`'s; `b` must match it) and the same device.
inline void check_operands(const at::Tensor& a, int64_t dim_a, const char* layout_a, const at::Tensor& b,
                           int64_t dim_b, const char* layout_b, const char* op, const char* na, const char* nb,
                           bool allow_half) {
  check_dim(a, dim_a, op, na, layout_a);
  check_dim(b, dim_b, op, nb, layout_b);
  check_float(a, op, na, allow_half);
  check_same_dtype(a, b, op, na, nb);
  check_same_device(a, b, op, na, nb);
}

// The two feature maps of a correlation (corr4d, corr4d_topk): src (B, C, Hs, Ws) and tgt (B, C, Ht, Wt).
inline void check_feature_maps(const at::Tensor& src, const at::Tensor& tgt, const char* op, bool allow_half) {
  check_operands(src, 4, "(B, C, Hs, Ws)", tgt, 4, "(B, C, Ht, Wt)", op, "src", "tgt", allow_half);
  TORCH_CHECK(src.size(0) == tgt.size(0), op, ": `src` and `tgt` must have the same batch size, got shapes ",
              shape_str(src), " and ", shape_str(tgt));
  TORCH_CHECK(src.size(1) == tgt.size(1), op, ": `src` and `tgt` must have the same number of channels, got "
              "shapes ", shape_str(src), " and ", shape_str(tgt));
}

// `grad` of an op whose gradient has the shape, dtype and device of its input `name`.
inline void check_grad_like(const at::Tensor& grad, const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(grad.sizes() == t.sizes(), op, ": `grad` must have the shape of `", name, "` ", shape_str(t),
              ", got ", shape_str(grad));
  check_same_dtype(grad, t, op, "grad", name);
  check_same_device(grad, t, op, "grad", name);
}

inline void check_size(const at::Tensor& t, int64_t d, int64_t expected, const char* op, const char* name,
                       const char* what) {
  TORCH_CHECK(t.size(d) == expected, op, ": `", name, "` dim ", d, " (", what, ") must be ", expected,
              ", got shape ", shape_str(t));
}

// The most elements an op allocates for one tensor whose size comes from its integer arguments (kernel sizes,
// `n`, `k`, bin counts, `corr_size`, ...) rather than from an input that already exists: 2^31 - 1, the int32
// index range that the CUDA kernels' launch sizes and several index computations assume. Without this check an
// absurd argument makes the allocator ask for terabytes (or overflows int64), and an allocation that the OS
// overcommits gets the process killed instead of raising.
constexpr int64_t kMaxAllocNumel = (int64_t(1) << 31) - 1;

// The most bins a Hough space (hough_match, hough_vote) may have. Every pair votes into two histograms of this
// many bins (votes and, in the backward, grad votes; per thread chunk in double on the CPU), so the bin count
// sets memory directly. HPF's 8192 cells give ~8.4k bins; 2^24 is 2000x that.
constexpr int64_t kMaxHoughBins = int64_t(1) << 24;

// The number of elements of a tensor of shape `dims` (each >= 0), computed without overflow; raises naming
// `arg` (the argument that sets the size) when it exceeds kMaxAllocNumel.
inline int64_t checked_numel(at::IntArrayRef dims, const char* op, const char* arg) {
  int64_t n = 1;
  bool over = false;
  for (const int64_t d : dims) {
    TORCH_CHECK(d >= 0, op, ": `", arg, "` gives a negative size in ", dims);
    if (d == 0) return 0;
    over = over || __builtin_mul_overflow(n, d, &n) || n > kMaxAllocNumel;
  }
  TORCH_CHECK(!over, op, ": `", arg, "` asks for a tensor of shape ", dims, ", more than the ", kMaxAllocNumel,
              " (2^31 - 1) elements an op allocates from its arguments; check `", arg, "`");
  return n;
}

}  // namespace semcorr
