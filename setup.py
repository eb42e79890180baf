"""Build semcorr_ext: the op library `semcorr_ext._C` and the CUDA host emulator `semcorr_ext._emu`.

Switches (environment variables):
  SEMCORR_FORCE_CPU=1     build the CPU kernels only (fast local iteration)
  FORCE_CUDA=1            build the CUDA kernels even if torch.cuda.is_available() is False (the default
                          already builds them whenever torch is a CUDA build and nvcc is found)
  TORCH_CUDA_ARCH_LIST    GPU architectures; default here "8.0;9.0+PTX" (torch's own default is every
                          architecture when no GPU is visible, which multiplies build time)
  MAX_JOBS                parallel compile jobs; capped to the number of cores
  SEMCORR_NO_EMU=0|1      build the emulator module or not; default: only in place (`setup.py build_ext
                          --inplace`, `make build`, editable installs), never into a wheel (it exists for
                          the tests of a source checkout)
  SEMCORR_DEBUG=1         -O0 -g
  SEMCORR_SANITIZE=asan|tsan   build with AddressSanitizer + UndefinedBehaviorSanitizer, or ThreadSanitizer
                          (used by `make sanitize` / tools/sanitize.sh, into build/<asan|tsan>; never in place)

Install with `pip install --no-build-isolation .` into the environment that has the torch you will run: the
extension is compiled against that torch, and the wheel's metadata pins it (torch==<build release>). A plain
`pip install .` (an isolated build, which cannot see your torch) stops at once with a message saying so.
"""
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # PEP 517 builds don't put it on sys.path
import setup_helpers  # noqa: E402,F401  (must run before torch.utils.cpp_extension is imported)

# Run-time dependencies. Kept as literals: tests/test_compat_install.py reads them (ast) to check that every
# third-party import of semcorr_ext/ and python/semcorr/ is declared. torch itself is pinned below to the
# release this build compiles against. Optional imports go through semcorr._optional, which names the extra.
RUNTIME_REQUIRES = ["numpy", "torchvision", "scikit-image", "matplotlib", "tqdm", "pyyaml", "pillow"]
EXTRAS_REQUIRE = {
    "datasets": ["scipy", "imageio"],  # PF-PASCAL .mat annotations, dataset image files
    "vit": ["timm"],  # DINOv2 backbones (semcorr.backbones_vit)
    "dev": ["pytest", "pytest-benchmark", "hypothesis", "setuptools>=64", "wheel", "ninja"],
}
EXTRAS_REQUIRE["all"] = sorted({r for reqs in EXTRAS_REQUIRE.values() for r in reqs})

NEED_TORCH = """semcorr_ext: cannot build, torch is not importable in the build environment.
semcorr_ext compiles C++/CUDA code against the torch it will run with, so it must be built where that torch
is installed:
    pip install torch                      # first, if it is not installed yet
    pip install setuptools wheel ninja
    pip install --no-build-isolation .
A plain `pip install .` builds in an isolated environment that cannot see your torch; building there would
need another torch (possibly a different release or CUDA version, a multi-GB download) and the compiled
extension would then fail to load with yours. See README, section "Install"."""

try:
    import torch  # noqa: E402
except ImportError:
    sys.exit(NEED_TORCH)
from setuptools import find_packages, setup  # noqa: E402
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension  # noqa: E402

ROOT = os.path.dirname(os.path.abspath(__file__))
VERSION = "0.1.0"
DEFAULT_ARCHS = "8.0;9.0+PTX"


def _flag(name):
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


def _want_cuda():
    if _flag("SEMCORR_FORCE_CPU"):
        return False, "SEMCORR_FORCE_CPU=1"
    if torch.version.cuda is None:
        return False, "torch is a CPU-only build"
    if CUDA_HOME is None or not os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc")):
        return False, "nvcc not found (set CUDA_HOME)"
    return True, "torch %s + nvcc in %s" % (torch.version.cuda, CUDA_HOME)


def _sources(pattern):
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern)))


def _write_build_info(with_cuda, archs):
    path = os.path.join(ROOT, "semcorr_ext", "_build_info.py")
    with open(path, "w") as f:
        f.write("# Written by setup.py at build time.\n")
        f.write("TORCH_VERSION = %r\n" % torch.__version__)
        f.write("TORCH_CUDA_VERSION = %r\n" % torch.version.cuda)
        f.write("WITH_CUDA = %r\n" % with_cuda)
        f.write("CUDA_ARCH_LIST = %r\n" % (archs if with_cuda else None))
        f.write("VERSION = %r\n" % VERSION)


def want_emulator(argv, environ):
    """Whether to build the test-only CUDA host emulator ``semcorr_ext._emu``: as SEMCORR_NO_EMU says when it
    is set, else only for in-place builds (the tests of a source checkout), so that wheels never carry it."""
    if environ.get("SEMCORR_NO_EMU", "") != "":
        return environ["SEMCORR_NO_EMU"].lower() not in ("1", "true", "yes", "on")
    return any(a in ("--inplace", "-i", "develop", "editable_wheel") for a in argv)


SANITIZERS = {
    # -fno-sanitize-recover: the first UB finding aborts (a test run cannot miss it in a long log)
    "asan": ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g"],
    "tsan": ["-fsanitize=thread", "-fno-omit-frame-pointer", "-g"],
}


def sanitizer_flags(environ):
    """Compile and link flags of SEMCORR_SANITIZE (empty when unset)."""
    name = environ.get("SEMCORR_SANITIZE", "")
    if not name:
        return []
    if name not in SANITIZERS:
        sys.exit("SEMCORR_SANITIZE must be one of %s, got %r" % (", ".join(sorted(SANITIZERS)), name))
    return SANITIZERS[name]


def extensions():
    with_cuda, why = _want_cuda()
    debug = _flag("SEMCORR_DEBUG")
    opt = ["-O0", "-g"] if debug else ["-O3"]
    san = sanitizer_flags(os.environ)
    if san:
        opt = ["-O1"]  # sanitizers: keep frames and line numbers useful
    cxx = opt + san + ["-fopenmp"]
    define = [("TORCH_EXTENSION_NAME", "_C")]
    sources = ["csrc/semcorr.cpp"] + _sources("csrc/*/*_cpu.cpp")
    archs = None
    if with_cuda:
        archs = os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_ARCHS)
        sources += _sources("csrc/*/*_cuda.cu")
        define.append(("WITH_CUDA", None))
        nvcc = opt + ["--expt-relaxed-constexpr", "-lineinfo"]
        if _flag("SEMCORR_PTXAS_VERBOSE"):
            nvcc.append("-Xptxas=-v")
        ext = CUDAExtension(
            "semcorr_ext._C", sources, include_dirs=[os.path.join(ROOT, "csrc")], define_macros=define,
            extra_compile_args={"cxx": cxx, "nvcc": nvcc}, extra_link_args=["-fopenmp"])
    else:
        ext = CppExtension(
            "semcorr_ext._C", sources, include_dirs=[os.path.join(ROOT, "csrc")], define_macros=define,
            extra_compile_args={"cxx": cxx}, extra_link_args=san + ["-fopenmp"])
    print("semcorr_ext build: CUDA kernels %s (%s); archs=%s; torch %s; MAX_JOBS=%s"
          % ("ON" if with_cuda else "OFF", why, archs, torch.__version__, os.environ.get("MAX_JOBS")))
    if not san:  # a sanitized build (build/<asan|tsan>/lib) must not rewrite the in-place build info
        _write_build_info(with_cuda, archs)
    exts = [ext]
    if want_emulator(sys.argv[1:], os.environ):
        # The CUDA entries and kernels (csrc/<op>/<op>_launch.h, *_kernel.cuh) compiled as host code against
        # csrc/common/simt.h (whose emulator half is csrc/emu/simt_emu.h): csrc/emu/ holds the module and the
        # emulator's own self-tests, csrc/<op>/<op>_emu.cpp each op's bindings.
        emu_cxx = (["-O0", "-g"] if debug else ["-O1"]) + san + ["-pthread", "-DSC_EMULATION"]
        exts.append(CppExtension(
            "semcorr_ext._emu", _sources("csrc/emu/*.cpp") + _sources("csrc/*/*_emu.cpp"),
            include_dirs=[os.path.join(ROOT, "csrc")],
            define_macros=[("TORCH_EXTENSION_NAME", "_emu")],
            extra_compile_args={"cxx": emu_cxx}, extra_link_args=san + ["-pthread"]))
    return exts


# A CUDA build on 2 cores takes minutes per file: never run more jobs than cores (each nvcc job is also
# memory hungry).
_cores = os.cpu_count() or 1
os.environ["MAX_JOBS"] = str(max(1, min(int(os.environ.get("MAX_JOBS", _cores)), _cores)))

# Guarded so that tests can import this file's helpers (setuptools and pip run it as __main__).
if __name__ == "__main__":
    setup(
        name="semcorr_ext",
        version=VERSION,
        description="Fast CPU/CUDA ops for semantic correspondence (4D correlation, neighbourhood consensus, "
                    "Hough matching, PatchMatch, kernel soft-argmax) and models built on them",
        packages=find_packages(include=["semcorr_ext", "semcorr_ext.*"])
        + ["semcorr." + p for p in find_packages("python/semcorr")] + ["semcorr"],
        package_dir={"semcorr": "python/semcorr"},
        # training configs (semcorr train --config NAME) resolve through importlib.resources: ship them
        package_data={"semcorr": ["assets/*", "configs/train/*.yaml", "configs/train/*.json"]},
        ext_modules=extensions(),
        cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
        entry_points={"console_scripts": ["semcorr=semcorr.cli:main"]},
        python_requires=">=3.9",
        # The compiled extension only loads with the torch release it was built against (semcorr_ext/_loader.py
        # checks this at import): the wheel says so, so pip never pairs it with another torch.
        install_requires=["torch==%s" % torch.__version__.split("+")[0]] + RUNTIME_REQUIRES,
        extras_require=EXTRAS_REQUIRE,
        zip_safe=False,
    )
