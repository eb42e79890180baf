// semcorr_ext._emu controls of the CUDA host emulator (csrc/common/simt.h): thread schedule, block order and
// the count of inactive-lane warnings, tensor cores on/off. Settings are process-wide and read at the start
// of each launch.
#include "emu/emu_registry.h"
// simt.h last: it defines CUDA's `__`-names.
#include "common/simt.h"

#include <string>
#include <tuple>

SC_EMU_BINDINGS(control) {
  m.def("set_schedule", &sc_emu::set_schedule, pybind11::arg("mode"),
        "Thread schedule of later emulated launches: \"parallel\" (threads run freely; for ThreadSanitizer), "
        "\"forward\" or \"reverse\" (deterministic: one thread at a time, each running until it blocks at a "
        "barrier / warp collective or returns, then the runnable thread with the lowest (forward) or highest "
        "(reverse) tid). Default \"forward\". A missing __syncthreads gives a wrong result in at least one of "
        "forward/reverse.");
  m.def("get_schedule", &sc_emu::get_schedule, "The current thread schedule (see set_schedule).");
  m.def("set_block_order", &sc_emu::set_block_order, pybind11::arg("order"), pybind11::arg("seed") = 0,
        "Order in which later launches run their blocks (one at a time): \"forward\" (default), \"reverse\" or "
        "\"shuffle\" (a permutation drawn from `seed`). Races between blocks show up as order-dependent results.");
  m.def(
      "get_block_order",
      [] { return std::make_tuple(sc_emu::get_block_order(), sc_emu::get_block_order_seed()); },
      "(order, seed) of the current block order (see set_block_order).");
  m.def("set_launch_limits", &sc_emu::set_launch_limits, pybind11::arg("max_grid_blocks") = 0,
        pybind11::arg("max_chunk_elements") = 0,
        "Lowers, for later launches, the caps the launch code puts on the blocks of a grid-stride launch (CUDA: "
        "4096 for the Hough kernels, 65535 for mutual_matching and the gathers) and on the elements of one chunk "
        "of gather_windows4d_linear (CUDA: 2^24), so tests run those loops on tiny inputs. 0 = the CUDA value.");
  m.def(
      "get_launch_limits",
      [] {
        return std::make_tuple(sc_emu::settings().max_grid_blocks.load(), sc_emu::settings().max_chunk_elements.load());
      },
      "(max_grid_blocks, max_chunk_elements) set by set_launch_limits (0: the CUDA value).");
  m.def(
      "set_tensor_cores", [](bool on) { sc_emu::settings().tensor_cores.store(on); }, pybind11::arg("on"),
      "Whether later emulated launches may use the tensor-core (mma.sync) kernels, as on a GPU of compute "
      "capability >= 8.0: float16/bfloat16 inputs always, float32 as TF32 when PyTorch's switch allows it "
      "(csrc/common/tensor_cores.h). Default False: the exact SIMT kernels.");
  m.def(
      "get_tensor_cores", [] { return sc_emu::settings().tensor_cores.load(); },
      "Whether emulated launches may use tensor-core kernels (see set_tensor_cores).");
  m.def(
      "mma_count", [] { return sc_emu::settings().mma_count.load(); },
      "Number of warp-wide mma.sync instructions emulated since reset_mma_count() (proof a launch took the "
      "tensor-core path).");
  m.def(
      "reset_mma_count", [] { sc_emu::settings().mma_count.store(0); }, "Set the mma_count() counter to 0.");
  m.def("warnings", &sc_emu::warning_count,
        "Number of shuffle reads of a lane outside the mask (or outside the block) since reset_warnings(); "
        "each such read returned poison (NaN / 0xDEADBEEF).");
  m.def("reset_warnings", &sc_emu::reset_warnings, "Set the warnings() counter to 0.");
}
