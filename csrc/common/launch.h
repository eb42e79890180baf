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

// sc_grid_cap: the most blocks a grid-stride launch uses; sc_chunk_cap: the most elements one chunk of a chunked
// launch sequence holds. `cuda_cap` on a GPU; under emulation the test setting sc_emu::set_launch_limits may lower
// them (a limit > 0), so the grid-stride loops and the chunking run on tiny inputs.
#ifdef SC_EMULATION
inline int64_t sc_lowered_cap(int64_t cuda_cap, int64_t limit) {
  return limit > 0 ? std::min(cuda_cap, limit) : cuda_cap;
}
inline int64_t sc_grid_cap(int64_t cuda_cap) {
  return sc_lowered_cap(cuda_cap, ::sc_emu::settings().max_grid_blocks.load());
}
inline int64_t sc_chunk_cap(int64_t cuda_cap) {
  return sc_lowered_cap(cuda_cap, ::sc_emu::settings().max_chunk_elements.load());
}
#else
inline int64_t sc_grid_cap(int64_t cuda_cap) { return cuda_cap; }
inline int64_t sc_chunk_cap(int64_t cuda_cap) { return cuda_cap; }
#endif

#ifndef SC_EMULATION
// The device of a CUDA entry point's guard (*_cuda.cu): `t`'s device when it is a CUDA tensor, none otherwise.
// The guard is set before the entry's argument checks run, so a CPU tensor that reached the CUDA kernel
// (because another argument is on the GPU) must not trip the guard: the op's device check refuses it by name.
inline std::optional<c10::Device> cuda_device_of(const at::Tensor& t) {
  return t.is_cuda() ? std::optional<c10::Device>(t.device()) : std::nullopt;
}
#endif

}  // namespace semcorr
