#!/usr/bin/env bash
# Install semcorr_ext as README's "Install" says into a fresh venv that has only torch, then run `semcorr
# match` on the sample pair and one compat check there. Usage: bash .ci/fresh_venv_check.sh [SRC_DIR]
# (default: this checkout; it is copied, so its in-place build is never touched). Everything lives in /tmp.
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
quiet() { grep -v -E "Running pip as the 'root' user|^\[notice\]" || true; }
$pip install -q "torch==$torch_version" 2>&1 | quiet

cd "$work/src"
echo "--- plain 'pip install .' must refuse (isolated build)"
if $pip install --no-deps . > "$work/isolated.log" 2>&1; then
  echo "plain 'pip install .' built and installed: it must stop and point to --no-build-isolation"; exit 1
fi
grep -q "pip install --no-build-isolation ." "$work/isolated.log" || { cat "$work/isolated.log"; exit 1; }
echo "refused with the --no-build-isolation message"

echo "--- documented install (CPU kernels, no emulator)"
$pip install -q setuptools wheel ninja 2>&1 | quiet
SEMCORR_FORCE_CPU=1 SEMCORR_NO_EMU=1 $pip install -q --no-build-isolation . > "$work/install.log" 2>&1 \
  || { tail -40 "$work/install.log"; echo "documented install failed"; exit 1; }

cd "$work"   # never import the checkout's packages
echo "--- semcorr match on the sample pair"
"$work/venv/bin/semcorr" match --out "$work/matches.png"
test -s "$work/matches.png"

echo "--- installed package and compat check"
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
assert importlib.util.find_spec("semcorr_ext._emu") is None, "the test-only emulator must not be installed"
info = semcorr_ext.build_info()
assert not info["with_cuda"] and not info["emulator"], info
reqs = md.requires("semcorr_ext")
assert "torch==%s" % sys.argv[1] in reqs, reqs
print("installed:", os.path.dirname(semcorr_ext.__file__), "requires:", ", ".join(reqs))

# NC-Net's consensus in its published weight layout: forward matches a float64 conv4d, backward runs.
torch.manual_seed(0)
nc = ncnet.NeighConsensus(use_cuda=False, kernel_sizes=[3, 3], channels=[4, 1])
sd = nc.state_dict()
assert sd["conv.0.weight"].shape == (3, 4, 1, 3, 3, 3), sd["conv.0.weight"].shape
corr = torch.rand(1, 1, 4, 5, 4, 5, requires_grad=True)
out = nc(corr)
ref = ncnet.reference_neigh_consensus(corr.detach().double(), sd)
err = (out.double() - ref).abs().max().item()
assert err < 1e-5, err
out.sum().backward()
assert corr.grad is not None and torch.isfinite(corr.grad).all()
print("compat.ncnet NeighConsensus: max |ours - float64 published| = %.2e, backward ok" % err)
PY
