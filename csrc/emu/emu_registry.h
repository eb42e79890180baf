// Each csrc/emu/emu_<op>.cpp adds its emulated launchers to the `semcorr_ext._emu` module through
// SC_EMU_BINDINGS, so adding an op never edits a shared file.
#pragma once
#include <torch/extension.h>

#include <functional>
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
}  // namespace sc_emu_bind

// Usage, at namespace scope in emu_<op>.cpp:  SC_EMU_BINDINGS(corr4d) { m.def(...); }
#define SC_EMU_BINDINGS(name)                                                  \
  static void sc_emu_bind_##name(pybind11::module_& m);                        \
  static ::sc_emu_bind::Register sc_emu_register_##name(&sc_emu_bind_##name);  \
  static void sc_emu_bind_##name(pybind11::module_& m)
