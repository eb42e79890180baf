// simt.h — the portable CUDA vocabulary of semcorr_ext's kernels (csrc/<op>/<op>_kernel.cuh).
//
// One kernel text, three compilers:
//   (a) nvcc (__CUDACC__): real CUDA. SC_LAUNCH is `<<<...>>>`, SC_DYNAMIC_SHARED is `extern __shared__`.
//   (b) g++ -std=c++20 -DSC_EMULATION: host emulation for tests without a GPU (module semcorr_ext._emu).
//       Every CUDA name a kernel uses (threadIdx, __shared__, __syncthreads, __shfl_*_sync, atomicAdd, ...)
//       is defined below; blocks run one at a time on a pool of OS threads, one per CUDA thread.
//   (c) plain host C++ (neither defined): only `__host__ __device__` helpers compile (the qualifiers vanish);
//       no kernel can be launched.
// Portable additions to CUDA (the only ones; everything else must be ordinary CUDA, and the nvcc build is
// what catches anything the emulator accepts beyond that):
//   SC_LAUNCH(kernel, grid, block, smem_bytes, stream)(args...)   instead of kernel<<<grid, block, smem, stream>>>
//       (a template-id with commas must be parenthesised: SC_LAUNCH((k<float, 16>), ...), or use a pointer)
//   SC_DYNAMIC_SHARED(T, name);   declares `T* name` pointing at the launch's dynamic shared memory
//   SC_HOST_DEVICE                 `__host__ __device__` (empty in the host builds)
//
// Include order: torch and system headers first, simt.h LAST (under emulation it defines `__`-names such
// as __device__ and __expf, which must not leak into other headers).
//
// The CUDA a kernel may use (ordinary CUDA under nvcc; csrc/emu/simt_emu.h defines the same names for the
// emulator, so a name missing there fails the _emu build instead of passing silently):
//   qualifiers      __global__ __device__ __host__ __forceinline__ __launch_bounds__ __shared__ __constant__ __align__
//   indices         threadIdx blockIdx blockDim gridDim warpSize; dim3, uint3, the float/int/uint/double vector
//                   types and their make_* constructors
//   barriers        __syncthreads, __syncthreads_count/_and/_or, __syncwarp, __threadfence(_block)
//   warp            __shfl_sync, __shfl_up_sync, __shfl_down_sync, __shfl_xor_sync, __ballot_sync, __any_sync,
//                   __all_sync, __activemask
//   atomics         atomicAdd (int, unsigned, unsigned long long, float, double), atomicSub, atomicExch, atomicMax,
//                   atomicMin, atomicAnd, atomicOr, atomicXor, atomicCAS
//   intrinsics      __ldg, __expf __logf __powf __sinf __cosf, __fdividef, rsqrtf, rsqrt, __frsqrt_rn, __saturatef,
//                   __fma(f)_rn, bit casts (__int_as_float ...), __popc(ll), __ffs(ll), __clz(ll), __brev, min/max
//   tensor cores    mma.sync through csrc/common/mma.cuh (inline PTX under nvcc, emulated warp-wide otherwise)
//
// The emulator itself (scheduler, barriers, warp exchange, atomics) is csrc/emu/simt_emu.h, included below
// only when SC_EMULATION is defined (the semcorr_ext._emu build): the CUDA and CPU builds never see it.
#pragma once

#if defined(__CUDACC__)
// =========================================== (a) real CUDA ===============================================
#define SC_HOST_DEVICE __host__ __device__
#define SC_LAUNCH(kernel, grid, block, smem_bytes, stream) kernel<<<(grid), (block), (smem_bytes), (stream)>>>
#define SC_DYNAMIC_SHARED(T, name)                                  \
  extern __shared__ __align__(16) unsigned char sc_dynamic_smem[]; \
  T* name = reinterpret_cast<T*>(sc_dynamic_smem)

#elif !defined(SC_EMULATION)
// =========================================== (c) plain host C++ ==========================================
#include <stdexcept>
#include <string>
#ifndef __host__
#define __host__
#endif
#ifndef __device__
#define __device__
#endif
#ifndef __forceinline__
#define __forceinline__ inline
#endif
#define SC_HOST_DEVICE
namespace sc_simt_host {
struct NoLaunch {
  const char* name;
  template <class... A>
  void operator()(A&&...) const {
    throw std::logic_error(std::string("SC_LAUNCH of ") + name +
                           ": this translation unit is neither CUDA (nvcc) nor emulation (SC_EMULATION)");
  }
};
}  // namespace sc_simt_host
#define SC_LAUNCH(kernel, grid, block, smem_bytes, stream) ::sc_simt_host::NoLaunch{#kernel}
#define SC_DYNAMIC_SHARED(T, name) T* name = nullptr

#else
#include "emu/simt_emu.h"
#endif  // __CUDACC__ / plain host / SC_EMULATION
