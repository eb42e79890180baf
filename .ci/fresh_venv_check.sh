#!/usr/bin/env bash
# Install semcorr_ext as README's "Install" says into a fresh venv that has only torch, then run `semcorr
# match` on the sample pair and one compat check there, and check what the built wheel carried.
# Usage: bash .ci/fresh_venv_check.sh [SRC_DIR] (default: this checkout; its tracked files are copied, so its
# in-place build is never touched). Everything lives in /tmp and is removed at the end.
set -euo pipefail
src=$(cd "${1:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d /tmp/semcorr-fresh.XXXXXX)
trap 'rm -rf "$work"' EXIT
torch_version=$(grep -E '^torch==' "$src/requirements.txt" | cut -d= -f3)

# the tracked files only: no in-place .so, no build/ of the checkout
mkdir "$work/src"
(cd "$src" && git ls-files -z | xargs -0 tar cf - | tar xf - -C "$work/src")

python -m venv "$work/venv"
pip="$work/venv/bin/python -m pip"
quiet() { grep -v -E "Running pip as the 'root' user|^\[notice\]|^WARNING: Location" || true; }
echo "--- [$SECONDS s] venv + torch==$torch_version"
$pip install -q "torch==$torch_version" 2>&1 | quiet

cd "$work/src"
echo "--- [$SECONDS s] plain 'pip install .' must refuse (isolated build)"
if $pip install . > "$work/isolated.log" 2>&1; then
  echo "plain 'pip install .' built and installed: it must stop and point to --no-build-isolation"; exit 1
fi
grep -q "pip install --no-build-isolation ." "$work/isolated.log" || { cat "$work/isolated.log"; exit 1; }
echo "refused with the --no-build-isolation message"

echo "--- [$SECONDS s] documented install (CPU kernels; the emulator is left out by default)"
$pip install -q setuptools wheel ninja 2>&1 | quiet
SEMCORR_FORCE_CPU=1 $pip install -q --no-build-isolation . > "$work/install.log" 2>&1 \
  || { tail -40 "$work/install.log"; echo "documented install failed"; exit 1; }

cd "$work"   # never import the checkout's packages
echo "--- [$SECONDS s] semcorr match on the sample pair"
"$work/venv/bin/semcorr" match --out "$work/matches.png"
test -s "$work/matches.png"

echo "--- [$SECONDS s] installed package and compat check"
"$work/venv/bin/python" - "$torch_version" <<'PY'
import importlib.metadata as md
import importlib.util
import os
import sys

import torch

import semcorr
import semcorr_ext
from semcorr_ext.compat import ncnet

venv = sys.prefix
assert semcorr_ext.__file__.startswith(venv) and semcorr.__file__.startswith(venv), (semcorr_ext.__file__, venv)
# what the wheel pip built carried: the op library, not the test-only emulator
files = [str(f) for f in md.files("semcorr_ext")]
assert any(f.startswith("semcorr_ext/_C.") and f.endswith(".so") for f in files), files
assert not any("_emu" in f for f in files), [f for f in files if "_emu" in f]
assert importlib.util.find_spec("semcorr_ext._emu") is None, "the test-only emulator must not be installed"
assert any(f.startswith("semcorr_ext/compat/") for f in files) and any(f.startswith("semcorr/") for f in files)
info = semcorr_ext.build_info()
assert not info["with_cuda"] and not info["emulator"], info
reqs = md.requires("semcorr_ext")
assert "torch==%s" % sys.argv[1] in reqs, reqs
print("installed:", os.path.dirname(semcorr_ext.__file__), "requires:", ", ".join(reqs))

# NC-Net's consensus in its published weight layout [k1, Cout, Cin, k2, k3, k4]: forward equals the float64
# reference conv4d on the same weights in the standard layout, and its backward runs (broken in NC-Net's code).
from semcorr_ext import reference
from semcorr_ext.nn import Conv4d

torch.manual_seed(0)
nc = ncnet.NeighConsensus(use_cuda=False, kernel_sizes=[3, 3], channels=[4, 1])
sd = nc.state_dict()
assert list(sd) == ["conv.0.weight", "conv.0.bias", "conv.2.weight", "conv.2.bias"], list(sd)
assert sd["conv.0.weight"].shape == (3, 4, 1, 3, 3, 3), sd["conv.0.weight"].shape


def ref_stack(v):
    for i in (0, 2):
        w = Conv4d.ncnet_to_standard(sd["conv.%d.weight" % i]).double()
        v = torch.relu(reference.conv4d(v, w, sd["conv.%d.bias" % i].double()))
    return v


corr = torch.rand(1, 1, 4, 5, 4, 5, requires_grad=True)
out = nc(corr)
x = corr.detach().double()
ref = ref_stack(x) + ref_stack(x.permute(0, 1, 4, 5, 2, 3)).permute(0, 1, 4, 5, 2, 3)
err = (out.double() - ref).abs().max().item()
assert ref.abs().max() > 0.01 and err < 1e-5, err
out.sum().backward()
assert corr.grad is not None and torch.isfinite(corr.grad).all() and corr.grad.abs().sum() > 0
print("compat.ncnet NeighConsensus: max |ours - float64 reference| = %.2e, backward ok" % err)
PY
