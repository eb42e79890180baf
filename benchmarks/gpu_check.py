"""`make gpu-check`: prove the CUDA kernels on a machine with an NVIDIA GPU in one unattended run.

Steps (each logged under build/gpu_check/, each with a time limit so the whole run fits ~10 minutes on 16
cores): build for the present GPU's architecture only -> tests/test_cuda_ops.py (every op GPU vs CPU) ->
compute-sanitizer memcheck and racecheck over the same small cases (when the tool is installed) ->
benchmarks/bench_gpu.py (ops vs the published algorithms on the GPU, fp32 / TF32 / bf16, CUDA-event times,
peak allocated memory) -> benchmarks/GPU.md. Without a GPU it stops at once with exit code 2.

    python benchmarks/gpu_check.py [--skip-build] [--steps build,tests,sanitize,bench] [--out benchmarks/GPU.md]
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOGS = os.path.join(ROOT, "build", "gpu_check")
STEPS = ("build", "tests", "sanitize", "bench")
# seconds each step may take before it is stopped and reported as timed out
# the rows of tests/test_cuda_ops.py run under compute-sanitizer
SANITIZED_ROWS = "test_op and not noncontiguous and not empty and float32"
LIMITS = {"build": 330, "tests": 120, "memcheck": 150, "racecheck": 150, "bench": 180}


def gpu_info():
    """(name, "major.minor") of GPU 0, or None when torch sees no CUDA device."""
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        return None
    major, minor = torch.cuda.get_device_capability(0)
    return torch.cuda.get_device_name(0), "%d.%d" % (major, minor)


def find_sanitizer():
    """compute-sanitizer on PATH or in the CUDA toolkit, else None."""
    found = shutil.which("compute-sanitizer")
    if found:
        return found
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        cand = os.path.join(home or "", "compute-sanitizer", "compute-sanitizer")
        if home and os.path.isfile(cand):
            return cand
    return None


def run_step(name, cmd, env=None):
    """Run cmd with the step's time limit, output into build/gpu_check/<name>.log. Returns a result dict."""
    log = os.path.join(LOGS, name + ".log")
    t0 = time.monotonic()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                timeout=LIMITS[name]).returncode
            status = "passed" if rc == 0 else "failed (exit %d)" % rc
        except subprocess.TimeoutExpired:
            status = "timed out after %d s" % LIMITS[name]
    secs = time.monotonic() - t0
    print("gpu-check: %-9s %s in %.0f s (log: %s)" % (name, status, secs, os.path.relpath(log, ROOT)), flush=True)
    return {"step": name, "status": status, "seconds": round(secs, 1), "log": log}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of %s" % ", ".join(STEPS))
    ap.add_argument("--skip-build", action="store_true", help="use the extension already built in place")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "GPU.md"), help="report to write")
    args = ap.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    bad = [s for s in steps if s not in STEPS]
    if bad:
        ap.error("--steps: unknown step(s) %s; choose from %s" % (", ".join(bad), ", ".join(STEPS)))
    if args.skip_build and "build" in steps:
        steps.remove("build")

    info = gpu_info()
    if info is None:
        print("gpu-check: no CUDA GPU is visible to torch (torch.cuda.is_available() is False); nothing to check "
              "on this machine. Run `make gpu-check` on a machine with an NVIDIA GPU and driver.", file=sys.stderr)
        return 2
    name, arch = info
    os.makedirs(LOGS, exist_ok=True)
    print("gpu-check: %s (sm_%s)" % (name, arch.replace(".", "")), flush=True)
    py = sys.executable
    results = []
    env = dict(os.environ, SEMCORR_NO_EMU="1", TORCH_CUDA_ARCH_LIST=arch, MAX_JOBS=str(os.cpu_count() or 2))
    env.pop("SEMCORR_FORCE_CPU", None)
    if "build" in steps:
        results.append(run_step("build", [py, "setup.py", "build_ext", "--inplace"], env))
        if results[-1]["status"] != "passed":
            return finish(args.out, info, results)
    pytest = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"]
    if "tests" in steps:
        junit = os.path.join(LOGS, "cuda_ops.xml")
        results.append(run_step("tests", pytest + ["tests/test_cuda_ops.py", "--junitxml=" + junit]))
        results[-1]["junit"] = junit
    if "sanitize" in steps:
        san = find_sanitizer()
        if san is None:
            results.append({"step": "sanitize", "status": "not run: compute-sanitizer not found", "seconds": 0})
        for tool in ("memcheck", "racecheck") if san else ():
            # the GPU rows only, float32 and contiguous (the kernels' index math is the same for every dtype and
            # layout, and the sanitizers slow each launch 10-100x); -x: the first error is enough
            results.append(run_step(tool, [san, "--tool", tool, "--error-exitcode", "97", "--target-processes",
                                           "all"] + pytest + ["-x", "-m", "cuda", "-k", SANITIZED_ROWS,
                                                              "tests/test_cuda_ops.py"]))
    if "bench" in steps:
        js = os.path.join(LOGS, "gpu_bench.json")
        results.append(run_step("bench", pytest + ["benchmarks/bench_gpu.py", "--benchmark-json=" + js]))
        results[-1]["bench_json"] = js
    return finish(args.out, info, results)


def finish(out, info, results):
    sys.path.insert(0, ROOT)
    from benchmarks.gpu_report import write_report

    write_report(out, info, results)
    failed = [r["step"] for r in results if r["status"] != "passed" and not r["status"].startswith("not run")]
    print("gpu-check: %d steps, %d failed%s; report: %s" % (len(results), len(failed),
          " (%s)" % ", ".join(failed) if failed else "", os.path.relpath(out, ROOT)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
