// Each csrc/<op>/<op>_emu.cpp adds its emulated launchers to the `semcorr_ext._emu` module through
// SC_EMU_BINDINGS, so adding an op never edits a shared file; sc_emu_bind::on_host turns an op's CUDA entry
// (csrc/<op>/<op>_launch.h, the function its <op>_cuda.cu calls) into the Python function of the emulator.
#pragma once
#include <c10/util/ArrayRef.h>
#include <torch/extension.h>

#include <cstddef>
#include <functional>
#include <tuple>
#include <utility>
#include <vector>

namespace sc_emu_bind {
using Binder = void (*)(pybind11::module_&);
inline std::vector<Binder>& binders() {
  static std::vector<Binder> b;
  return b;
}
struct Register {
  explicit Register(Binder f) { binders().push_back(f); }
};

// The Python-side type of an entry's parameter: pybind11 converts a list to a std::vector, which then views as
// the entry's c10::ArrayRef.
template <typename T>
struct PyArg {
  using type = T;
};
template <typename T>
struct PyArg<c10::ArrayRef<T>> {
  using type = std::vector<T>;
};

template <typename Fn>
struct Entry;
template <typename R, typename... A>
struct Entry<R (*)(A...)> {
  using Args = std::tuple<A...>;
  static constexpr std::size_t kArgs = sizeof...(A) - 1;  // all but the trailing stream
};

template <auto F, std::size_t... I>
auto on_host(std::index_sequence<I...>) {
  using Args = typename Entry<decltype(F)>::Args;
  return [](typename PyArg<std::tuple_element_t<I, Args>>::type... a) { return F(a..., nullptr); };
}

// The CUDA entry `R F(args..., cudaStream_t)` as a function of args... running on the host emulator (stream
// nullptr): the emulator binding of an op is the same code as its <op>_cuda.cu minus the device guard.
template <auto F>
auto on_host() {
  return on_host<F>(std::make_index_sequence<Entry<decltype(F)>::kArgs>{});
}

}  // namespace sc_emu_bind

// Usage, at namespace scope in <op>_emu.cpp:  SC_EMU_BINDINGS(corr4d) { m.def(...); }
#define SC_EMU_BINDINGS(name)                                                  \
  static void sc_emu_bind_##name(pybind11::module_& m);                        \
  static ::sc_emu_bind::Register sc_emu_register_##name(&sc_emu_bind_##name);  \
  static void sc_emu_bind_##name(pybind11::module_& m)
