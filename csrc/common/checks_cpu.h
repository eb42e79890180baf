// The dtype check of the CPU kernels that also take bfloat16 (the GEMM-shaped ops and the window copies; see
// docs/OPS.md#precision). They run their GEMMs in bfloat16 through ATen (oneDNN, float32 accumulation) and
// everything else in float32, so float16 is refused: the CPU has no fast float16 GEMM to justify a third path.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace semcorr {

inline bool is_bf16(const at::Tensor& t) { return t.scalar_type() == at::kBFloat16; }

inline void check_float_or_bf16(const at::Tensor& t, const char* op, const char* name) {
  const auto s = t.scalar_type();
  TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kBFloat16, op, ": `", name,
              "` must be a floating tensor (float32/float64/bfloat16), got ", s);
}

}  // namespace semcorr
