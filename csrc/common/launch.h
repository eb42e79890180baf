// Torch-aware launch helpers for the launch sequences and CUDA entries (csrc/<op>/<op>_launch.h), which run on
// a GPU (<op>_cuda.cu) and, in tests, on the host emulator (<op>_emu.cpp).
// Include after torch headers and before nothing else of ours that needs simt.h first.
#pragma once
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#ifdef SC_EMULATION
#include "common/simt.h"
#define SEMCORR_LAUNCH_CHECK() ((void)0)
#else
#include <c10/cuda/CUDAException.h>
#include "common/simt.h"
#define SEMCORR_LAUNCH_CHECK() C10_CUDA_KERNEL_LAUNCH_CHECK()
#endif

namespace semcorr {

// The most blocks a grid-stride launch uses (`cuda_cap` on a GPU). Under emulation the test setting
// sc_emu::set_launch_limits may lower it, so the grid-stride loops run on tiny inputs.
inline int64_t sc_grid_cap(int64_t cuda_cap) {
#ifdef SC_EMULATION
  const int64_t c = ::sc_emu::settings().max_grid_blocks.load();
  return c > 0 ? std::min(cuda_cap, c) : cuda_cap;
#else
  return cuda_cap;
#endif
}

// The most elements one chunk of a chunked launch sequence holds (`cuda_cap` on a GPU), lowered the same way.
inline int64_t sc_chunk_cap(int64_t cuda_cap) {
#ifdef SC_EMULATION
  const int64_t c = ::sc_emu::settings().max_chunk_elements.load();
  return c > 0 ? std::min(cuda_cap, c) : cuda_cap;
#else
  return cuda_cap;
#endif
}

#ifndef SC_EMULATION
// The device of a CUDA entry point's guard (*_cuda.cu): `t`'s device when it is a CUDA tensor, none otherwise.
// The guard is set before the entry's argument checks run, so a CPU tensor that reached the CUDA kernel
// (because another argument is on the GPU) must not trip the guard: the op's device check refuses it by name.
inline std::optional<c10::Device> cuda_device_of(const at::Tensor& t) {
  return t.is_cuda() ? std::optional<c10::Device>(t.device()) : std::nullopt;
}
#endif

}  // namespace semcorr
