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
