// simt_emu.h — the CUDA host emulator behind csrc/common/simt.h (case (b)): under SC_EMULATION, every CUDA
// name a kernel uses (the list in simt.h) as host C++. Included only through simt.h, only in the
// semcorr_ext._emu build.
//
// ---- Emulation model (SC_EMULATION) --------------------------------------------------------------------
// * A launch validates its configuration like CUDA (1..1024 threads, blockDim.z <= 64, grid dims > 0,
//   <= 48 KB dynamic shared memory) and throws std::runtime_error("emulated launch of <kernel> ...") if not.
// * Blocks run one at a time, in the global block order (forward / reverse / seeded shuffle). The block's
//   threads are OS threads created once per launch and reused for every block.
// * Schedules (global setting): "parallel" — threads run freely (use with ThreadSanitizer); "forward" and
//   "reverse" — deterministic and serial: exactly one thread runs at a time and runs until it blocks (at a
//   barrier or warp collective) or returns; then the runnable thread with the lowest (forward) or highest
//   (reverse) tid runs. A missing __syncthreads therefore gives a wrong result in at least one of the two.
// * __shared__ is a function-local `static`: one instance per kernel instantiation, shared by the block's
//   threads and NOT cleared between blocks or launches. Dynamic shared memory is one buffer per launch,
//   filled with 0xFF bytes (NaN for float/double, -1 for integers) before every block.
// * __syncthreads is a counting barrier over the whole block. Errors (thrown from the launch, never a hang):
//   threads waiting at barriers on different lines; a thread returning while others wait at a barrier (or
//   reaching a barrier after others returned); deadlock (no thread can proceed; the message says where each
//   thread waits).
// * Warp collectives (__shfl_*_sync, __ballot_sync, __any_sync, __all_sync, __syncwarp) rendezvous the lanes
//   named in the mask (a warp is 32 consecutive linear tids; independent thread scheduling as on sm_70+).
//   Lanes beyond the end of a partial last warp are simply absent. A lane named in the mask that has
//   returned is an error; one that never arrives is reported as a deadlock. Reading a lane that is not in
//   the mask (or does not exist) yields poison (NaN, or 0xDEADBEEF... for integers) and counts a warning
//   (sc_emu::warning_count(); printed once to stderr).
// * An exception thrown by a kernel thread aborts the launch: all threads are released and joined and the
//   launch rethrows std::runtime_error with the first message (prefixed by block and thread index).
// * Launches are serialised by a global mutex (static __shared__ instances are per process).
// * float16 / bfloat16: kernels store c10::Half / c10::BFloat16 (the types AT_DISPATCH gives them) and compute
//   in acc_t = float; under emulation those are the same host classes, converting to float on every load and
//   rounding on every store, as on the GPU. CUDA's __half intrinsics are not emulated (no kernel uses them).
// * Test settings: set_launch_limits lowers the grid caps and chunk sizes of the launch code (common/launch.h)
//   so grid-stride and chunk loops run on tiny inputs; SC_EMU_FORCE_PARALLEL=1 (environment) makes every launch
//   use the "parallel" schedule (ThreadSanitizer runs). Dynamic shared memory is allocated with exactly the
//   launch's size, so AddressSanitizer reports an access past its end.
// Not emulated: the memory model (fences are plain fences), speed.
#pragma once
#ifndef SC_EMULATION
#error "emu/simt_emu.h is the SC_EMULATION half of common/simt.h: include common/simt.h"
#endif

// =========================================== (b) host emulation ==========================================
#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>  // before the __expf macros below: glibc's math.h declares (but does not export) __expf
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

// ---- qualifiers --------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__ static
#define __align__(n) __attribute__((aligned(n)))
#define SC_HOST_DEVICE

// ---- built-in types and variables --------------------------------------------------------------------------
struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};
using cudaStream_t = struct CUstream_st*;

// Vector types (the common ones; alignment as in CUDA's vector_types.h).
struct __align__(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(16) double2 { double x, y; };
struct __align__(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned int x, y; };
struct __align__(16) uint4 { unsigned int x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

// Per-thread values, set by the emulator before the thread runs (each kernel thread is an OS thread).
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
inline constexpr int warpSize = 32;

namespace sc_emu {

// ---- global settings (exposed to Python by csrc/emu/emu_control.cpp) -------------------------------------
enum class Schedule : int { parallel = 0, forward = 1, reverse = 2 };
enum class BlockOrder : int { forward = 0, reverse = 1, shuffle = 2 };

struct Settings {
  std::atomic<int> schedule{static_cast<int>(Schedule::forward)};
  std::atomic<int> block_order{static_cast<int>(BlockOrder::forward)};
  std::atomic<unsigned long long> seed{0};
  std::atomic<long long> warnings{0};
  std::atomic<bool> warned{false};
  // Test-only lowered limits of the launch code (csrc/common/launch.h: sc_grid_cap, sc_chunk_cap); 0 = none.
  std::atomic<long long> max_grid_blocks{0};
  std::atomic<long long> max_chunk_elements{0};
  // Whether the launch code may pick tensor-core (mma.sync) kernels (csrc/common/tensor_cores.h). Off by default,
  // so every emulated test keeps checking the exact float32 SIMT kernels unless it asks for tensor cores.
  std::atomic<bool> tensor_cores{false};
  std::atomic<long long> mma_count{0};  // warp-wide mma.sync instructions emulated (csrc/common/mma.cuh)
};
inline Settings& settings() {
  static Settings s;
  return s;
}

inline const char* schedule_name(Schedule s) {
  switch (s) {
    case Schedule::parallel: return "parallel";
    case Schedule::forward: return "forward";
    case Schedule::reverse: return "reverse";
  }
  return "?";
}
inline const char* block_order_name(BlockOrder o) {
  switch (o) {
    case BlockOrder::forward: return "forward";
    case BlockOrder::reverse: return "reverse";
    case BlockOrder::shuffle: return "shuffle";
  }
  return "?";
}
inline void set_schedule(const std::string& name) {
  Schedule s;
  if (name == "parallel") s = Schedule::parallel;
  else if (name == "forward") s = Schedule::forward;
  else if (name == "reverse") s = Schedule::reverse;
  else
    throw std::invalid_argument("set_schedule: expected \"parallel\", \"forward\" or \"reverse\", got \"" + name +
                                "\"");
  settings().schedule.store(static_cast<int>(s));
}
// SC_EMU_FORCE_PARALLEL=1 in the environment: every launch runs the free "parallel" schedule whatever
// set_schedule says, so a ThreadSanitizer build checks every kernel of every test for races (make sanitize).
inline bool forced_parallel() {
  static const bool forced = [] {
    const char* v = std::getenv("SC_EMU_FORCE_PARALLEL");
    return v != nullptr && std::string(v) == "1";
  }();
  return forced;
}
inline std::string get_schedule() { return schedule_name(static_cast<Schedule>(settings().schedule.load())); }
inline void set_block_order(const std::string& name, unsigned long long seed = 0) {
  BlockOrder o;
  if (name == "forward") o = BlockOrder::forward;
  else if (name == "reverse") o = BlockOrder::reverse;
  else if (name == "shuffle") o = BlockOrder::shuffle;
  else
    throw std::invalid_argument("set_block_order: expected \"forward\", \"reverse\" or \"shuffle\", got \"" + name +
                                "\"");
  settings().block_order.store(static_cast<int>(o));
  settings().seed.store(seed);
}
inline std::string get_block_order() {
  return block_order_name(static_cast<BlockOrder>(settings().block_order.load()));
}
inline unsigned long long get_block_order_seed() { return settings().seed.load(); }
// Lowers the caps that the launch code puts on grid sizes (grid-stride loops beyond them) and on the elements of
// one chunk of a chunked launch sequence, so tests reach those loops with tiny inputs. 0 restores the CUDA values.
inline void set_launch_limits(long long max_grid_blocks, long long max_chunk_elements) {
  if (max_grid_blocks < 0 || max_chunk_elements < 0)
    throw std::invalid_argument("set_launch_limits: limits must be >= 0 (0: the CUDA value), got " +
                                std::to_string(max_grid_blocks) + ", " + std::to_string(max_chunk_elements));
  settings().max_grid_blocks.store(max_grid_blocks);
  settings().max_chunk_elements.store(max_chunk_elements);
}
inline long long warning_count() { return settings().warnings.load(); }
inline void reset_warnings() { settings().warnings.store(0); }

inline std::mutex& launch_mutex() {  // one launch at a time: static __shared__ variables are per process
  static std::mutex m;
  return m;
}

// Thrown inside kernel threads to unwind them once the launch has failed; never escapes a launch.
struct Abort {};

inline std::string fmt3(unsigned x, unsigned y, unsigned z) {
  return "(" + std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) + ")";
}
inline std::string hex32(unsigned v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}
inline std::string where(const char* file, int line) { return std::string(file) + ":" + std::to_string(line); }
// "0-15, 17, 20-31"
inline std::string ranges(const std::vector<int>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!s.empty()) s += ", ";
    s += std::to_string(ids[i]);
    if (j > i) s += "-" + std::to_string(ids[j]);
    i = j + 1;
  }
  return s;
}
inline std::vector<int> bits_of(unsigned m) {
  std::vector<int> v;
  for (int i = 0; i < 32; ++i)
    if (m >> i & 1u) v.push_back(i);
  return v;
}

enum class TState : unsigned char { ready, running, barrier, warp, exited };
enum class Coll : int { shfl, vote, syncwarp, exchange };
inline const char* coll_name(Coll c) {
  return c == Coll::shfl       ? "a shuffle"
         : c == Coll::vote     ? "a vote (__ballot/__any/__all_sync)"
         : c == Coll::exchange ? "a warp exchange (emulated mma.sync)"
                               : "__syncwarp";
}
// The most 32-bit words one lane deposits in a warp exchange (an m16n8k16 mma: 4 A + 2 B registers).
inline constexpr int kMaxExchangeWords = 8;

// Where a thread waits (for error messages).
struct Site {
  const char* what = "";
  const char* file = "";
  int line = 0;
  unsigned mask = 0;
};

struct ThreadSlot {
  std::condition_variable cv;
  TState state = TState::ready;
  Site site;
  int bar_result = 0;  // __syncthreads_count/and/or result of the last barrier
};

// A pending warp rendezvous: the lanes of `mask` (restricted to existing lanes) must all arrive.
struct WarpGroup {
  unsigned mask = 0;
  unsigned arrived = 0;
  Coll kind = Coll::shfl;
  int nwords = 0;  // exchanges: words per lane (every lane of the group must deposit as many)
};

struct Warp {
  unsigned present = 0;  // lanes that exist (a partial last warp has fewer than 32)
  unsigned exited = 0;   // lanes that have returned in the current block
  std::vector<WarpGroup> pending;
  // Published by each lane on arrival:
  uint64_t val[32] = {};
  bool pred[32] = {};
  int src[32] = {};  // shuffles: lane to read (-1: own value)
  // Computed when the rendezvous completes, read by each lane after it wakes:
  uint64_t res[32] = {};
  bool poison[32] = {};
  unsigned ballot[32] = {};
  unsigned gmask[32] = {};
  // Exchanges: each lane's deposit, and the snapshot taken when the rendezvous completes. Lanes read the
  // snapshot, not the deposits: a lane released first may already deposit for its next exchange.
  uint32_t xval[32][kMaxExchangeWords] = {};
  uint32_t xres[32][kMaxExchangeWords] = {};
};

struct CollResult {
  uint64_t bits;
  bool poison;
  unsigned ballot;  // votes of the lanes of the rendezvous
  unsigned mask;    // the lanes of the rendezvous (the mask restricted to existing lanes)
};

class Runner;
inline thread_local Runner* tl_runner = nullptr;
inline thread_local int tl_tid = -1;

// Runs one launch: all blocks of the grid, one at a time, each on the pool of n = |block| threads.
class Runner {
 public:
  Runner(std::string name, dim3 grid, dim3 block, size_t smem)
      : name_(std::move(name)), grid_(grid), block_(block), smem_bytes_(smem) {
    n_ = static_cast<int>(block.x * block.y * block.z);
    schedule_ = forced_parallel() ? Schedule::parallel : static_cast<Schedule>(settings().schedule.load());
    serial_ = schedule_ != Schedule::parallel;
    th_.reset(new ThreadSlot[n_]);
    warps_.resize((n_ + 31) / 32);
    for (int w = 0; w < static_cast<int>(warps_.size()); ++w) {
      const int lanes = std::min(32, n_ - 32 * w);
      warps_[w].present = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
    }
    // Exactly the launch's bytes (no rounding up): under AddressSanitizer the allocation's redzone then starts
    // right after the last byte, so a read or write past the dynamic shared memory is reported.
    smem_alloc_ = smem_bytes_;
    smem_ = static_cast<unsigned char*>(::operator new(smem_alloc_, std::align_val_t(64)));
  }
  ~Runner() { ::operator delete(smem_, std::align_val_t(64)); }
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  unsigned char* dynamic_smem() { return smem_; }

  // Runs every block; throws std::runtime_error if the launch failed.
  void run(const std::function<void()>& body) {
    body_ = &body;
    const uint64_t nblocks = uint64_t(grid_.x) * grid_.y * grid_.z;
    std::vector<uint64_t> order;
    const auto bo = static_cast<BlockOrder>(settings().block_order.load());
    if (bo == BlockOrder::shuffle) {
      order.resize(nblocks);
      for (uint64_t i = 0; i < nblocks; ++i) order[i] = i;
      std::mt19937_64 rng(settings().seed.load());
      for (uint64_t i = nblocks; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);  // Fisher-Yates
    }
    std::vector<std::thread> pool;
    pool.reserve(n_);
    try {
      for (int t = 0; t < n_; ++t) pool.emplace_back([this, t] { worker(t); });
    } catch (...) {
      std::unique_lock<std::mutex> lk(mu_);
      quit_ = true;
      for (int t = 0; t < n_; ++t) th_[t].cv.notify_all();
      lk.unlock();
      for (auto& p : pool) p.join();
      throw std::runtime_error(prefix() + "could not create " + std::to_string(n_) + " threads");
    }
    {
      std::unique_lock<std::mutex> lk(mu_);
      for (uint64_t i = 0; i < nblocks && !aborted_; ++i) {
        const uint64_t b = bo == BlockOrder::forward   ? i
                           : bo == BlockOrder::reverse ? nblocks - 1 - i
                                                       : order[i];
        start_block(b);
        coord_cv_.wait(lk, [&] { return finished_ == n_; });
      }
      quit_ = true;
      for (int t = 0; t < n_; ++t) th_[t].cv.notify_all();
    }
    for (auto& p : pool) p.join();
    if (aborted_) throw std::runtime_error(prefix() + error_);
  }

  // ---- __syncthreads (and _count/_and/_or): returns the number of threads with pred != 0 ----
  int barrier(const char* what, const char* file, int line, int pred) {
    const int me = tl_tid;
    std::unique_lock<std::mutex> lk(mu_);
    if (aborted_) throw Abort{};
    if (exited_ > 0) {
      fail(me, std::string(what) + " at " + where(file, line) + ": this thread waits while " +
                   std::to_string(exited_) + " thread(s) of the block (" + ranges(exited_tids()) +
                   ") have already returned; every thread of a block must reach each __syncthreads "
                   "(early return before a barrier? undefined behaviour / hang in CUDA)");
      throw Abort{};
    }
    if (bar_arrived_ == 0) {
      bar_site_ = Site{what, file, line, 0};
      bar_first_ = me;
      bar_count_ = 0;
    } else if (bar_site_.line != line || std::strcmp(bar_site_.file, file) != 0) {
      fail(me, "__syncthreads reached from different lines: " + where(bar_site_.file, bar_site_.line) +
                   " (thread " + std::to_string(bar_first_) + ") and " + where(file, line) + " (thread " +
                   std::to_string(me) + ") — barrier inside divergent code");
      throw Abort{};
    }
    bar_count_ += pred != 0;
    block_self(me, TState::barrier, Site{what, file, line, 0});
    if (++bar_arrived_ == n_) {  // everyone is here: release the block
      for (int t = 0; t < n_; ++t) {
        th_[t].bar_result = bar_count_;
        release(t);
      }
      bar_arrived_ = 0;
    }
    wait_turn(lk, me);
    return th_[me].bar_result;
  }

  // ---- warp rendezvous: publishes (val, pred, src), waits for the lanes of `mask`, returns this lane's result ----
  // Exchanges (kind == Coll::exchange) also deposit `nwords` words and copy every lane's words into
  // `all` (32 * nwords; lanes outside the rendezvous read 0xDEADBEEF).
  CollResult warp_collective(Coll kind, const char* what, const char* file, int line, unsigned mask, uint64_t val,
                             bool pred, int src, const uint32_t* words = nullptr, int nwords = 0,
                             uint32_t* all = nullptr) {
    const int me = tl_tid;
    const int w = me / 32, lane = me % 32;
    const unsigned bit = 1u << lane;
    std::unique_lock<std::mutex> lk(mu_);
    if (aborted_) throw Abort{};
    Warp& W = warps_[w];
    const std::string here = std::string(what) + " at " + where(file, line) + " (mask " + hex32(mask) + ")";
    if (!(mask & bit)) {
      fail(me, here + ": the mask does not include the calling lane " + std::to_string(lane) +
                   " (undefined behaviour in CUDA)");
      throw Abort{};
    }
    const unsigned eff = mask & W.present;
    if (eff & W.exited) {
      fail(me, here + ": lane(s) " + ranges(bits_of(eff & W.exited)) + " of warp " + std::to_string(w) +
                   " named in the mask have already returned and can never arrive (deadlock on a GPU)");
      throw Abort{};
    }
    int gi = -1;
    for (int i = 0; i < static_cast<int>(W.pending.size()); ++i) {
      const WarpGroup& G = W.pending[i];
      if (G.mask == eff) {
        gi = i;
      } else if ((G.mask & bit) || (G.arrived & eff)) {
        fail(me, here + ": lanes " + ranges(bits_of(G.arrived)) + " of warp " + std::to_string(w) + " wait in " +
                     coll_name(G.kind) + " with mask " + hex32(G.mask) +
                     " — warp collectives with overlapping but different masks (undefined behaviour in CUDA)");
        throw Abort{};
      }
    }
    if (gi >= 0 && W.pending[gi].kind != kind) {
      fail(me, here + " is " + coll_name(kind) + ", but lanes " + ranges(bits_of(W.pending[gi].arrived)) +
                   " of the same mask wait in " + coll_name(W.pending[gi].kind) +
                   " — different warp collectives (divergent code?)");
      throw Abort{};
    }
    if (gi >= 0 && W.pending[gi].nwords != nwords) {
      fail(me, here + " exchanges " + std::to_string(nwords) + " words, but lanes " +
                   ranges(bits_of(W.pending[gi].arrived)) + " exchange " + std::to_string(W.pending[gi].nwords) +
                   " — different warp exchanges (divergent code?)");
      throw Abort{};
    }
    if (gi < 0) {
      W.pending.push_back(WarpGroup{eff, 0, kind, nwords});
      gi = static_cast<int>(W.pending.size()) - 1;
    }
    for (int i = 0; i < nwords; ++i) W.xval[lane][i] = words[i];
    W.val[lane] = val;
    W.pred[lane] = pred;
    W.src[lane] = src;
    block_self(me, TState::warp, Site{what, file, line, mask});
    WarpGroup& G = W.pending[gi];
    G.arrived |= bit;
    if (G.arrived == G.mask) {
      const WarpGroup done = G;
      W.pending.erase(W.pending.begin() + gi);
      complete_warp(w, done);
    }
    wait_turn(lk, me);
    for (int l = 0; l < 32 && nwords > 0; ++l)
      for (int i = 0; i < nwords; ++i) all[l * nwords + i] = (W.gmask[lane] >> l & 1u) ? W.xres[l][i] : 0xDEADBEEFu;
    return CollResult{W.res[lane], W.poison[lane], W.ballot[lane], W.gmask[lane]};
  }

  unsigned active_mask() {
    const int me = tl_tid;
    std::lock_guard<std::mutex> lk(mu_);
    const Warp& W = warps_[me / 32];
    return W.present & ~W.exited;
  }

 private:
  std::string prefix() const {
    return "emulated launch of " + name_ + " (grid " + fmt3(grid_.x, grid_.y, grid_.z) + ", block " +
           fmt3(block_.x, block_.y, block_.z) + ", " + std::to_string(smem_bytes_) +
           " bytes dynamic shared memory, schedule " + schedule_name(schedule_) + "): ";
  }
  uint3 thread_index(int t) const {
    return uint3{static_cast<unsigned>(t % block_.x), static_cast<unsigned>((t / block_.x) % block_.y),
                 static_cast<unsigned>(t / (block_.x * block_.y))};
  }
  std::vector<int> exited_tids() const {
    std::vector<int> v;
    for (int t = 0; t < n_; ++t)
      if (th_[t].state == TState::exited) v.push_back(t);
    return v;
  }

  // Records the first error (holding mu_) and wakes every thread; waiting threads then throw Abort.
  void fail(int tid, const std::string& msg) {
    if (!aborted_) {
      aborted_ = true;
      std::string who = "block " + fmt3(cur_block_.x, cur_block_.y, cur_block_.z);
      if (tid >= 0) {
        const uint3 ti = thread_index(tid);
        who += " thread " + fmt3(ti.x, ti.y, ti.z) + " (tid " + std::to_string(tid) + ")";
      }
      error_ = who + ": " + msg;
    }
    for (int t = 0; t < n_; ++t) th_[t].cv.notify_all();
    coord_cv_.notify_all();
  }

  void start_block(uint64_t b) {  // holding mu_
    cur_block_ = uint3{static_cast<unsigned>(b % grid_.x), static_cast<unsigned>((b / grid_.x) % grid_.y),
                       static_cast<unsigned>(b / (uint64_t(grid_.x) * grid_.y))};
    std::memset(smem_, 0xFF, smem_alloc_);  // poison: NaN for float/double, -1 for integers
    for (int t = 0; t < n_; ++t) {
      th_[t].state = serial_ ? TState::ready : TState::running;
      th_[t].site = Site{};
    }
    for (auto& W : warps_) {
      W.exited = 0;
      W.pending.clear();
    }
    finished_ = 0;
    live_ = n_;
    exited_ = 0;
    runnable_ = n_;
    bar_arrived_ = 0;
    token_ = -1;
    if (serial_) {
      token_ = pick_next();
      th_[token_].state = TState::running;
    }
    ++block_gen_;
    for (int t = 0; t < n_; ++t) th_[t].cv.notify_all();
  }

  void worker(int tid) {
    tl_runner = this;
    tl_tid = tid;
    threadIdx = thread_index(tid);
    blockDim = block_;
    gridDim = grid_;
    uint64_t seen = 0;
    for (;;) {
      bool run;
      {
        std::unique_lock<std::mutex> lk(mu_);
        th_[tid].cv.wait(lk, [&] { return quit_ || block_gen_ != seen; });
        if (quit_) break;
        seen = block_gen_;
        blockIdx = cur_block_;
        if (serial_) th_[tid].cv.wait(lk, [&] { return aborted_ || token_ == tid; });
        run = !aborted_;
      }
      if (run) {
        try {
          (*body_)();
        } catch (const Abort&) {
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lk(mu_);
          fail(tid, std::string("exception in kernel thread: ") + e.what());
        } catch (...) {
          std::lock_guard<std::mutex> lk(mu_);
          fail(tid, "unknown exception in kernel thread");
        }
      }
      std::unique_lock<std::mutex> lk(mu_);
      thread_exit(tid);
    }
    tl_runner = nullptr;
    tl_tid = -1;
  }

  // A thread returned from the kernel (or was unwound). Holding mu_.
  void thread_exit(int me) {
    const TState prev = th_[me].state;
    th_[me].state = TState::exited;
    if (prev == TState::running || prev == TState::ready) --runnable_;
    --live_;
    ++exited_;
    warps_[me / 32].exited |= 1u << (me % 32);
    if (!aborted_) {
      if (bar_arrived_ > 0) {
        fail(me, "this thread returned while " + std::to_string(bar_arrived_) + " thread(s) wait at " +
                     bar_site_.what + " at " + where(bar_site_.file, bar_site_.line) +
                     "; every thread of a block must reach each __syncthreads (barrier inside divergent code "
                     "or early return? undefined behaviour / hang in CUDA)");
      } else {
        for (const WarpGroup& G : warps_[me / 32].pending)
          if (G.mask & (1u << (me % 32))) {
            fail(me, "lane " + std::to_string(me % 32) + " returned while lanes " + ranges(bits_of(G.arrived)) +
                         " of warp " + std::to_string(me / 32) + " wait for it in " + coll_name(G.kind) +
                         " with mask " + hex32(G.mask) + " at " + where_waiting(me / 32, G) +
                         " (deadlock on a GPU)");
            break;
          }
      }
    }
    if (!aborted_ && live_ > 0) {
      if (serial_) {
        const int nx = pick_next();
        if (nx < 0) {
          fail(-1, deadlock_message());
        } else {
          token_ = nx;
          th_[nx].state = TState::running;
          th_[nx].cv.notify_all();
        }
      } else if (runnable_ == 0) {
        fail(-1, deadlock_message());
      }
    }
    if (++finished_ == n_) coord_cv_.notify_all();
  }

  // The calling (running) thread blocks at a sync point. Holding mu_.
  void block_self(int me, TState s, Site site) {
    th_[me].state = s;
    th_[me].site = site;
    --runnable_;
  }
  // A blocked thread may continue (its rendezvous completed). Holding mu_.
  void release(int t) {
    if (th_[t].state != TState::barrier && th_[t].state != TState::warp) return;
    th_[t].state = serial_ ? TState::ready : TState::running;
    ++runnable_;
    if (!serial_) th_[t].cv.notify_all();
  }
  // Serial schedules: the runnable thread with the lowest (forward) / highest (reverse) tid, or -1.
  int pick_next() const {
    if (schedule_ == Schedule::forward) {
      for (int t = 0; t < n_; ++t)
        if (th_[t].state == TState::ready || th_[t].state == TState::running) return t;
    } else {
      for (int t = n_ - 1; t >= 0; --t)
        if (th_[t].state == TState::ready || th_[t].state == TState::running) return t;
    }
    return -1;
  }

  // After arriving at a sync point (and possibly completing it): wait until this thread may run again.
  void wait_turn(std::unique_lock<std::mutex>& lk, int me) {
    if (serial_) {
      const int nx = pick_next();
      if (nx < 0) {
        fail(-1, deadlock_message());
        throw Abort{};
      }
      if (nx != me) {
        if (th_[me].state == TState::running) th_[me].state = TState::ready;
        token_ = nx;
        th_[nx].state = TState::running;
        th_[nx].cv.notify_all();
        th_[me].cv.wait(lk, [&] { return aborted_ || token_ == me; });
      }
      th_[me].state = TState::running;
    } else {
      if (runnable_ == 0) {
        fail(-1, deadlock_message());
        throw Abort{};
      }
      th_[me].cv.wait(lk, [&] { return aborted_ || th_[me].state == TState::running; });
    }
    if (aborted_) throw Abort{};
  }

  void complete_warp(int w, const WarpGroup& G) {  // holding mu_
    Warp& W = warps_[w];
    unsigned ballot = 0;
    for (int l = 0; l < 32; ++l)
      if ((G.mask >> l & 1u) && W.pred[l]) ballot |= 1u << l;
    for (int l = 0; l < 32; ++l) {
      if (!(G.mask >> l & 1u)) continue;
      W.ballot[l] = ballot;
      W.gmask[l] = G.mask;
      W.poison[l] = false;
      W.res[l] = W.val[l];
      for (int i = 0; i < G.nwords; ++i) W.xres[l][i] = W.xval[l][i];
      if (G.kind == Coll::shfl && W.src[l] >= 0) {
        const int s = W.src[l];
        if (s < 32 && (G.mask >> s & 1u)) {
          W.res[l] = W.val[s];
        } else {
          W.poison[l] = true;
          warn_inactive(w * 32 + l, s, G.mask);
        }
      }
      release(w * 32 + l);
    }
  }

  void warn_inactive(int tid, int src, unsigned mask) {
    settings().warnings.fetch_add(1);
    if (!settings().warned.exchange(true)) {
      const Site& s = th_[tid].site;
      std::fprintf(stderr,
                   "[simt emulator] warning: %s at %s: lane %d (tid %d) of block %s reads lane %d, which is %s "
                   "the mask %s; it gets a poison value (NaN / 0xDEADBEEF). Later warnings are only counted "
                   "(semcorr_ext._emu.warnings()).\n",
                   s.what, where(s.file, s.line).c_str(), tid % 32, tid,
                   fmt3(cur_block_.x, cur_block_.y, cur_block_.z).c_str(), src,
                   tid / 32 * 32 + src < n_ ? "not in" : "outside the block, so not in",
                   hex32(mask).c_str());
    }
  }

  std::string where_waiting(int w, const WarpGroup& G) const {  // the site of a lane waiting in G
    for (int l = 0; l < 32; ++l)
      if (G.arrived >> l & 1u) return where(th_[w * 32 + l].site.file, th_[w * 32 + l].site.line);
    return "?";
  }

  // "threads 0-15, 32-47 wait at __shfl_down_sync at f:12 (mask 0xffffffff; lanes 16-31 of its warp never
  // arrive); threads 16-31, 48-63 wait at __syncthreads at f:14;"
  std::string deadlock_message() const {
    std::vector<std::pair<std::string, std::vector<int>>> groups;
    for (int t = 0; t < n_; ++t) {
      if (th_[t].state != TState::barrier && th_[t].state != TState::warp) continue;
      const Site& s = th_[t].site;
      std::string key = std::string(s.what) + " at " + where(s.file, s.line);
      if (th_[t].state == TState::warp) {
        key += " (mask " + hex32(s.mask);
        for (const WarpGroup& G : warps_[t / 32].pending)
          if (G.arrived >> (t % 32) & 1u)
            key += "; lanes " + ranges(bits_of(G.mask & ~G.arrived)) + " of its warp never arrive";
        key += ")";
      }
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
      if (it == groups.end()) groups.emplace_back(key, std::vector<int>{t});
      else it->second.push_back(t);
    }
    std::string m = "deadlock — every live thread of the block waits and none can proceed:";
    for (const auto& g : groups) m += " threads " + ranges(g.second) + " wait at " + g.first + ";";
    if (exited_ > 0) m += " threads " + ranges(exited_tids()) + " have returned.";
    return m;
  }

  std::string name_;
  dim3 grid_, block_;
  size_t smem_bytes_, smem_alloc_;
  unsigned char* smem_ = nullptr;
  int n_ = 0;
  Schedule schedule_;
  bool serial_;
  const std::function<void()>* body_ = nullptr;

  std::mutex mu_;
  std::condition_variable coord_cv_;
  std::unique_ptr<ThreadSlot[]> th_;
  std::vector<Warp> warps_;
  uint64_t block_gen_ = 0;
  bool quit_ = false;
  uint3 cur_block_{0, 0, 0};
  int finished_ = 0, live_ = 0, exited_ = 0, runnable_ = 0;
  int token_ = -1;
  int bar_arrived_ = 0, bar_first_ = -1, bar_count_ = 0;
  Site bar_site_;
  bool aborted_ = false;
  std::string error_;
};

inline Runner& current(const char* what) {
  if (tl_runner == nullptr)
    throw std::logic_error(std::string(what) + " called outside an emulated kernel (use SC_LAUNCH)");
  return *tl_runner;
}

inline unsigned char* dynamic_shared() { return current("dynamic shared memory").dynamic_smem(); }

// ---- launch ----------------------------------------------------------------------------------------------
class Launch {
 public:
  Launch(const char* kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t /*stream: ignored*/)
      : name_(kernel), grid_(grid), block_(block), smem_(smem) {}

  template <class Body>
  struct Bound {
    const Launch& launch;
    Body body;
    template <class... A>
    void operator()(A&&... args) const {
      // Kernel arguments are copied once (as CUDA copies them to parameter space); every thread calls the
      // kernel with the same values (by-value parameters are then per-thread copies).
      const std::tuple<std::decay_t<A>...> params(std::forward<A>(args)...);
      launch.run([&] { std::apply(body, params); });
    }
  };
  template <class Body>
  Bound<Body> bind(Body body) const {
    return Bound<Body>{*this, std::move(body)};
  }

  void run(const std::function<void()>& f) const {
    validate();
    std::lock_guard<std::mutex> lk(launch_mutex());
    Runner r(name_, grid_, block_, smem_);
    r.run(f);
  }

 private:
  [[noreturn]] void bad(const std::string& why) const {
    throw std::runtime_error("emulated launch of " + name_ + " (grid " + fmt3(grid_.x, grid_.y, grid_.z) +
                             ", block " + fmt3(block_.x, block_.y, block_.z) + ", " + std::to_string(smem_) +
                             " bytes dynamic shared memory): " + why + " (CUDA: invalid configuration)");
  }
  void validate() const {
    if (grid_.x == 0 || grid_.y == 0 || grid_.z == 0)
      bad("the grid is empty (a zero grid dimension is a launch error in CUDA; skip the launch instead)");
    if (grid_.x > 2147483647u || grid_.y > 65535u || grid_.z > 65535u)
      bad("grid dimensions exceed the limits (2^31-1, 65535, 65535)");
    if (block_.x == 0 || block_.y == 0 || block_.z == 0) bad("the block is empty (a zero block dimension)");
    const uint64_t n = uint64_t(block_.x) * block_.y * block_.z;
    if (n > 1024u) bad(std::to_string(n) + " threads per block exceed the limit of 1024");
    if (block_.z > 64u) bad("block dimensions exceed the limits (1024, 1024, 64)");
    if (smem_ > 49152u)
      bad(std::to_string(smem_) + " bytes of dynamic shared memory exceed the 48 KB (49152 bytes) a launch may "
          "use without opting in (cudaFuncSetAttribute)");
  }

  std::string name_;
  dim3 grid_, block_;
  size_t smem_;
};

// ---- barriers --------------------------------------------------------------------------------------------
inline void syncthreads(const char* file, int line) { current("__syncthreads").barrier("__syncthreads", file, line, 0); }
inline int syncthreads_count(const char* file, int line, int pred) {
  return current("__syncthreads_count").barrier("__syncthreads_count", file, line, pred);
}
inline int syncthreads_and(const char* file, int line, int pred) {
  return current("__syncthreads_and").barrier("__syncthreads_and", file, line, pred) ==
         static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
}
inline int syncthreads_or(const char* file, int line, int pred) {
  return current("__syncthreads_or").barrier("__syncthreads_or", file, line, pred) > 0;
}

// ---- warp collectives ------------------------------------------------------------------------------------
template <class T>
inline uint64_t to_bits(T v) {
  static_assert(std::is_arithmetic_v<T> && sizeof(T) <= 8, "shuffles take arithmetic values of <= 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
template <class T>
inline T poison_value() {
  if constexpr (std::is_floating_point_v<T>) {
    return std::numeric_limits<T>::quiet_NaN();
  } else {
    return from_bits<T>(0xDEADBEEFDEADBEEFull);
  }
}
inline void check_width(const char* what, const char* file, int line, int width) {
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    throw std::runtime_error(std::string(what) + " at " + where(file, line) + ": width " + std::to_string(width) +
                             " must be a power of two in [1, 32]");
}
template <class T>
inline T shuffle(const char* what, const char* file, int line, unsigned mask, T var, int src) {
  const CollResult r = current(what).warp_collective(Coll::shfl, what, file, line, mask, to_bits(var), false, src);
  return r.poison ? poison_value<T>() : from_bits<T>(r.bits);
}
inline int lane_id() { return tl_tid % 32; }

template <class T>
inline T shfl_sync(const char* file, int line, unsigned mask, T var, int src_lane, int width = 32) {
  check_width("__shfl_sync", file, line, width);
  const int lane = lane_id();
  const int src = (lane & ~(width - 1)) + (src_lane & (width - 1));
  return shuffle("__shfl_sync", file, line, mask, var, src);
}
template <class T>
inline T shfl_up_sync(const char* file, int line, unsigned mask, T var, unsigned delta, int width = 32) {
  check_width("__shfl_up_sync", file, line, width);
  const int lane = lane_id();
  const int src = static_cast<unsigned>(lane & (width - 1)) >= delta ? lane - static_cast<int>(delta) : -1;
  return shuffle("__shfl_up_sync", file, line, mask, var, src);
}
template <class T>
inline T shfl_down_sync(const char* file, int line, unsigned mask, T var, unsigned delta, int width = 32) {
  check_width("__shfl_down_sync", file, line, width);
  const int lane = lane_id();
  const int src = static_cast<unsigned>(lane & (width - 1)) + delta < static_cast<unsigned>(width)
                      ? lane + static_cast<int>(delta)
                      : -1;
  return shuffle("__shfl_down_sync", file, line, mask, var, src);
}
template <class T>
inline T shfl_xor_sync(const char* file, int line, unsigned mask, T var, int lane_mask, int width = 32) {
  check_width("__shfl_xor_sync", file, line, width);
  const int lane = lane_id();
  const int s = lane ^ lane_mask;
  // CUDA: a lane may read earlier groups of `width` lanes, but reading a later group returns its own value.
  const int src = (s < 0 || s >= 32 || (s & ~(width - 1)) > (lane & ~(width - 1))) ? -1 : s;
  return shuffle("__shfl_xor_sync", file, line, mask, var, src);
}
inline unsigned ballot_sync(const char* file, int line, unsigned mask, int pred) {
  return current("__ballot_sync")
      .warp_collective(Coll::vote, "__ballot_sync", file, line, mask, 0, pred != 0, -1)
      .ballot;
}
inline int any_sync(const char* file, int line, unsigned mask, int pred) {
  return current("__any_sync").warp_collective(Coll::vote, "__any_sync", file, line, mask, 0, pred != 0, -1).ballot !=
         0;
}
inline int all_sync(const char* file, int line, unsigned mask, int pred) {
  const CollResult r =
      current("__all_sync").warp_collective(Coll::vote, "__all_sync", file, line, mask, 0, pred != 0, -1);
  return r.ballot == r.mask;  // every (existing) lane of the mask voted true
}
inline void syncwarp(const char* file, int line, unsigned mask = 0xffffffffu) {
  current("__syncwarp").warp_collective(Coll::syncwarp, "__syncwarp", file, line, mask, 0, false, -1);
}
inline unsigned activemask() { return current("__activemask").active_mask(); }
// Not CUDA: the emulator's one-rendezvous warp exchange, for emulating warp-wide instructions (mma.sync in
// csrc/common/mma.cuh). Every lane of `mask` deposits `n` 32-bit words; each lane gets all lanes' words in
// `all[lane * n + i]` (0xDEADBEEF for lanes outside the rendezvous). Returns the lanes of the rendezvous.
inline unsigned warp_exchange(const char* file, int line, unsigned mask, const uint32_t* mine, int n,
                              uint32_t* all) {
  if (n < 1 || n > kMaxExchangeWords)
    throw std::runtime_error("warp exchange at " + where(file, line) + ": " + std::to_string(n) +
                             " words per lane, expected 1.." + std::to_string(kMaxExchangeWords));
  return current("warp exchange")
      .warp_collective(Coll::exchange, "warp exchange", file, line, mask, 0, false, -1, mine, n, all)
      .mask;
}

// ---- atomics (the overloads CUDA has; std::atomic_ref keeps them correct in the parallel schedule) ----
template <class T>
inline T fetch_add(T* a, T v) {
  return std::atomic_ref<T>(*a).fetch_add(v);
}
template <class T>
inline T fetch_max(T* a, T v) {
  std::atomic_ref<T> r(*a);
  T old = r.load();
  while (old < v && !r.compare_exchange_weak(old, v)) {
  }
  return old;
}
template <class T>
inline T fetch_min(T* a, T v) {
  std::atomic_ref<T> r(*a);
  T old = r.load();
  while (v < old && !r.compare_exchange_weak(old, v)) {
  }
  return old;
}
template <class T>
inline T cas(T* a, T compare, T v) {
  std::atomic_ref<T>(*a).compare_exchange_strong(compare, v);
  return compare;  // the old value either way
}

// ---- fast-math intrinsics: glibc declares __expf & co. in math.h but does not export them ----
inline float fast_expf(float x) { return std::exp(x); }
inline float fast_logf(float x) { return std::log(x); }
inline float fast_powf(float x, float y) { return std::pow(x, y); }
inline float fast_sinf(float x) { return std::sin(x); }
inline float fast_cosf(float x) { return std::cos(x); }

}  // namespace sc_emu

// ---- the CUDA spellings ------------------------------------------------------------------------------------
#define SC_LAUNCH(kernel, grid, block, smem_bytes, stream)                                              \
  ::sc_emu::Launch(#kernel, ::dim3(grid), ::dim3(block), static_cast<size_t>(smem_bytes), (stream)) \
      .bind([&](const auto&... sc_emu_args) { kernel(sc_emu_args...); })
#define SC_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::sc_emu::dynamic_shared())

#define __syncthreads() ::sc_emu::syncthreads(__FILE__, __LINE__)
#define __syncthreads_count(pred) ::sc_emu::syncthreads_count(__FILE__, __LINE__, (pred))
#define __syncthreads_and(pred) ::sc_emu::syncthreads_and(__FILE__, __LINE__, (pred))
#define __syncthreads_or(pred) ::sc_emu::syncthreads_or(__FILE__, __LINE__, (pred))
#define __syncwarp(...) ::sc_emu::syncwarp(__FILE__, __LINE__ __VA_OPT__(, ) __VA_ARGS__)
#define __shfl_sync(...) ::sc_emu::shfl_sync(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_up_sync(...) ::sc_emu::shfl_up_sync(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_down_sync(...) ::sc_emu::shfl_down_sync(__FILE__, __LINE__, __VA_ARGS__)
#define __shfl_xor_sync(...) ::sc_emu::shfl_xor_sync(__FILE__, __LINE__, __VA_ARGS__)
#define __ballot_sync(mask, pred) ::sc_emu::ballot_sync(__FILE__, __LINE__, (mask), (pred))
#define __any_sync(mask, pred) ::sc_emu::any_sync(__FILE__, __LINE__, (mask), (pred))
#define __all_sync(mask, pred) ::sc_emu::all_sync(__FILE__, __LINE__, (mask), (pred))
#define __activemask() ::sc_emu::activemask()

#define __threadfence() std::atomic_thread_fence(std::memory_order_seq_cst)
#define __threadfence_block() std::atomic_thread_fence(std::memory_order_seq_cst)

#define __expf(x) ::sc_emu::fast_expf(x)
#define __logf(x) ::sc_emu::fast_logf(x)
#define __powf(x, y) ::sc_emu::fast_powf((x), (y))
#define __sinf(x) ::sc_emu::fast_sinf(x)
#define __cosf(x) ::sc_emu::fast_cosf(x)

inline int atomicAdd(int* a, int v) { return ::sc_emu::fetch_add(a, v); }
inline unsigned int atomicAdd(unsigned int* a, unsigned int v) { return ::sc_emu::fetch_add(a, v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) { return ::sc_emu::fetch_add(a, v); }
inline float atomicAdd(float* a, float v) { return ::sc_emu::fetch_add(a, v); }
inline double atomicAdd(double* a, double v) { return ::sc_emu::fetch_add(a, v); }
inline int atomicSub(int* a, int v) { return std::atomic_ref<int>(*a).fetch_sub(v); }
inline unsigned int atomicSub(unsigned int* a, unsigned int v) { return std::atomic_ref<unsigned>(*a).fetch_sub(v); }
inline int atomicExch(int* a, int v) { return std::atomic_ref<int>(*a).exchange(v); }
inline unsigned int atomicExch(unsigned int* a, unsigned int v) { return std::atomic_ref<unsigned>(*a).exchange(v); }
inline unsigned long long atomicExch(unsigned long long* a, unsigned long long v) {
  return std::atomic_ref<unsigned long long>(*a).exchange(v);
}
inline float atomicExch(float* a, float v) { return std::atomic_ref<float>(*a).exchange(v); }
inline int atomicMax(int* a, int v) { return ::sc_emu::fetch_max(a, v); }
inline unsigned int atomicMax(unsigned int* a, unsigned int v) { return ::sc_emu::fetch_max(a, v); }
inline long long atomicMax(long long* a, long long v) { return ::sc_emu::fetch_max(a, v); }
inline unsigned long long atomicMax(unsigned long long* a, unsigned long long v) { return ::sc_emu::fetch_max(a, v); }
inline int atomicMin(int* a, int v) { return ::sc_emu::fetch_min(a, v); }
inline unsigned int atomicMin(unsigned int* a, unsigned int v) { return ::sc_emu::fetch_min(a, v); }
inline long long atomicMin(long long* a, long long v) { return ::sc_emu::fetch_min(a, v); }
inline unsigned long long atomicMin(unsigned long long* a, unsigned long long v) { return ::sc_emu::fetch_min(a, v); }
inline int atomicAnd(int* a, int v) { return std::atomic_ref<int>(*a).fetch_and(v); }
inline unsigned int atomicAnd(unsigned int* a, unsigned int v) { return std::atomic_ref<unsigned>(*a).fetch_and(v); }
inline int atomicOr(int* a, int v) { return std::atomic_ref<int>(*a).fetch_or(v); }
inline unsigned int atomicOr(unsigned int* a, unsigned int v) { return std::atomic_ref<unsigned>(*a).fetch_or(v); }
inline int atomicXor(int* a, int v) { return std::atomic_ref<int>(*a).fetch_xor(v); }
inline unsigned int atomicXor(unsigned int* a, unsigned int v) { return std::atomic_ref<unsigned>(*a).fetch_xor(v); }
inline int atomicCAS(int* a, int c, int v) { return ::sc_emu::cas(a, c, v); }
inline unsigned int atomicCAS(unsigned int* a, unsigned int c, unsigned int v) { return ::sc_emu::cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v) {
  return ::sc_emu::cas(a, c, v);
}
inline unsigned short atomicCAS(unsigned short* a, unsigned short c, unsigned short v) {
  return ::sc_emu::cas(a, c, v);
}

// ---- math and bit intrinsics ---------------------------------------------------------------------------------
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline float __fdividef(float x, float y) { return x / y; }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }  // NaN -> NaN (CUDA: 0)
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __int_as_float(int v) { return std::bit_cast<float>(v); }
inline int __float_as_int(float v) { return std::bit_cast<int>(v); }
inline float __uint_as_float(unsigned int v) { return std::bit_cast<float>(v); }
inline unsigned int __float_as_uint(float v) { return std::bit_cast<unsigned int>(v); }
inline double __longlong_as_double(long long v) { return std::bit_cast<double>(v); }
inline long long __double_as_longlong(double v) { return std::bit_cast<long long>(v); }
inline int __popc(unsigned int v) { return std::popcount(v); }
inline int __popcll(unsigned long long v) { return std::popcount(v); }
inline int __ffs(int v) { return v == 0 ? 0 : std::countr_zero(static_cast<unsigned>(v)) + 1; }
inline int __ffsll(long long v) { return v == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(v)) + 1; }
inline int __clz(int v) { return std::countl_zero(static_cast<unsigned>(v)); }
inline int __clzll(long long v) { return std::countl_zero(static_cast<unsigned long long>(v)); }
inline unsigned int __brev(unsigned int v) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((v >> i) & 1u) << (31 - i);
  return r;
}

// CUDA's device min/max overloads for same-typed arguments (mixed types: cast explicitly, which nvcc accepts).
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a < b ? b : a; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a < b ? b : a; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a < b ? b : a; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a < b ? b : a; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a < b ? b : a; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a < b ? b : a; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

