// Calling a semcorr op from C++ through the dispatcher, after linking libsemcorr (CMakeLists.txt).
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/torch.h>

#include <iostream>
#include <optional>

int main() {
  const auto op = c10::Dispatcher::singleton()
                      .findSchemaOrThrow("semcorr::corr4d", "")
                      .typed<at::Tensor(const at::Tensor&, const at::Tensor&, bool, bool, double, double,
                                         std::optional<at::ScalarType>)>();  // the schema's every argument
  const auto src = torch::randn({2, 64, 5, 6});
  const auto tgt = torch::randn({2, 64, 4, 3});
  const auto out = op.call(src, tgt, /*normalize=*/true, /*relu=*/false, /*power=*/1.0, /*eps=*/1e-6,
                           /*out_dtype=*/std::nullopt);
  const auto expected = torch::einsum("bcij,bckl->bijkl", {torch::nn::functional::normalize(src, torch::nn::functional::NormalizeFuncOptions().dim(1).eps(0)),
                                                           torch::nn::functional::normalize(tgt, torch::nn::functional::NormalizeFuncOptions().dim(1).eps(0))});
  const double err = (out - expected).abs().max().item<double>();
  std::cout << "corr4d " << out.sizes() << " max |ours - einsum| = " << err << std::endl;
  return err < 1e-4 ? 0 : 1;
}
