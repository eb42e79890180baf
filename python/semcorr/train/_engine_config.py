"""Training configurations: files under ``semcorr/configs/train/<model>_<dataset>.yaml`` (or ``.json``; package data,
installed with the package) plus command-line overrides.

A configuration is a nested dict with the sections ``method``, ``model`` (keyword arguments of
``build_model(method, ...)``), ``freeze``, ``optimizer``, ``scheduler``, ``train``, ``data`` and ``run``; see the
files in ``semcorr/configs/train/`` (each says where its published values come from).

``--config NAME`` takes a path or the stem of a file in the config folder; ``--set key.sub=value`` overrides one
entry (the value is read as YAML, so ``--set train.batch_size=4``, ``--set model.channels=[8,1]`` and
``--set data.val=null`` work), and may be given several times.
"""
import copy
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, Optional

__all__ = ["config_dir", "find_config", "load_config", "apply_overrides", "parse_value", "ConfigError"]


class ConfigError(ValueError):
    """A configuration file or override that cannot be used (the message names it)."""


def config_dir() -> Path:
    """The folder of the checked-in training configs: ``$SEMCORR_CONFIG_DIR`` if set, else ``configs/train`` of
    the installed ``semcorr`` package (package data: setup.py ships it in the wheel, so configs resolve by name
    without the source tree)."""
    env = os.environ.get("SEMCORR_CONFIG_DIR")
    if env:
        return Path(env)
    from importlib.resources import files

    # setup.py installs semcorr unzipped (zip_safe=False): the resource folder is a real directory
    return Path(str(files("semcorr").joinpath("configs").joinpath("train")))


def find_config(name_or_path: str) -> Path:
    """A config path from a path or the stem of a file in :func:`config_dir` (``ncnet_pfpascal``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    for ext in (".yaml", ".yml", ".json"):
        cand = config_dir() / (name_or_path + ext)
        if cand.is_file():
            return cand
    known = sorted(q.stem for q in config_dir().glob("*.y*ml")) + sorted(q.stem for q in config_dir().glob("*.json"))
    raise ConfigError("--config %r: no such file, and no %s/%s.yaml; known configs: %s"
                      % (name_or_path, config_dir(), name_or_path, ", ".join(known) or "(none)"))


def _yaml():
    try:
        import yaml
    except ImportError as e:  # pragma: no cover - PyYAML is in requirements.txt
        raise ConfigError("YAML training configs need PyYAML (pip install pyyaml), or use a .json config") from e
    return yaml


def load_config(name_or_path: str) -> Dict[str, Any]:
    """Read a YAML or JSON config file (by path or by name, see :func:`find_config`)."""
    path = find_config(name_or_path)
    text = path.read_text()
    cfg = json.loads(text) if path.suffix == ".json" else _yaml().safe_load(text)
    if not isinstance(cfg, dict):
        raise ConfigError("config %s: expected a mapping at the top level, got %s" % (path, type(cfg).__name__))
    cfg.setdefault("_source", str(path))
    return cfg


def parse_value(text: str) -> Any:
    """An override's value: YAML scalars and lists (``4``, ``1e-4``, ``true``, ``null``, ``[8, 1]``, ``adam``)."""
    try:
        value = _yaml().safe_load(text)
    except Exception as e:  # noqa: BLE001 - any parse error becomes a message naming the text
        raise ConfigError("cannot parse the override value %r: %s" % (text, e)) from e
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    return value


def apply_overrides(cfg: Dict[str, Any], overrides: Optional[Iterable[str]]) -> Dict[str, Any]:
    """A copy of ``cfg`` with every ``key.sub=value`` of ``overrides`` applied. Setting a key under a section that
    is ``null`` (or missing) creates the section; a key that is not in the config is added (configs list only
    what differs from the code's defaults)."""
    out = copy.deepcopy(cfg)
    for item in overrides or ():
        if "=" not in item:
            raise ConfigError("--set %r: expected key.sub=value" % (item,))
        key, text = item.split("=", 1)
        parts = [k for k in key.strip().split(".") if k]
        if not parts:
            raise ConfigError("--set %r: empty key" % (item,))
        node = out
        for k in parts[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        node[parts[-1]] = parse_value(text)
    return out
