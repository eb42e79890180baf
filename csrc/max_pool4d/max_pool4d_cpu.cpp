// CPU kernels of max_pool4d: one parallel pass over the output blocks (shared per-block code with the CUDA
// kernel in max_pool4d_math.h); the backward writes each block's gradient to its maximum (blocks do not
// overlap: no races, deterministic).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include "max_pool4d/max_pool4d.h"
#include "max_pool4d/max_pool4d_host.h"
#include "max_pool4d/max_pool4d_math.h"

namespace semcorr {
namespace {

max_pool4d_math::Dims to_dims(const max_pool4d_host::Geometry& g) {
  max_pool4d_math::Dims d{};
  d.BC = g.B * g.C, d.C = g.C;
  for (int i = 0; i < 4; ++i) d.in[i] = g.in[i], d.k[i] = g.k[i], d.out[i] = g.out[i];
  return d;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> max_pool4d_cpu(const at::Tensor& x, at::IntArrayRef kernel_size) {
  const auto g = max_pool4d_host::check_args(x, kernel_size, /*allow_half=*/false);
  auto values = at::empty(g.values_shape(), x.options());
  auto argmax = at::empty(g.argmax_shape(), x.options().dtype(at::kLong));
  const int64_t n = g.out_numel();
  if (n == 0) return {values, argmax};
  const auto xc = x.contiguous();
  const auto d = to_dims(g);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "max_pool4d_cpu", [&] {
    const scalar_t* xp = xc.const_data_ptr<scalar_t>();
    scalar_t* vp = values.mutable_data_ptr<scalar_t>();
    int64_t* ap = argmax.mutable_data_ptr<int64_t>();
    at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
      for (int64_t idx = begin; idx < end; ++idx) {
        int64_t off[4];
        max_pool4d_math::block_max<scalar_t, scalar_t>(xp, d, idx, vp[idx], off);
        for (int k = 0; k < 4; ++k) ap[max_pool4d_math::argmax_index(d, idx, k)] = off[k];
      }
    });
  });
  return {values, argmax};
}

at::Tensor max_pool4d_backward_cpu(const at::Tensor& grad, const at::Tensor& argmax, at::IntArrayRef x_size,
                                   at::IntArrayRef kernel_size) {
  const auto g = max_pool4d_host::check_backward_args(grad, argmax, x_size, kernel_size, /*allow_half=*/false);
  auto gx = at::zeros(g.x_shape(), grad.options());
  const int64_t n = g.out_numel();
  if (n == 0) return gx;
  const auto gc = grad.contiguous();
  const auto ac = argmax.contiguous();
  const auto d = to_dims(g);
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "max_pool4d_backward_cpu", [&] {
    const scalar_t* gp = gc.const_data_ptr<scalar_t>();
    const int64_t* ap = ac.const_data_ptr<int64_t>();
    scalar_t* op = gx.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
      for (int64_t idx = begin; idx < end; ++idx) {
        int64_t a[4];
        for (int k = 0; k < 4; ++k) {
          a[k] = ap[max_pool4d_math::argmax_index(d, idx, k)];
          TORCH_CHECK(a[k] >= 0 && a[k] < d.k[k], "semcorr::_max_pool4d_backward: `argmax` offsets must be in "
                      "[0, kernel_size), got ", a[k], " for kernel size ", d.k[k]);
        }
        op[max_pool4d_math::input_offset(d, idx, a)] = gp[idx];
      }
    });
  });
  return gx;
}

TORCH_LIBRARY_IMPL(semcorr, CPU, m) {
  m.impl("max_pool4d", &max_pool4d_cpu);
  m.impl("_max_pool4d_backward", &max_pool4d_backward_cpu);
}

}  // namespace semcorr
