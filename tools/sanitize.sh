#!/usr/bin/env bash
# `make sanitize` (issue #17): the CPU kernels and the emulated CUDA kernels under sanitizers, in separate build
# directories (the in-place .so files are never touched):
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer (build/asan): the emulated-kernel tests, the CPU op tests
#         and the bounds tests. The emulator allocates dynamic shared memory with exactly the launch's size, so
#         a read past it is reported like any heap overflow.
#   tsan  ThreadSanitizer (build/tsan) over the emulated-kernel tests with every launch on the free "parallel"
#         schedule (SC_EMU_FORCE_PARALLEL=1): any race between the threads of a block on shared or global
#         memory is reported. OMP_NUM_THREADS=1: libgomp is not instrumented.
# Each lane also checks itself: a planted out-of-bounds shared-memory read (asan) and a planted race (tsan) in
# toy kernels (csrc/emu/selftest_kernel.cuh) must be reported (tests/test_sanitize_lane.py).
# Usage: [SANITIZE_TESTS=quick|full] tools/sanitize.sh [asan|tsan|all] [extra pytest args]. Last line: "sanitize: ..."
set -uo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
shift || true
PY=${PY:-python}
export OMP_NUM_THREADS=1 MPLBACKEND=Agg
# the emulated kernels and the op tests; test_emu_simt's buggy-kernel tests rely on the serial schedules (tsan
# forces "parallel"), so the tsan lane takes the op kernels only
ASAN_TESTS="tests/test_emu_*.py tests/test_bounds.py tests/test_corr4d.py tests/test_mutual_matching.py
  tests/test_conv4d.py tests/test_max_pool4d.py tests/test_corr4d_topk.py tests/test_sparse_conv4d.py
  tests/test_gather_windows4d.py tests/test_gather_windows4d_points.py tests/test_patchmatch.py
  tests/test_hough_match.py tests/test_hough_vote.py tests/test_kernel_soft_argmax.py tests/test_op_contract.py"
TSAN_TESTS="tests/test_emu_consensus.py tests/test_emu_correlation.py tests/test_emu_hough.py
  tests/test_emu_soft_argmax.py tests/test_emu_patchmatch.py tests/test_emu_sparse.py
  tests/test_emu_half.py tests/test_emu_launch.py tests/test_emu_mma.py tests/test_emu_tensor_cores.py
  tests/test_emu_out_dtype.py
  tests/test_op_contract.py::test_emulated_kernel tests/test_op_contract.py::test_emulated_kernel_empty
  tests/test_op_contract.py::test_emulated_kernel_bad_input"
# SANITIZE_TESTS=quick (the default, and CI's run): a reduced set that still reaches every kernel — every emulated CUDA op
# forward and backward in float16/bfloat16 (test_emu_half; the two integer ops
# in their own files; the tensor-core kernels), every CPU op over the GPU table's rows (test_cuda_ops'
# CPU self-check: empty, non-contiguous and every option set), the bfloat16 CPU paths and the bounds checks. The
# full lists above take hours on 2 cores under ASan (every emulated thread is an instrumented OS thread).
case "${SANITIZE_TESTS:=quick}" in quick|full) ;; *) echo "SANITIZE_TESTS must be quick or full, got '$SANITIZE_TESTS'"; exit 2;; esac
if [ "$SANITIZE_TESTS" = quick ]; then
  INT_OPS="tests/test_emu_sparse.py::test_kernel_map4d tests/test_emu_patchmatch.py::test_patchmatch_propagate_block_orders"
  # the tensor-core kernels (emulated mma.sync), one small case of each kernel and direction
  TC="tests/test_emu_mma.py tests/test_emu_tensor_cores.py::test_path_selection
    tests/test_emu_tensor_cores.py::test_conv4d_path_selection tests/test_emu_tensor_cores.py::test_corr4d_topk_tc_kernel_forward
    tests/test_emu_tensor_cores.py::test_sparse_conv4d_tc_kernels_forward_feature_and_weight_grad
    tests/test_emu_tensor_cores.py::test_conv4d_tc_kernels_forward_input_and_weight_grad[5-True-dtype0]"
  ASAN_TESTS="tests/test_emu_half.py $INT_OPS $TC tests/test_bounds.py tests/test_cuda_ops.py tests/test_bf16.py"
  TSAN_TESTS="tests/test_emu_half.py $INT_OPS $TC"
fi
summary=()
status=0

build() {  # $1 = asan | tsan: CPU kernels + emulator, sanitized, into build/$1/lib
  local t=$SECONDS
  mkdir -p "build/$1"
  if ! SEMCORR_FORCE_CPU=1 SEMCORR_NO_EMU=0 SEMCORR_SANITIZE=$1 $PY setup.py build --build-base "build/$1" \
      --build-lib "build/$1/lib" > "build/$1/build.log" 2>&1; then
    grep -E -B2 -A6 " error|Error" "build/$1/build.log" | tail -40
    echo "sanitize: $1 build failed (build/$1/build.log)"; return 1
  fi
  echo "=== $1 build: $((SECONDS - t))s"
}

run() {  # $1 = asan | tsan, then test files; pytest imports semcorr_ext from build/$1/lib only
  local lane=$1; shift
  local rt; rt=$(gcc -print-file-name=lib$lane.so)
  local pre="$rt $(gcc -print-file-name=libstdc++.so.6)"  # the runtime first, with libstdc++ (C++ exceptions)
  local t=$SECONDS log="build/$lane/pytest.log"
  # -P and -o pythonpath: build/$lane/lib goes first on sys.path (pytest inserts the list in order), so neither
  # the in-place package in the working directory nor python/ shadows it; "." stays for tests/ and benchmarks/
  LD_PRELOAD="$pre" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:verify_asan_link_order=0" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
  TSAN_OPTIONS="halt_on_error=1:report_signal_unsafe=0:second_deadlock_stack=1" \
  SEMCORR_SANITIZE_LANE=$lane SEMCORR_REQUIRE_EMU=1 PYTHONPATH="$PWD/build/$lane/lib" \
    $PY -P -m pytest -q -p no:cacheprovider -o pythonpath="build/$lane/lib ." "$@" > "$log" 2>&1
  local rc=$?
  tail -3 "$log"
  if [ $rc -ne 0 ]; then
    grep -E -m5 -A12 "ERROR: (AddressSanitizer|ThreadSanitizer)|WARNING: ThreadSanitizer|runtime error:" "$log" || true
    echo "=== $lane tests FAILED (rc $rc, $((SECONDS - t))s): $log"
    summary+=("$lane FAILED"); status=1
  else
    echo "=== $lane tests passed ($((SECONDS - t))s)"
    summary+=("$lane passed ($(grep -E -o '[0-9]+ passed' "$log" | tail -1), $((SECONDS - t))s)")
  fi
}

t0=$SECONDS
if [ "$MODE" = asan ] || [ "$MODE" = all ]; then
  if build asan; then
    # shellcheck disable=SC2086
    run asan tests/test_sanitize_lane.py $ASAN_TESTS "$@"
  else summary+=("asan build FAILED"); status=1; fi
fi
if [ "$MODE" = tsan ] || [ "$MODE" = all ]; then
  if build tsan; then
    # shellcheck disable=SC2086
    export SC_EMU_FORCE_PARALLEL=1
    run tsan tests/test_sanitize_lane.py $TSAN_TESTS "$@"
  else summary+=("tsan build FAILED"); status=1; fi
fi
echo "sanitize: $( [ $status -eq 0 ] && echo OK || echo FAILED ) — ${summary[*]} — $((SECONDS - t0))s"
exit $status
