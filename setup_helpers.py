"""Build-time helpers shared by setup.py and benchmarks/ptxas_report.py. Importing this sets CUDA_HOME."""
import glob
import os
import shutil


# torch's cpp_extension guesses CUDA_HOME from `which nvcc`'s parent, which is wrong when nvcc is a symlink
# or a wrapper script (here /usr/local/bin/nvcc execs /usr/local/cuda-13.0/bin/nvcc); find the real toolkit
# (the directory holding both bin/nvcc and include/cuda_runtime.h) before cpp_extension is imported.
def _find_cuda_home():
    nvcc = shutil.which("nvcc")
    candidates = [os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))] if nvcc else []
    candidates += ["/usr/local/cuda"] + sorted(glob.glob("/usr/local/cuda-*"), reverse=True)
    for c in candidates:
        if os.path.exists(os.path.join(c, "bin", "nvcc")) and os.path.exists(os.path.join(c, "include", "cuda_runtime.h")):
            return c
    return None


if not os.environ.get("CUDA_HOME") and not os.environ.get("CUDA_PATH") and _find_cuda_home():
    os.environ["CUDA_HOME"] = _find_cuda_home()



def cmake_flags():
    """Flags that let torch's CMake config find a CUDA toolkit whose nvcc is a wrapper, and the libnvrtc that
    ships in the nvidia-* wheels rather than in the toolkit."""
    flags = []
    home = os.environ.get("CUDA_HOME")
    if home:
        flags += ["-DCUDA_TOOLKIT_ROOT_DIR=" + home, "-DCUDAToolkit_ROOT=" + home,
                  "-DCMAKE_CUDA_COMPILER=" + os.path.join(home, "bin", "nvcc")]
    try:
        import nvidia

        libs = sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], "**", "libnvrtc.so*"), recursive=True))
        if libs:
            flags.append("-DCUDA_nvrtc_LIBRARY=" + libs[0])
    except ImportError:
        pass
    return flags


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--cmake-flags"]:
        print(" ".join(cmake_flags()))
