"""Registers, shared memory, stack and spill bytes of every CUDA kernel, from `nvcc -Xptxas -v`, and its count
of tensor-core instructions (HMMA, from `cuobjdump -sass` of the compiled object), as a markdown table
(benchmarks/PTXAS.md). No GPU needed: this only compiles and disassembles.

    python benchmarks/ptxas_report.py benchmarks/PTXAS.md [--arch 80] [--only 'conv4d*' ...]

Tensor-core kernels (name contains `_tc_kernel`) must contain HMMA instructions: the report exits non-zero if one
has none (the mma.sync path compiled away, e.g. under a __CUDA_ARCH__ guard). cuobjdump comes from the pip package
nvidia-cuda-cuobjdump (with nvidia-cuda-nvdisasm), or from PATH.
"""
import argparse
import fnmatch
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _nvcc():
    sys.path.insert(0, ROOT)
    import setup_helpers  # noqa: F401  (sets CUDA_HOME like setup.py)

    from torch.utils.cpp_extension import CUDA_HOME, include_paths

    return os.path.join(CUDA_HOME, "bin", "nvcc"), include_paths(device_type="cuda")


def _cuobjdump():
    """cuobjdump (and the nvdisasm it runs) from the nvidia-cuda-cuobjdump/-nvdisasm wheels, else from PATH."""
    try:
        import nvidia

        for d in nvidia.__path__:
            for sub in glob.glob(os.path.join(d, "*", "bin")):
                if os.path.exists(os.path.join(sub, "cuobjdump")):
                    return os.path.join(sub, "cuobjdump"), sub
    except ImportError:
        pass
    exe = shutil.which("cuobjdump")
    if exe is None:
        raise RuntimeError("cuobjdump not found: pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm")
    return exe, os.path.dirname(exe)


def hmma_counts(obj):
    """{mangled kernel name: number of HMMA instructions} of every function in the object's SASS."""
    exe, bindir = _cuobjdump()
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    res = subprocess.run([exe, "-sass", obj], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError("cuobjdump -sass failed on %s:\n%s" % (obj, res.stderr[-3000:]))
    counts, cur = {}, None
    for line in res.stdout.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            cur = m.group(1)
            counts.setdefault(cur, 0)
        elif cur is not None and re.search(r"\bHMMA\.", line):
            counts[cur] += 1
    return counts


def compile_report(cu, arch, obj=os.devnull):
    nvcc, incs = _nvcc()
    cmd = [nvcc, "-c", cu, "-o", obj, "-std=c++20", "-O3", "--expt-relaxed-constexpr", "-DWITH_CUDA",
           "-DTORCH_EXTENSION_NAME=_C", "-DTORCH_API_INCLUDE_EXTENSION_H", "-D__CUDA_NO_HALF_OPERATORS__",
           "-D__CUDA_NO_HALF_CONVERSIONS__", "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__",
           "-gencode=arch=compute_%s,code=sm_%s" % (arch, arch), "-Xptxas=-v", "-Xcompiler=-fPIC",
           "-I" + os.path.join(ROOT, "csrc"), "-I" + sysconfig.get_paths()["include"]] + ["-I" + p for p in incs]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("nvcc failed on %s:\n%s" % (cu, res.stderr[-3000:]))
    return res.stderr


def parse(text):
    rows, cur = [], None
    for line in text.splitlines():
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            cur = dict(name=m.group(1), stack=0, spill_st=0, spill_ld=0, regs=None, smem=0)
            rows.append(cur)
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            cur.update(stack=int(m.group(1)), spill_st=int(m.group(2)), spill_ld=int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            cur["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            cur["smem"] = int(s.group(1)) if s else 0
    return [r for r in rows if r["regs"] is not None]


def demangle(names):
    if not shutil.which("c++filt"):
        return names
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    kinds = {"0": "tf32", "1": "f16", "2": "bf16"}  # semcorr::MmaKind template arguments
    out = [re.sub(r"\([^()]*\)$", "", o).replace("semcorr::", "") for o in out]  # drop the parameter list
    return [re.sub(r"\(MmaKind\)(\d)", lambda m: "MmaKind::" + kinds[m.group(1)], o) for o in out]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=os.path.join(ROOT, "benchmarks", "PTXAS.md"))
    ap.add_argument("--arch", default="80")
    ap.add_argument("--only", action="append", default=None,
                    help="glob of the csrc/*/*_cuda.cu file names to compile; repeatable (default: all)")
    args = ap.parse_args(argv)
    lines = ["# CUDA kernel resource usage (sm_%s)" % args.arch, "",
             "Generated by `python benchmarks/ptxas_report.py` (nvcc -Xptxas -v, cuobjdump -sass; no GPU needed). "
             "Goal: 0 spill bytes. HMMA: tensor-core instructions in the kernel's SASS (every `_tc_kernel` has some).",
             "", "| file | kernel | registers | static smem (B) | stack (B) | spill stores (B) | spill loads (B) | HMMA |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    total_spill, no_hmma = 0, []
    with tempfile.TemporaryDirectory() as tmp:
        for cu in sorted(glob.glob(os.path.join(ROOT, "csrc", "*", "*_cuda.cu"))):
            if args.only and not any(fnmatch.fnmatch(os.path.basename(cu), o) for o in args.only):
                continue
            obj = os.path.join(tmp, os.path.basename(cu) + ".o")
            rows = parse(compile_report(cu, args.arch, obj))
            hmma = hmma_counts(obj)
            for r, name in zip(rows, demangle([r["name"] for r in rows])):
                total_spill += r["spill_st"] + r["spill_ld"]
                n = hmma.get(r["name"], 0)
                if "_tc_kernel" in name and n == 0:
                    no_hmma.append(name)
                lines.append("| %s | `%s` | %d | %d | %d | %d | %d | %d |" % (
                    os.path.relpath(cu, ROOT), name, r["regs"], r["smem"], r["stack"], r["spill_st"], r["spill_ld"], n))
    lines += ["", "Total spill bytes: %d." % total_spill]
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if no_hmma:
        print("error: tensor-core kernels without HMMA instructions: %s" % ", ".join(no_hmma), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
