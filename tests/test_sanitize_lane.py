"""Tests of the sanitizer lane itself (`make sanitize`, tools/sanitize.sh): a planted out-of-bounds read of
dynamic shared memory is reported by AddressSanitizer, a planted race between the threads of a block by
ThreadSanitizer, and their correct counterparts are not reported.

They run inside the lane (SEMCORR_SANITIZE_LANE=asan|tsan, a sanitized build on PYTHONPATH, the runtime
preloaded); a plain `make test` has no sanitizer runtime to observe, so there they are skipped with that reason.
Each planted bug runs in a child process, because a sanitizer report ends the process (halt_on_error=1)."""
import os
import subprocess
import sys

import pytest

LANE = os.environ.get("SEMCORR_SANITIZE_LANE", "")
in_lane = pytest.mark.skipif(LANE == "", reason="sanitizer-lane self-test: runs in `make sanitize` only")


def run_child(code):
    env = dict(os.environ)
    # the child starts in / (nothing there can shadow the sanitized build): point it at that build absolutely
    import semcorr_ext

    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(semcorr_ext.__file__)))
    env["SC_EMU_FORCE_PARALLEL"] = "1" if LANE == "tsan" else env.get("SC_EMU_FORCE_PARALLEL", "0")
    return subprocess.run([sys.executable, "-P", "-c", "import torch, semcorr_ext._emu as e\n" + code],
                          env=env, capture_output=True, text=True, timeout=300, cwd="/")


def test_the_lane_loads_the_sanitized_build():
    if not LANE:
        pytest.skip("sanitizer-lane self-test: runs in `make sanitize` only")
    import semcorr_ext._emu
    import semcorr_ext._C

    for mod in (semcorr_ext._C, semcorr_ext._emu):
        assert os.sep + os.path.join("build", LANE, "lib") + os.sep in mod.__file__, mod.__file__


@in_lane
@pytest.mark.skipif(LANE != "asan", reason="AddressSanitizer check (the asan lane)")
def test_asan_catches_a_shared_memory_read_past_the_end():
    bad = run_child("e.selftest_buggy('smem_oob_read', 64)")
    assert bad.returncode != 0 and "AddressSanitizer: heap-buffer-overflow" in bad.stderr, bad.stderr[-3000:]
    assert "smem_oob_read_kernel" in bad.stderr  # the report names the kernel
    good = run_child("x = torch.arange(100.0)\nprint(e.selftest_dynamic_smem_poison(x, 64).shape)")
    assert good.returncode == 0 and "AddressSanitizer" not in good.stderr, good.stderr[-3000:]


@in_lane
@pytest.mark.skipif(LANE != "tsan", reason="ThreadSanitizer check (the tsan lane)")
def test_tsan_catches_a_missing_barrier_race():
    code = "x = torch.arange(200.0)\ny = e.selftest_neighbour_sum(x, %s, 64)\nprint(float(y.sum()))"
    bad = run_child(code % "False")
    assert bad.returncode != 0 and "WARNING: ThreadSanitizer: data race" in bad.stderr, bad.stderr[-3000:]
    assert "neighbour_sum_kernel" in bad.stderr
    good = run_child(code % "True")
    assert good.returncode == 0 and "ThreadSanitizer" not in good.stderr, good.stderr[-3000:]
