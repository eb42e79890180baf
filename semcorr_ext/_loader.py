"""Loading the compiled library, with errors that say what to do, and build information."""
import importlib
import os

import torch


def _built_info():
    try:
        from . import _build_info as b
    except ImportError as e:  # pragma: no cover - only without a build
        raise ImportError(
            "semcorr_ext is not built. Install it with `pip install --no-build-isolation .` "
            "(or `python setup.py build_ext --inplace` in a source checkout).") from e
    return b


def _same_release(a, b):
    # "2.14.1+cu130" vs "2.14.1": the local build tag does not change the ABI we compiled against, the
    # release does.
    return a.split("+")[0] == b.split("+")[0]


def load_extension():
    """Import semcorr_ext._C after checking that the running torch is the one it was built against."""
    b = _built_info()
    if not _same_release(b.TORCH_VERSION, torch.__version__) and not os.environ.get("SEMCORR_SKIP_VERSION_CHECK"):
        raise ImportError(
            "semcorr_ext was built against torch %s but torch %s is running; C++ extensions are tied to the "
            "torch they were compiled with. Rebuild: `pip install --no-build-isolation --force-reinstall "
            "--no-deps .` (set SEMCORR_SKIP_VERSION_CHECK=1 to try anyway)." % (b.TORCH_VERSION, torch.__version__))
    try:
        return importlib.import_module("semcorr_ext._C")
    except ImportError as e:
        raise ImportError(
            "semcorr_ext._C failed to load (%s). If torch was upgraded or the build is stale, rebuild with "
            "`pip install --no-build-isolation --force-reinstall --no-deps .`." % e) from e


def build_info():
    """What this build contains: versions, whether CUDA kernels are compiled in, for which architectures,
    and whether the CUDA host emulator (used by tests) is available."""
    b = _built_info()
    from . import _C

    try:
        importlib.import_module("semcorr_ext._emu")
        emu = True
    except ImportError:
        emu = False
    return {
        "version": b.VERSION,
        "torch_built": b.TORCH_VERSION,
        "torch_running": torch.__version__,
        "cuda_built": b.TORCH_CUDA_VERSION if b.WITH_CUDA else None,
        "with_cuda": bool(_C.with_cuda()),
        "cuda_arch_list": b.CUDA_ARCH_LIST,
        "cuda_available": torch.cuda.is_available(),
        "emulator": emu,
    }
