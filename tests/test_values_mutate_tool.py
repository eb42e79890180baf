"""tools/mutate.py: the mutants it plants are valid one-edit changes of the source, they include the planted bugs
of issue #20 (the SFNet flow-consistency sign, NC-Net's weak-loss sign), and each file maps to its tests."""
import ast
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("mutate", os.path.join(ROOT, "tools", "mutate.py"))
mutate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutate)


def _mutants(rel):
    path = os.path.join(ROOT, rel)
    return path, open(path).read(), mutate.generate(path)


def test_every_mutant_is_one_parseable_edit():
    path, src, muts = _mutants("python/semcorr/losses/sfnet.py")
    assert len(muts) > 30
    kinds = {m.kind for m in muts}
    assert {"sign", "arith", "drop-norm", "off-by-one", "swap"} <= kinds
    for m in muts:
        out = mutate.apply(src, m)
        ast.parse(out)
        assert out != src
        # the edit is confined to the mutated span: the text before it is unchanged
        assert out.splitlines()[:m.start[0] - 1] == src.splitlines()[:m.start[0] - 1]


def test_wrong_defaults():
    _, src, muts = _mutants("python/semcorr/models/ncnet.py")
    defaults = [m for m in muts if m.kind == "default"]
    assert any(m.before == "0" and m.after == "1" and "relocalization_k: int = 1" in mutate.apply(src, m)
               for m in defaults)
    assert any(m.before == "True" and m.after == "False" for m in defaults)  # symmetric=True


def test_the_issue_bugs_are_among_the_mutants():
    _, src, muts = _mutants("python/semcorr/losses/sfnet.py")
    assert any(m.kind == "sign" and m.before == "-_warp(f_t, grid_s2t)" and m.after == "_warp(f_t, grid_s2t)"
               for m in muts)
    _, src, muts = _mutants("python/semcorr/losses/ncnet.py")
    flipped = [m for m in muts if m.before == "match_score(neg) - match_score(pos)" and m.kind == "swap"]
    assert flipped and "match_score(pos) - match_score(neg)" in mutate.apply(src, flipped[0])


def test_error_checks_and_docstrings_are_not_mutated():
    _, src, muts = _mutants("python/semcorr/losses/ncnet.py")
    lines = src.splitlines()
    for m in muts:
        line = lines[m.line - 1]
        assert "raise" not in line and '"""' not in line and "%d" not in line, line


def test_tests_are_mapped_by_name_and_import_value_tests_first():
    tests = mutate.tests_for(os.path.join(ROOT, "python/semcorr/losses/sfnet.py"))
    assert tests[0].startswith("tests/test_values_") and "tests/test_sfnet.py" in tests
    scnet = mutate.tests_for(os.path.join(ROOT, "python/semcorr/models/scnet/loss.py"))
    assert "tests/test_scnet_loss.py" in scnet and "tests/test_models_base.py" not in scnet
