// The CUDA entry point of an op, made from its launch function (`<op>_launch.h`: checks, empty inputs and the
// launch sequence, taking the stream last): `cuda_entry<&launch, I>` has the launch's arguments without the
// stream, sets the device guard of argument I (a tensor) and passes the current stream. Included by the
// `<op>_cuda.cu` files only (CUDA builds), whose TORCH_LIBRARY_IMPL registers it:
//   m.impl("max_pool4d", cuda_entry<&max_pool4d_launch::max_pool4d, 0>);
#pragma once

#include <cstddef>
#include <tuple>
#include <utility>

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "common/launch.h"

namespace semcorr {

namespace cuda_entry_detail {

template <typename Fn>
struct LaunchTraits;

template <typename R, typename... Params>
struct LaunchTraits<R (*)(Params...)> {
  using Result = R;
  using Args = std::tuple<Params...>;             // the last one is the stream
  static constexpr std::size_t kArgs = sizeof...(Params) - 1;
};

template <auto Launch, std::size_t Guard, typename Seq>
struct Entry;

template <auto Launch, std::size_t Guard, std::size_t... I>
struct Entry<Launch, Guard, std::index_sequence<I...>> {
  using Traits = LaunchTraits<decltype(Launch)>;

  static typename Traits::Result call(std::tuple_element_t<I, typename Traits::Args>... args) {
    // the guard before the launch's checks: cuda_device_of leaves a CPU tensor to the op's device check
    const c10::cuda::OptionalCUDAGuard guard(cuda_device_of(std::get<Guard>(std::forward_as_tuple(args...))));
    return Launch(args..., c10::cuda::getCurrentCUDAStream());
  }
};

}  // namespace cuda_entry_detail

template <auto Launch, std::size_t Guard>
constexpr auto cuda_entry = &cuda_entry_detail::Entry<
    Launch, Guard, std::make_index_sequence<cuda_entry_detail::LaunchTraits<decltype(Launch)>::kArgs>>::call;

}  // namespace semcorr
