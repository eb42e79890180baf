"""The training log of the engine (rank 0 only): ``OUT/log.jsonl`` (one JSON object per epoch: loss, validation
loss and PCK, learning rate, time), ``OUT/steps.jsonl`` (the loss of every step) and ``OUT/curves.png`` (their
plot, redrawn after every epoch)."""
import json
import os
from typing import Dict, List, Optional

__all__ = ["append_jsonl", "read_jsonl", "plot_curves"]


def append_jsonl(path: str, record: Dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def read_jsonl(path: str) -> List[Dict]:
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(epochs: List[Dict], steps: List[Dict], out_png: str, title: Optional[str] = None) -> str:
    """Loss per step and per epoch (train and validation) on the left, validation PCK per epoch on the right."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    has_pck = any(e.get("val_pck") is not None for e in epochs)
    fig, axes = plt.subplots(1, 2 if has_pck else 1, figsize=(11 if has_pck else 6, 4), squeeze=False)
    ax = axes[0][0]
    if steps:
        ax.plot([s["step"] for s in steps], [s["loss"] for s in steps], lw=0.8, alpha=0.5, label="train (step)")
    if epochs:
        ax.plot([e["step"] for e in epochs], [e["loss"] for e in epochs], "o-", label="train (epoch mean)")
        val = [(e["step"], e["val_loss"]) for e in epochs if e.get("val_loss") is not None]
        if val:
            ax.plot(*zip(*val), "s-", label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if has_pck:
        ax2 = axes[0][1]
        pts = [(e["step"], 100 * e["val_pck"]) for e in epochs if e.get("val_pck") is not None]
        ax2.plot(*zip(*pts), "o-", color="C2")
        ax2.set_xlabel("optimizer step")
        ax2.set_ylabel("validation PCK (%%) @ alpha=%g" % epochs[-1].get("pck_alpha", 0.1))
        ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = out_png + ".tmp.png"
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, out_png)
    return out_png
