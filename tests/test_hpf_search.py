"""``semcorr hpf-search`` as HPF's beamsearch.py: base ids 0..beam-1, only larger ids added, the published
``break`` on a repeated set, beam kept by a stable sort, all depths (no early stop), scored by HPF's
evaluation (300-px longer side, mean per-pair PCK, validation split, bbox threshold)."""
import csv
import warnings

import pytest

from semcorr.commands.hpf_search import protocol_pairs, published_beam_search, score_ids


def test_published_search_order_larger_ids_only_and_the_break():
    w = [0.1, 0.5, 0.3, 0.05, 0.4, 0.2]
    seen = []

    def score(ids):
        seen.append(ids)
        return sum(w[i] for i in ids)

    ids, best, hist = published_beam_search(score, list(range(6)), beam=2, max_depth=3, log=lambda *a: None)
    # depth 0: only (0,), (1,); depth 1 extends (1,) by 2..5 and (0,) by 1..5
    assert [s for s, _ in hist[0][1]] == [(0,), (1,)]
    assert [s for s, _ in hist[1][1]] == [(1, 2), (1, 3), (1, 4), (1, 5), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5)]
    # depth 2: beam (1, 4) 0.9, (1, 2) 0.8; (1, 2) + 3 is new, (1, 2) + 4 repeats (1, 2, 4): the published
    # 'break' ends (1, 2)'s extensions, so (1, 2, 5) is never scored
    assert [s for s, _ in hist[2][1]] == [(1, 2, 4), (1, 3, 4), (1, 4, 5), (1, 2, 3)]
    assert (1, 2, 5) not in seen
    assert ids == (1, 2, 4) and best == pytest.approx(1.2)


def test_published_search_has_no_early_stop():
    by_size = {1: 0.5, 2: 0.3, 3: 0.9}        # depth 1 is worse than depth 0: the search goes on

    def score(ids):
        return by_size[len(ids)] + 1e-3 * sum(ids)

    ids, best, hist = published_beam_search(score, list(range(5)), beam=2, max_depth=3, log=lambda *a: None)
    assert len(hist) == 3 and len(ids) == 3 and best > 0.9


def _pascal_val(root):
    from test_protocols_models import make_pascal

    make_pascal(root, (120, 160), (90, 200))
    rows = list(csv.reader(open(root / "test_pairs.csv")))
    with open(root / "val_pairs.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_search_score_is_the_eval_runner_under_hpfs_protocol(tmp_path):
    """score_ids (cached features) gives the mean per-pair PCK that ``semcorr eval`` gives for HPF with the
    same layer ids under the hpf/pfpascal protocol on the validation split with the box threshold."""
    from semcorr.eval.runner import EvalConfig, evaluate
    from semcorr.models.hpf import HyperpixelFlow

    _pascal_val(tmp_path / "pascal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HyperpixelFlow(backbone="resnet50", hyperpixel_ids=(0, 1, 2, 3, 4, 5), weights=None)
    pairs, kind = protocol_pairs("pfpascal", tmp_path / "pascal", split="val")
    assert kind == "bbox" and pairs[0].q_in.shape[-2:] == (120, 160)
    cache = [(model.layer_features(x.q_in[None], range(6)), model.layer_features(x.r_in[None], range(6)))
             for x in pairs]
    ids = (1, 3, 4)
    s = score_ids(model, cache, pairs, ids, 0.1, kind)
    model.ids = ids
    res = evaluate(EvalConfig(method="hpf", dataset="pfpascal", root=str(tmp_path / "pascal"), split="val",
                              thresh="bbox", alphas=(0.1,), progress=False, figures=False, print_table=False,
                              device="cpu"), model=model, log=lambda s: None)
    assert res["protocol"]["key"] == "hpf/pfpascal"
    assert s == pytest.approx(res["groups"]["all"]["pck"]["bbox"]["0.1"], abs=1e-9)


def test_cli_published_search_runs_on_the_validation_split(tmp_path, capsys):
    from semcorr.cli import main

    _pascal_val(tmp_path / "pascal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["hpf-search", "--dataset", "pfpascal", "--root", str(tmp_path / "pascal"), "--weights", "none",
                   "--candidates", "0-4", "--beam", "2", "--max-depth", "2"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "hpf-search (published)" in out and "1 pfpascal pairs (val)" in out and "best ids:" in out
    assert "UNTRAINED: hpf" in out
    assert main(["hpf-search", "--dataset", "pfpascal", "--root", str(tmp_path / "pascal"), "--weights", "none",
                 "--candidates", "2-4", "--beam", "2"]) == 2  # a one-line error (semcorr.cli)
    assert "starts from ids 0..beam-1" in capsys.readouterr().err

