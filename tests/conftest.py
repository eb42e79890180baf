import glob
import importlib
import os

import pytest
import torch

torch.manual_seed(0)


def _emu_module():
    """The emulator module, or None when it was not built. A built module that fails to import (a broken
    ``.so``, a missing symbol) is an error, never a skip."""
    import semcorr_ext

    built = glob.glob(os.path.join(os.path.dirname(semcorr_ext.__file__), "_emu*.so"))
    try:
        return importlib.import_module("semcorr_ext._emu")
    except ImportError as e:
        if built:
            pytest.fail("semcorr_ext._emu was built (%s) but cannot be imported: %s" % (built[0], e))
        return None


@pytest.fixture(scope="session")
def emu():
    """The CUDA host emulator module; tests that need it are skipped (with the reason) when it is not built."""
    mod = _emu_module()
    if mod is None and os.environ.get("SEMCORR_REQUIRE_EMU") == "1":
        pytest.fail("semcorr_ext._emu is required (SEMCORR_REQUIRE_EMU=1) but could not be imported")
    if mod is None:
        pytest.skip("semcorr_ext._emu not built (SEMCORR_NO_EMU=1?): emulated CUDA kernels not tested")
    return mod


@pytest.fixture(params=["forward", "reverse"])
def emu_schedule(request, emu):
    """Runs the test under both deterministic serial thread orders of the emulator (a missing barrier
    gives a wrong result in at least one of them)."""
    old = emu.get_schedule()
    emu.set_schedule(request.param)
    yield request.param
    emu.set_schedule(old)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    torch.testing.assert_close(actual, expected.to(actual.dtype), rtol=rtol, atol=atol)


def resnet50_with_random_bn(seed=0):
    """A torchvision ResNet-50 with random weights and random BatchNorm statistics and affine parameters, so
    that a wrong BN mapping between layouts shows in the outputs."""
    import torchvision
    from torch import nn

    torch.manual_seed(seed)
    net = torchvision.models.resnet50(weights=None)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return net


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny CPU graphs are latency bound and oversubscribe a busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
