// Torch-aware launch helpers for code shared by the real CUDA host glue (*_cuda.cu) and the emulated one
// (csrc/emu/emu_*.cpp): the same launch sequence runs on a GPU and, in tests, on the host emulator.
// Include after torch headers and before nothing else of ours that needs simt.h first.
#pragma once
#ifdef SC_EMULATION
#include "common/simt.h"
#define SEMCORR_LAUNCH_CHECK() ((void)0)
#else
#include <c10/cuda/CUDAException.h>
#include "common/simt.h"
#define SEMCORR_LAUNCH_CHECK() C10_CUDA_KERNEL_LAUNCH_CHECK()
#endif

#include <algorithm>
#include <cstdint>

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

}  // namespace semcorr
