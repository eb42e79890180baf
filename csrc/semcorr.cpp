// Every schema of the `semcorr` op library in one place (the public API at a glance), grouped by family (an
// op's family is the same in every tree: semcorr_ext/ops/<family>.py, reference/, _registrations/; the table is
// in csrc/README.md), and (in the Python build, which defines TORCH_EXTENSION_NAME) the `_C` module that carries
// build information. The CMake build for libtorch C++ users compiles the same file without Python. Kernels
// register themselves per backend in csrc/<op>/<op>_cpu.cpp and csrc/<op>/<op>_cuda.cu; autograd and fake
// kernels are registered in Python (semcorr_ext/_registrations/).
#include <torch/library.h>

TORCH_LIBRARY(semcorr, m) {
  // ---- correlation (csrc/corr4d, csrc/mutual_matching) ----
  m.def("corr4d(Tensor src, Tensor tgt, bool normalize, bool relu, float power, float eps, "
        "ScalarType? out_dtype=None) -> Tensor");
  m.def("_corr4d_backward(Tensor grad, Tensor src, Tensor tgt, Tensor out, bool normalize, bool relu, "
        "float power, float eps) -> (Tensor, Tensor)");
  m.def("mutual_matching(Tensor corr, float eps) -> Tensor");
  m.def("_mutual_matching_backward(Tensor grad, Tensor corr, float eps) -> Tensor");
  // ---- consensus (csrc/conv4d, csrc/max_pool4d) ----
  m.def("conv4d(Tensor x, Tensor weight, Tensor? bias, int[4] padding, ScalarType? out_dtype=None) -> Tensor");
  m.def("_conv4d_backward(Tensor grad, Tensor x, Tensor weight, int[4] padding, bool[3] output_mask) "
        "-> (Tensor, Tensor, Tensor)");
  m.def("max_pool4d(Tensor x, int[4] kernel_size) -> (Tensor, Tensor)");
  m.def("_max_pool4d_backward(Tensor grad, Tensor argmax, int[] x_size, int[4] kernel_size) -> Tensor");
  // ---- sparse (csrc/corr4d_topk, csrc/sparse_conv4d) ----
  m.def("corr4d_topk(Tensor src, Tensor tgt, int k, bool normalize, float eps) -> (Tensor, Tensor)");
  m.def("_corr4d_topk_backward(Tensor grad, Tensor src, Tensor tgt, Tensor values, Tensor indices, bool normalize, "
        "float eps) -> (Tensor, Tensor)");
  m.def("kernel_map4d(Tensor coords, int[] kernel_size) -> (Tensor, Tensor, Tensor)");
  m.def("sparse_conv4d(Tensor feats, Tensor weight, Tensor? bias, Tensor in_rows, Tensor out_rows, "
        "Tensor offsets_ptr) -> Tensor");
  m.def("_sparse_conv4d_backward(Tensor grad, Tensor feats, Tensor weight, Tensor in_rows, Tensor out_rows, "
        "Tensor offsets_ptr) -> (Tensor, Tensor, Tensor)");
  // ---- patchmatch ----
  // candidates (csrc/patchmatch_propagate), windows (csrc/gather_windows4d), selection (csrc/patchmatch_select)
  m.def("patchmatch_propagate(Tensor matches, Tensor offsets, int[2] target_size, int random_samples, int radius, "
        "int seed, int iteration) -> (Tensor, Tensor)");
  m.def("gather_windows4d(Tensor corr, Tensor candidates, int window) -> Tensor");
  m.def("_gather_windows4d_backward(Tensor grad, Tensor candidates, int[] corr_size, int window) -> Tensor");
  m.def("gather_windows4d_points(Tensor corr, Tensor points, int window) -> Tensor");
  m.def("_gather_windows4d_points_backward(Tensor grad, Tensor points, int[] corr_size, int window) -> Tensor");
  m.def("gather_windows4d_linear(Tensor corr, Tensor points, Tensor weight, Tensor? bias) -> Tensor");
  m.def("patchmatch_select(Tensor candidates, Tensor scores, Tensor valid, int k) -> (Tensor, Tensor, Tensor)");
  m.def("_patchmatch_select_backward(Tensor grad, Tensor indices, int n) -> Tensor");
  // ---- hough (csrc/hough_match, csrc/hough_vote; shared code in csrc/hough_common) ----
  // sizes: [W, H] shared by the batch or [W0, H0, W1, H1, ...] per pair (csrc/hough_match/hough_match.h)
  m.def("hough_match(Tensor app, Tensor src_centers, Tensor tgt_centers, float[] src_size, float[] tgt_size, "
        "int ncells, bool smooth) -> Tensor");
  m.def("_hough_match_backward(Tensor grad, Tensor app, Tensor src_centers, Tensor tgt_centers, "
        "float[] src_size, float[] tgt_size, int ncells, bool smooth) -> Tensor");
  m.def("hough_vote(Tensor app, Tensor bins, int[] nbins, Tensor? smooth_kernel) -> Tensor");
  m.def("_hough_vote_backward(Tensor grad, Tensor app, Tensor bins, int[] nbins, Tensor? smooth_kernel) -> Tensor");
  // ---- soft_argmax (csrc/kernel_soft_argmax) ----
  m.def("kernel_soft_argmax(Tensor corr, float beta, float sigma, bool normalize) -> Tensor");
  m.def("_kernel_soft_argmax_backward(Tensor grad, Tensor corr, float beta, float sigma, bool normalize) -> Tensor");
}

#ifdef TORCH_EXTENSION_NAME
#include <Python.h>

static PyObject* with_cuda(PyObject*, PyObject*) {
#ifdef WITH_CUDA
  Py_RETURN_TRUE;
#else
  Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"with_cuda", with_cuda, METH_NOARGS, "True when the CUDA kernels were compiled in."},
    {nullptr, nullptr, 0, nullptr}};

// A plain CPython module (no pybind11): importing it loads the library and runs the registrations above.
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};
PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module); }
#endif  // TORCH_EXTENSION_NAME
