"""`make gpu-check` on this GPU-less machine: it must stop at once, and its report writer must turn recorded
sample artifacts (made up here, marked as a sample) into the tables of benchmarks/GPU.md."""
import json
import subprocess
import sys
import time

import pytest
import torch

from benchmarks import gpu_check, gpu_report


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path (this machine has a GPU)")
def test_fails_fast_without_gpu():
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "benchmarks/gpu_check.py"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "no CUDA GPU is visible" in p.stderr
    assert time.monotonic() - t0 < 60


def test_unknown_step_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        gpu_check.main(["--steps", "tests,bogus"])
    assert e.value.code == 2
    assert "unknown step(s) bogus" in capsys.readouterr().err


def _sample_artifacts(tmp_path):
    junit = tmp_path / "cuda_ops.xml"
    junit.write_text('<testsuites><testsuite tests="3" failures="1" errors="0" skipped="0">'
                     '<testcase name="test_corr4d_topk"/><testcase name="test_consensus"><failure/></testcase>'
                     '<testcase name="test_hough"/></testsuite></testsuites>')
    memcheck = tmp_path / "memcheck.log"
    memcheck.write_text("========= COMPUTE-SANITIZER\n...\n========= ERROR SUMMARY: 0 errors\n")
    racecheck = tmp_path / "racecheck.log"
    racecheck.write_text("========= COMPUTE-SANITIZER\nKilled\n")  # a run that died before its summary
    bench = tmp_path / "gpu_bench.json"
    rows = [("corr4d", "fp32", "ours", 2.0, 10 * 2**20), ("corr4d", "fp32", "published", 5.0, 40 * 2**20),
            ("corr4d", "bf16", "ours", 1.0, 5 * 2**20)]
    bench.write_text(json.dumps({"benchmarks": [
        {"extra_info": {"op": op, "precision": pr, "impl": im, "cuda_ms": ms, "cuda_peak_bytes": b}}
        for op, pr, im, ms, b in rows]}))
    return [{"step": "build", "status": "passed", "seconds": 200},
            {"step": "tests", "status": "failed (exit 1)", "seconds": 30, "junit": str(junit)},
            {"step": "memcheck", "status": "passed", "seconds": 90, "log": str(memcheck)},
            {"step": "racecheck", "status": "timed out after 150 s", "seconds": 150, "log": str(racecheck)},
            {"step": "bench", "status": "passed", "seconds": 100, "bench_json": str(bench)}]


def test_report_from_sample_artifacts(tmp_path):
    out = tmp_path / "GPU.md"
    gpu_report.write_report(out, ("Sample GPU", "9.0"), _sample_artifacts(tmp_path), sample=True)
    text = out.read_text()
    assert "SAMPLE REPORT" in text and "(sm_90)" in text
    assert "3 tests: 1 failures, 0 errors, 0 skipped." in text and "- failed: `test_consensus`" in text
    assert "| memcheck | ERROR SUMMARY: 0 errors |" in text
    assert "| racecheck | no summary (timed out after 150 s) |" in text
    assert "| corr4d | fp32 | 2.000 | 5.000 | 2.50 | 10.0 | 40.0 |" in text
    assert "| corr4d | bf16 | 1.000 | - | - | 5.0 | - |" in text
