// Argument checks shared by every op's host code. Each message names the argument and says what was
// expected and what was given, so a user can fix the call without reading our source.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <initializer_list>
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

inline void check_same_device(const at::Tensor& a, const at::Tensor& b, const char* op, const char* na,
                              const char* nb) {
  TORCH_CHECK(a.device() == b.device(), op, ": `", na, "` and `", nb,
              "` must be on the same device, got ", a.device(), " and ", b.device());
}

inline void check_size(const at::Tensor& t, int64_t d, int64_t expected, const char* op, const char* name,
                       const char* what) {
  TORCH_CHECK(t.size(d) == expected, op, ": `", name, "` dim ", d, " (", what, ") must be ", expected,
              ", got shape ", shape_str(t));
}

}  // namespace semcorr
