// Which GEMM path a launch takes (tensor cores or the exact float32 SIMT kernel), shared by the CUDA host glue and
// the emulator bindings through the <op>_launch.h files. Include after torch headers (it includes common/launch.h).
//
//   float16 / bfloat16 input          -> mma.sync m16n8k16 .f16 / .bf16, float32 accumulation
//   float32 input, TF32 allowed       -> mma.sync m16n8k8 .tf32 (inputs rounded to tf32), float32 accumulation
//   float32 with TF32 disallowed, float64 -> the SIMT kernel (exact float32 / float64 arithmetic)
//   float32 holding float16/bfloat16 values (Tf32Switch::exact_inputs) -> .tf32 whatever the switch (exact products)
// "TF32 allowed" follows PyTorch's own switches: matmul-like ops (corr4d, corr4d_topk, the gather GEMM) read
// torch.backends.cuda.matmul.allow_tf32 / torch.set_float32_matmul_precision (at::globalContext().allowTF32CuBLAS()),
// convolutions (conv4d, sparse_conv4d) read torch.backends.cudnn.allow_tf32 (allowTF32CuDNN()).
// Tensor cores also need the device: compute capability >= 8.0 on a GPU (the kernels hold no mma code below
// sm_80); under emulation the test setting semcorr_ext._emu.set_tensor_cores(True), off by default.
// Contract (dtypes, switches, accuracy bounds): docs/OPS.md#precision.
#pragma once
#include <ATen/Context.h>
#include <c10/core/ScalarType.h>

#include "common/launch.h"
#include "common/mma.cuh"

namespace semcorr {

// exact_inputs: float32 operands that are float16/bfloat16 values upcast (a float32 out_dtype call on reduced
// inputs). TF32 keeps float32's 8-bit exponent and 10 explicit mantissa bits, at least bfloat16's 7 and float16's
// 10 (float16's exponent range lies inside float32's), so rounding them to TF32 is the identity: the tensor cores
// multiply them exactly and the user's TF32 switch, which trades float32 precision, has nothing to decide.
enum class Tf32Switch { matmul, conv, exact_inputs };

inline bool tensor_cores_available() {
#ifdef SC_EMULATION
  return ::sc_emu::settings().tensor_cores.load();
#else
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
  return major >= 8;
#endif
}

// The mma kind for input dtype `t`, or false when the SIMT kernel must run.
inline bool pick_tensor_core_kind(at::ScalarType t, Tf32Switch sw, MmaKind* kind) {
  if (t == at::kHalf) *kind = MmaKind::f16;
  else if (t == at::kBFloat16) *kind = MmaKind::bf16;
  else if (t == at::kFloat) *kind = MmaKind::tf32;
  else return false;
  if (*kind == MmaKind::tf32 && sw != Tf32Switch::exact_inputs) {
    const auto& ctx = at::globalContext();
    if (!(sw == Tf32Switch::matmul ? ctx.allowTF32CuBLAS() : ctx.allowTF32CuDNN())) return false;
  }
  return tensor_cores_available();
}

// The tensor-core branch of a launch sequence: when pick_tensor_core_kind chooses a kind, calls
// launch.template operator()<kind, scalar_t>() with that kind's input type (float for tf32, at::Half, at::BFloat16)
// and returns true; returns false (launching nothing) when the SIMT kernel must run. Callers pass a template
// lambda: [&]<MmaKind kind, typename scalar_t>() { some_tc<kind, scalar_t>(...); }.
template <typename Launch>
inline bool launch_tensor_cores(at::ScalarType t, Tf32Switch sw, Launch&& launch) {
  MmaKind kind;
  if (!pick_tensor_core_kind(t, sw, &kind)) return false;
  if (kind == MmaKind::tf32) launch.template operator()<MmaKind::tf32, float>();
  else if (kind == MmaKind::f16) launch.template operator()<MmaKind::f16, at::Half>();
  else launch.template operator()<MmaKind::bf16, at::BFloat16>();
  return true;
}

}  // namespace semcorr
