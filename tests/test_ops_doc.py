"""docs/OPS.md keeps up with the code: every registered op has its section (its schema written exactly as
registered), every backward op its line, every public function of ``semcorr_ext.ops`` its anchor; every link
into the contract resolves; no "SPEC" reference points outside the repository; and the CPU dtype column of
the precision table is what the ops accept (and the output dtypes what they return)."""
import pathlib
import re
import subprocess

import pytest
import torch

from semcorr_ext import ops

REPO = pathlib.Path(__file__).resolve().parents[1]
DOC_PATH = REPO / "docs" / "OPS.md"
DOC = DOC_PATH.read_text()
ANCHORS = set(re.findall(r'<a id="([^"]+)"></a>', DOC))


def registered_ops():
    """Names of every op registered under torch.ops.semcorr (forward and backward)."""
    prefix = "semcorr::"
    return sorted({n[len(prefix):].split(".")[0] for n in torch._C._dispatch_get_all_op_names()
                   if n.startswith(prefix)})


FORWARD_OPS = [n for n in registered_ops() if not n.startswith("_")]
BACKWARD_OPS = [n for n in registered_ops() if n.startswith("_")]


def schema(name):
    return getattr(torch.ops.semcorr, name).default._schema


def test_the_registry_is_what_we_document():
    # guards the two lists below against an import that registered nothing
    assert len(FORWARD_OPS) >= 15 and len(BACKWARD_OPS) >= 12
    assert all(n.endswith("_backward") for n in BACKWARD_OPS)


@pytest.mark.parametrize("name", FORWARD_OPS)
def test_every_op_has_a_section_with_its_registered_schema(name):
    assert name in ANCHORS, "docs/OPS.md has no anchor <a id=\"%s\"></a>" % name
    assert re.search(r"^### .*`%s`" % re.escape(name), DOC, re.M), "docs/OPS.md has no '### `%s`' heading" % name
    assert str(schema(name)) in DOC.splitlines(), \
        "docs/OPS.md does not quote the registered schema of %s on a line of its own:\n%s" % (name, schema(name))


@pytest.mark.parametrize("name", BACKWARD_OPS)
def test_every_backward_op_has_a_line_with_its_arguments(name):
    m = re.search(r"`%s\(([^)]*)\)`" % re.escape(name), DOC)
    assert m, "docs/OPS.md has no line `%s(...)`" % name
    documented = [a.strip() for a in m.group(1).split(",")]
    assert documented == [a.name for a in schema(name).arguments]


@pytest.mark.parametrize("name", ops.__all__)
def test_every_public_function_is_documented(name):
    assert name in ANCHORS, "semcorr_ext.ops.%s has no anchor in docs/OPS.md" % name


def test_readme_links_the_contract():
    readme = (REPO / "README.md").read_text()
    assert "](docs/OPS.md)" in readme


def _repo_files(*suffixes):
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    files = [REPO / f for f in out if f.endswith(suffixes)]
    files += [DOC_PATH, pathlib.Path(__file__)]  # also before they are committed
    return sorted({f for f in files if f.is_file()})


SOURCES = _repo_files(".py", ".md", ".h", ".cpp", ".cu", ".cuh")


def test_no_reference_to_a_spec_outside_the_repository():
    found = []
    for path in SOURCES:
        if path == pathlib.Path(__file__):
            continue
        rel = path.relative_to(REPO).as_posix()
        for line in path.read_text(errors="replace").splitlines():
            if re.search(r"\bSPEC\b|SPEC\.md", line):
                found.append("%s: %s" % (rel, line.strip()))
    assert not found, "point these at docs/OPS.md#<section> instead:\n" + "\n".join(found)


def test_every_link_into_the_contract_resolves():
    broken = []
    for path in SOURCES:
        text = path.read_text(errors="replace")
        rel = path.relative_to(REPO).as_posix()
        targets = []
        # one link or a list, e.g. "docs/OPS.md#corr4d_topk, #sparse_conv4d" (it may continue on the next line)
        for m in re.finditer(r"docs/OPS\.md((?:[,\s]*#[A-Za-z0-9_-]+)+)", text):
            targets += re.findall(r"#([A-Za-z0-9_-]+)", m.group(1))
        if path == DOC_PATH:
            targets += re.findall(r"\]\(#([A-Za-z0-9_-]+)\)", text)
        broken += ["%s -> #%s" % (rel, t) for t in targets if t not in ANCHORS]
    assert not broken, "links to missing anchors of docs/OPS.md:\n" + "\n".join(broken)


# ---- the precision table against the ops -------------------------------------------------------------------

def precision_table():
    """{op: (cpu dtype names, output column)} from the table of the #precision section."""
    section = DOC.split('<a id="precision"></a>', 1)[1].split("<a id=", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `(\w+)` \|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|$", line)
        if m:
            rows[m.group(1)] = ({d.strip() for d in m.group(2).split(",")}, m.group(5).strip())
    return rows


def _rand(*shape, dtype, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def _idx(high, *shape, dtype=torch.int64, seed=0):
    return torch.randint(0, high, shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _map_tensors(kernel_map):
    return kernel_map.in_rows, kernel_map.out_rows, kernel_map.offsets_ptr


_COORDS = [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 1, 0, 0, 0], [0, 1, 1, 1, 1], [0, 2, 2, 2, 2]]

# one tiny call per op, with `dt` the dtype of its main input (the CPU column of the table)
CALLS = {
    "corr4d": lambda dt: ops.corr4d(_rand(1, 2, 3, 3, dtype=dt), _rand(1, 2, 3, 4, dtype=dt, seed=1)),
    "corr4d_topk": lambda dt: ops.corr4d_topk(_rand(1, 2, 3, 3, dtype=dt), _rand(1, 2, 3, 4, dtype=dt, seed=1), 2),
    "mutual_matching": lambda dt: ops.mutual_matching(_rand(1, 2, 3, 3, 2, dtype=dt)),
    "conv4d": lambda dt: ops.conv4d(_rand(1, 1, 3, 3, 3, 3, dtype=dt), _rand(2, 1, 3, 3, 3, 3, dtype=dt, seed=1)),
    "max_pool4d": lambda dt: ops.max_pool4d(_rand(1, 1, 4, 4, 4, 4, dtype=dt), 2),
    "kernel_map4d": lambda dt: _map_tensors(ops.kernel_map4d(torch.tensor(_COORDS, dtype=dt), 3)),
    "sparse_conv4d": lambda dt: ops.sparse_conv4d(_rand(5, 2, dtype=dt), torch.tensor(_COORDS),
                                                  _rand(3, 2, 3, 3, 3, 3, dtype=dt, seed=1)),
    "patchmatch_propagate": lambda dt: ops.patchmatch_propagate(_idx(3, 1, 3, 3, 1, 2, dtype=dt),
                                                                ops.patchmatch.pmnc_offsets(), target_size=(3, 3),
                                                                random_samples=2, radius=1),
    "gather_windows4d": lambda dt: ops.gather_windows4d(_rand(1, 3, 3, 3, 3, dtype=dt), _idx(3, 1, 3, 3, 2, 2), 3),
    "gather_windows4d_points": lambda dt: ops.gather_windows4d_points(_rand(1, 3, 3, 3, 3, dtype=dt), _idx(3, 4, 5), 3),
    "gather_windows4d_linear": lambda dt: ops.gather_windows4d_linear(_rand(1, 3, 3, 3, 3, dtype=dt), _idx(3, 4, 5),
                                                                      _rand(2, 3, 3, 3, 3, dtype=dt, seed=1)),
    "patchmatch_select": lambda dt: ops.patchmatch_select(_idx(3, 1, 3, 3, 4, 2), _rand(1, 3, 3, 4, dtype=dt),
                                                          torch.ones(1, 3, 3, 4, dtype=torch.bool), 2,
                                                          return_indices=True),
    "hough_match": lambda dt: ops.hough_match(_rand(1, 4, 5, dtype=dt), _rand(1, 4, 2, dtype=torch.float32) * 10,
                                              _rand(1, 5, 2, dtype=torch.float32, seed=1) * 10, (10, 10), (12, 9)),
    "hough_vote": lambda dt: ops.hough_vote(_rand(1, 4, 5, dtype=dt), _idx(5, 1, 4, 5) - 1, 4),
    "kernel_soft_argmax": lambda dt: ops.kernel_soft_argmax(_rand(1, 2, 3, 3, 4, dtype=dt)),
}
FLOATS = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}
INTS = {"int32": torch.int32, "int64": torch.int64}
C10_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int32": "Int",
             "int64": "Long"}  # how the C++ checks spell them


def test_the_precision_table_lists_every_op():
    assert sorted(precision_table()) == FORWARD_OPS
    assert sorted(CALLS) == FORWARD_OPS


@pytest.mark.parametrize("name", FORWARD_OPS)
def test_the_cpu_dtypes_of_the_precision_table_are_what_the_op_accepts(name):
    listed, output_column = precision_table()[name]
    candidates = INTS if listed <= set(INTS) else FLOATS
    assert listed <= set(candidates), "unknown dtype names in the row of %s: %s" % (name, listed)
    for dname, dt in candidates.items():
        if dname in listed:
            outs = CALLS[name](dt)
            for out in (outs if isinstance(outs, tuple) else (outs,)):
                if out.is_floating_point():  # floating outputs come back in the input dtype
                    assert out.dtype == dt and "input dtype" in output_column, (name, dname, out.dtype)
                else:  # index outputs are int64 (and `valid` is bool)
                    assert out.dtype in (torch.int64, torch.bool), (name, dname, out.dtype)
        else:
            with pytest.raises(RuntimeError) as err:
                CALLS[name](dt)
            msg = str(err.value)
            assert msg.startswith("semcorr::%s: `" % name), msg  # the op and the argument are named
            assert "got %s" % C10_NAMES[dname] in msg, msg  # and the dtype that was given
