#!/usr/bin/env python
"""Mutation testing for the Python code: plant one plausible bug at a time, run the tests that cover the file,
and report the mutants that no test kills.

The mutants are the mistakes a reviewer looks for (each is one edit of one AST node, written back as source):

* ``sign``: a unary minus dropped (``-x`` -> ``x``), ``a - b`` -> ``a + b`` and back;
* ``arith``: ``*`` <-> ``/``, ``//`` -> ``/``, ``**`` -> ``*``;
* ``drop-norm``: ``a / b`` -> ``a`` (a dropped normalisation), a call of a normalising function
  (``normalize``, ``softmax``, ``log_softmax``, ``l2_norm``, ``clamp*``, ``abs``, ``sqrt``, ``relu``) replaced by
  its first argument, ``.mean(`` -> ``.sum(``;
* ``off-by-one``: an integer constant ``k`` -> ``k + 1``; a comparison ``<`` <-> ``<=``, ``>`` <-> ``>=``;
* ``swap``: the first two positional arguments of a call swapped; the operands of a comparison or of ``-`` / ``/``
  swapped;
* ``default``: a numeric default of a function argument changed (``k`` -> ``k + 1``, ``x`` -> ``2 x``, ``0.0`` -> ``1.0``),
  a ``True`` / ``False`` default flipped.

Code inside ``raise`` / ``assert`` statements, docstrings and argument checks that end in ``raise`` is left alone
(those mutants only change error messages). Each mutant runs the tests mapped to its file (``-x``, a per-mutant
timeout; a timeout counts as killed) and the file is restored afterwards, whatever happens.

Run it ONLY in a private worktree (others edit /work/main concurrently), e.g.::

    git worktree add /work/wt-mutate -b mutate HEAD && cp semcorr_ext/*.so semcorr_ext/_build_info.py /work/wt-mutate/semcorr_ext/
    cd /work/wt-mutate && OMP_NUM_THREADS=1 python tools/mutate.py --sample 6 --timeout 240 --budget 1800 \
        --report mutants.json python/semcorr/losses/sfnet.py python/semcorr/models

Tests are mapped to a file by name (``tests/test_<stem>*.py``, e.g. ``losses/sfnet.py`` -> ``test_sfnet*.py``,
``test_values_sfnet*.py``) and by import (tests naming the module ``semcorr.losses.sfnet`` or
``from semcorr.losses import sfnet``); ``--tests`` overrides the mapping. ``--list`` prints the mutants without
running them.
"""
import argparse
import ast
import copy
import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TARGETS = ["python/semcorr/models", "python/semcorr/losses", "python/semcorr/eval", "semcorr_ext/flow.py"]
NORMALISERS = {"normalize", "softmax", "log_softmax", "l2_norm", "clamp", "clamp_min", "clamp_max", "abs", "sqrt",
               "relu", "featureL2Norm", "feature_l2_norm"}


@dataclass
class Mutant:
    path: str
    line: int
    kind: str
    before: str
    after: str
    start: tuple  # (line, col) of the replaced source span, 1-based line
    end: tuple
    status: str = "not run"
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------- mutant generation
def _protected_lines(tree: ast.AST) -> set:
    """Lines whose mutation only changes error handling: raise/assert statements, ``if <check>: raise``, docstrings,
    ``__all__``, warnings/logging calls."""
    lines = set()

    def cover(node):
        lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Raise, ast.Assert)):
            cover(node)
        elif isinstance(node, ast.If) and node.body and all(isinstance(s, ast.Raise) for s in node.body) \
                and not node.orelse:
            cover(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and node.body \
                and isinstance(node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None),
                                                                      ast.Constant) \
                and isinstance(node.body[0].value.value, str):
            cover(node.body[0])
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            cover(node)
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            if name in {"warn", "warning", "info", "debug", "print", "format"}:
                cover(node)
    return lines


def _call_name(call: ast.Call) -> Optional[str]:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def _const_variants(value):
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1]
    if isinstance(value, float):
        return [1.0] if value == 0.0 else [value * 2]
    return []


def _node_mutations(node: ast.AST):
    """(kind, replacement node) pairs for one node; the replacement is unparsed in place of the node's source."""
    out = []
    swap_op = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
               ast.Pow: ast.Mult}
    if isinstance(node, ast.BinOp) and type(node.op) in swap_op:
        kind = "sign" if isinstance(node.op, (ast.Add, ast.Sub)) else "arith"
        m = copy.deepcopy(node)
        m.op = swap_op[type(node.op)]()
        out.append((kind, m))
        if isinstance(node.op, ast.Div):
            out.append(("drop-norm", copy.deepcopy(node.left)))
        if isinstance(node.op, (ast.Sub, ast.Div)):
            m = copy.deepcopy(node)
            m.left, m.right = m.right, m.left
            out.append(("swap", m))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
            and not isinstance(node.operand, ast.Constant):
        out.append(("sign", copy.deepcopy(node.operand)))
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        flip = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
        if type(node.ops[0]) in flip:
            m = copy.deepcopy(node)
            m.ops = [flip[type(node.ops[0])]()]
            out.append(("off-by-one", m))
            m = copy.deepcopy(node)
            m.left, m.comparators = node.comparators[0], [node.left]
            out.append(("swap", m))
    elif isinstance(node, ast.Call):
        name = _call_name(node)
        if name in NORMALISERS:
            first = node.func.value if (isinstance(node.func, ast.Attribute) and not node.args) else \
                (node.args[0] if node.args else None)
            if first is not None and not isinstance(first, ast.Starred) \
                    and not (isinstance(first, ast.Name) and first.id in {"torch", "F", "np", "math", "nn"}):
                out.append(("drop-norm", copy.deepcopy(first)))
        if name == "mean" and isinstance(node.func, ast.Attribute):
            m = copy.deepcopy(node)
            m.func.attr = "sum"
            out.append(("drop-norm", m))
        pos = [a for a in node.args if not isinstance(a, ast.Starred)]
        if len(pos) >= 2 and len(pos) == len(node.args) and ast.dump(pos[0]) != ast.dump(pos[1]):
            m = copy.deepcopy(node)
            m.args[0], m.args[1] = m.args[1], m.args[0]
            out.append(("swap", m))
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(node.value, bool):
        for v in _const_variants(node.value):
            out.append(("off-by-one", ast.Constant(v)))
    return out


def _defaults(tree: ast.AST):
    """Default values of function arguments (``wrong defaults``)."""
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in list(fn.args.defaults) + [d for d in fn.args.kw_defaults if d is not None]:
                if isinstance(d, ast.Constant) and type(d.value) in (bool, int, float):
                    yield d


def generate(path: str) -> List[Mutant]:
    src = open(path).read()
    tree = ast.parse(src)
    protected = _protected_lines(tree)
    lines = src.splitlines(keepends=True)
    default_ids = {id(d) for d in _defaults(tree)}
    mutants = []

    def segment(node):
        return ast.get_source_segment(src, node)

    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or node.lineno in protected:
            continue
        if id(node) in default_ids:
            muts = [("default", ast.Constant(v)) for v in _const_variants(node.value)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            continue  # True/False outside defaults: mostly flags of library calls (keepdim=True ...)
        else:
            muts = _node_mutations(node)
        before = segment(node)
        if before is None:
            continue
        for kind, repl in muts:
            after = ast.unparse(repl)
            if not isinstance(repl, (ast.Constant, ast.Name, ast.Call, ast.Attribute, ast.Subscript)):
                after = "(%s)" % after
            if after == before:
                continue
            mutants.append(Mutant(os.path.relpath(path, ROOT), node.lineno, kind, before, after,
                                  (node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)))
    # keep only mutants whose source still parses (e.g. a constant inside an f-string spec does not)
    good = []
    for m in mutants:
        try:
            ast.parse(apply(src, m))
        except SyntaxError:
            continue
        good.append(m)
    del lines
    return good


def apply(src: str, m: Mutant) -> str:
    lines = src.splitlines(keepends=True)
    offs = [0]
    for ln in lines:
        offs.append(offs[-1] + len(ln))

    def pos(lc):  # ast col offsets are in UTF-8 bytes
        line = lines[lc[0] - 1]
        return offs[lc[0] - 1] + len(line.encode()[:lc[1]].decode())

    return src[:pos(m.start)] + m.after + src[pos(m.end):]


# ------------------------------------------------------------------------------------------------- test mapping
def _public_names(path: str) -> List[str]:
    """``__all__`` of a module, else its top-level public functions and classes."""
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            try:
                return list(ast.literal_eval(node.value))
            except ValueError:
                break
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_")]


def tests_for(path: str) -> List[str]:
    """Tests named after the file (or its subpackage: ``models/scnet/loss.py`` -> ``test_scnet*``) and tests that
    import the module or one of its public names."""
    rel = os.path.relpath(path, ROOT)
    parts = os.path.splitext(rel)[0].split(os.sep)
    if parts[0] == "python":
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    module = ".".join(parts)
    parent, leaf = ".".join(parts[:-1]), parts[-1]
    # a subpackage of semcorr.models (models/scnet/...) is named by the subpackage
    stem = parts[2] if len(parts) > 3 and parts[0] == "semcorr" else leaf
    names = [n for n in _public_names(path) if len(n) > 3] if not rel.endswith("__init__.py") else []
    pats = [r"\b%s\b" % re.escape(module), r"from\s+%s\s+import\s+[^\n]*\b%s\b" % (re.escape(parent), re.escape(leaf))]
    if names:
        pats.append(r"from\s+%s\s+import\s+\(?[^)]*?\b(%s)\b" % (re.escape(parent), "|".join(map(re.escape, names))))
    import_re = re.compile("|".join(pats))
    hits = set()
    for t in sorted(glob.glob(os.path.join(ROOT, "tests", "test_*.py"))):
        name = os.path.basename(t)
        if re.match(r"test_(values_)?%s(_|\.py)" % re.escape(stem), name) or import_re.search(open(t).read()):
            hits.add(os.path.relpath(t, ROOT))
    # the value tests first: they are small and pin numbers, so they kill most mutants soonest
    return sorted(hits, key=lambda t: (not os.path.basename(t).startswith("test_values_"), t))


# ------------------------------------------------------------------------------------------------------ running
def _clear_bytecode(path: str):
    cache = os.path.join(os.path.dirname(path), "__pycache__")
    for f in glob.glob(os.path.join(cache, os.path.splitext(os.path.basename(path))[0] + ".*.pyc")):
        os.remove(f)


def run_tests(tests: List[str], timeout: float, extra: List[str]) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow and not cuda"] \
        + extra + tests
    # its own process group, so that a timeout also ends the test run's children (CLI subprocesses, torchrun)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "killed (timeout)"
    return {0: "SURVIVED", 5: "no tests ran"}.get(rc, "killed")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("targets", nargs="*", default=DEFAULT_TARGETS, help="files or directories to mutate")
    p.add_argument("--sample", type=int, default=0, help="mutants per file, drawn at random (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kinds", default="", help="comma-separated mutant kinds to keep (default: all)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant (a timeout counts as killed)")
    p.add_argument("--budget", type=float, default=0.0, help="stop starting mutants after this many seconds")
    p.add_argument("--tests", nargs="*", default=None, help="tests to run for every file (default: mapped)")
    p.add_argument("--pytest-args", default="", help="extra pytest arguments, e.g. '-k loss'")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the check that the mapped tests pass unmutated (saves a full run per file)")
    p.add_argument("--report", default="", help="write the results as JSON here")
    p.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    p.add_argument("--rerun", default="", help="a previous --report: run again only its survivors (after adding "
                                               "tests), instead of drawing mutants")
    args = p.parse_args(argv)

    if os.path.realpath(ROOT) == "/work/main" and not args.list:
        sys.exit("mutate.py: run it in a private worktree, not in the shared /work/main (see the module docstring)")
    files = []
    for t in args.targets:
        t = os.path.join(ROOT, t) if not os.path.isabs(t) else t
        files += sorted(glob.glob(os.path.join(t, "**", "*.py"), recursive=True)) if os.path.isdir(t) else [t]
    kinds = set(filter(None, args.kinds.split(",")))
    rng = random.Random(args.seed)
    t0, results, extra = time.time(), [], args.pytest_args.split()
    rerun = None
    if args.rerun:
        rerun = [Mutant(**dict(r, start=tuple(r["start"]), end=tuple(r["end"]), status="not run", seconds=0.0))
                 for r in json.load(open(args.rerun)) if r["status"].startswith("SURVIVED")]
        files = sorted({os.path.join(ROOT, m.path) for m in rerun})
    for path in files:
        muts = [m for m in generate(path) if not kinds or m.kind in kinds]
        if rerun is not None:  # the same edits, found again in the current source
            rel = os.path.relpath(path, ROOT)
            muts = [m for m in muts if any((m.path, m.start, m.end, m.after) == (r.path, r.start, r.end, r.after)
                                           for r in rerun if r.path == rel)]
        elif args.sample and len(muts) > args.sample:
            muts = sorted(rng.sample(muts, args.sample), key=lambda m: m.line)
        tests = args.tests if args.tests is not None else tests_for(path)
        rel = os.path.relpath(path, ROOT)
        if args.list:
            for m in muts:
                print("%s:%d [%s] %s -> %s" % (rel, m.line, m.kind, m.before.replace("\n", " ")[:60], m.after[:60]))
            print("  tests: %s" % " ".join(tests))
            continue
        if not muts:
            continue
        if not tests:
            print("%s: no tests map to this file; %d mutants counted as survivors" % (rel, len(muts)), flush=True)
            for m in muts:
                m.status = "SURVIVED (no tests)"
            results += muts
            continue
        original = open(path).read()
        base = "SURVIVED" if args.no_baseline else run_tests(tests, args.timeout * 2, extra)
        if base != "SURVIVED":
            print("%s: the unmutated tests do not pass (%s); file skipped" % (rel, base), flush=True)
            continue
        try:
            for m in muts:
                if args.budget and time.time() - t0 > args.budget:
                    break
                with open(path, "w") as f:
                    f.write(apply(original, m))
                _clear_bytecode(path)
                s = time.time()
                m.status = run_tests(tests, args.timeout, extra)
                m.seconds = round(time.time() - s, 1)
                results.append(m)
                print("%-8s %s:%d [%s] %s -> %s (%.0fs)" % (m.status.split()[0], rel, m.line, m.kind,
                                                            m.before.replace("\n", " ")[:50], m.after[:50],
                                                            m.seconds), flush=True)
        finally:
            with open(path, "w") as f:
                f.write(original)
            _clear_bytecode(path)
        if args.budget and time.time() - t0 > args.budget:
            print("budget of %.0f s used: stopping" % args.budget, flush=True)
            break
    if args.list:
        return 0
    run = [m for m in results if m.status != "not run"]
    survived = [m for m in run if m.status.startswith("SURVIVED")]
    killed = len(run) - len(survived)
    print("\n%d mutants run, %d killed, %d survived: score %.0f%%" % (len(run), killed, len(survived),
                                                                      100.0 * killed / max(len(run), 1)))
    for m in survived:
        print("  survived: %s:%d [%s] %s -> %s" % (m.path, m.line, m.kind, m.before.replace("\n", " ")[:60],
                                                   m.after[:60]))
    if args.report:
        with open(args.report, "w") as f:
            json.dump([asdict(m) for m in run], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
