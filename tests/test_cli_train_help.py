"""`semcorr train METHOD --help` of an engine method shows the main settings of its default config."""
import pytest

from semcorr import cli


@pytest.mark.parametrize("method", ["ncnet", "sparse-ncnet"])
def test_engine_method_help_shows_its_default_config(method, capsys):
    from semcorr.train import _engine_config as C
    from semcorr.train import sparse_ncnet, ncnet

    recipe = (ncnet if method == "ncnet" else sparse_ncnet).RECIPE
    cfg = C.load_config(recipe.default_config)
    with pytest.raises(SystemExit):
        cli.main(["train", method, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default config %s" % recipe.default_config in text
    for key in ("epochs", "batch_size"):
        assert "%s=%s" % (key, cfg["train"][key]) in text
    assert "lr=%s" % cfg["optimizer"]["lr"] in text and "backbone=%s" % cfg["model"]["backbone"] in text
