# One-command set-up: `make demo` runs the main job on the sample pair, `make test` runs the tests; each
# installs what it needs first. CUDA kernels are built whenever torch is a CUDA build and nvcc is found;
# SEMCORR_FORCE_CPU=1 builds the CPU kernels only (fast iteration).
PY ?= python
PIP ?= $(PY) -m pip
PYTEST_ARGS ?=

.PHONY: deps build install test demo bench ptxas gpu-check cpp sanitize clean

deps:
	$(PIP) install -q -r requirements.txt

# In-place build for tests and development (ninja: incremental).
build: deps
	$(PY) setup.py build_ext --inplace

# The real install: `semcorr` command + both packages in site-packages.
install: deps
	SEMCORR_NO_EMU=1 $(PIP) install --no-build-isolation --no-deps .

test: build
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: install
	$(PY) -m semcorr match --out matches.png

bench: build
	$(PY) -m pytest benchmarks -q --benchmark-json=benchmarks/results.json
	$(PY) benchmarks/report.py benchmarks/results.json benchmarks/RESULTS.md

# Registers, shared memory and spill bytes of every CUDA kernel (nvcc -Xptxas -v) and its tensor-core instruction
# count (HMMA, cuobjdump -sass; a *_tc_kernel without any fails), into benchmarks/PTXAS.md.
ptxas: deps
	$(PIP) install -q nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm
	$(PY) benchmarks/ptxas_report.py benchmarks/PTXAS.md

# On a machine with an NVIDIA GPU: build for that GPU only, every op GPU vs CPU, compute-sanitizer memcheck +
# racecheck, ops vs the published algorithms on the GPU -> benchmarks/GPU.md. Exits 2 at once without a GPU.
gpu-check: deps
	$(PY) benchmarks/gpu_check.py

# The CPU kernels and the emulated CUDA kernels under AddressSanitizer + UBSan (build/asan) and ThreadSanitizer
# over the free-running schedule (build/tsan); the in-place build is not touched. SANITIZE=asan|tsan|all;
# SANITIZE_TESTS=quick (default, CI): a reduced test set that reaches every kernel; =full: every emulated-kernel
# and CPU op test file (hours on 2 cores under ASan). See tools/sanitize.sh.
SANITIZE ?= all
SANITIZE_TESTS ?= quick
sanitize: deps
	PY=$(PY) SANITIZE_TESTS=$(SANITIZE_TESTS) bash tools/sanitize.sh $(SANITIZE) $(PYTEST_ARGS)

# The op library for libtorch C++ users (CMakeLists.txt) and its example program, CPU kernels (add
# CMAKE_ARGS=-DSEMCORR_WITH_CUDA=ON for CUDA). The torch wheel's CMake config needs to be told where the CUDA
# toolkit and the wheel's own libnvrtc are; these flags do it.
CMAKE_ARGS ?= -DSEMCORR_WITH_CUDA=OFF
cpp: deps
	TORCH_CUDA_ARCH_LIST="$${TORCH_CUDA_ARCH_LIST:-8.0;9.0}" cmake -S . -B build/cmake $(CMAKE_ARGS) \
	  -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
	  $$($(PY) setup_helpers.py --cmake-flags)
	cmake --build build/cmake -j2
	./build/cmake/semcorr_cpp_example

clean:
	rm -rf build semcorr_ext/*.so semcorr_ext/_build_info.py *.egg-info
