"""Models under torch.autocast("cpu", torch.bfloat16) (issue #18): the PCK of `nn`, `hpf` and `ncnet` on the
synthetic benchmark (semcorr.data.synthetic: warped scikit-image photos with exact keypoints) stays within 0.5 points
of the float32 run at every reported threshold. The hand-crafted DAISY backbone keeps it offline and fast; the ops are
what autocast changes: corr4d and the NC-Net consensus (conv4d) multiply bfloat16 inputs; corr4d and the last
consensus layer (one output channel) return float32 volumes, the hidden 16-channel layers bfloat16 (out_dtype,
docs/OPS.md#precision); the reductions run in float32. The test checks that they really did."""
import pytest
import torch
from semcorr.data.datasets import build_dataset
from semcorr.eval.runner import EvalConfig, evaluate, load_model
from semcorr.models.pmnc import PMNCScorer
from torch.utils._python_dispatch import TorchDispatchMode

PAIRS = 19  # the whole benchmark (6 photos x 3 warps + the stereo pair), with up to 100 Harris keypoints each:
SIZE = 160  # ~930 keypoints, so one keypoint moves the per-keypoint PCK by ~0.1 point
# |PCK(bf16) - PCK(float32)| in points (percent), at every threshold kind, alpha and averaging: the goal of issue
# #18. Measured worst cases (2-core AVX512 EPYC): nn 0.00, hpf 0.00, ncnet 0.22 (hand-set consensus, PCK@0.1 ~75%).
# With bfloat16 volumes (before out_dtype) nn and ncnet, which read their matches with an argmax, lost 0.75 and
# 0.53-0.86 points and hpf 0.50 (ties of the rounded volume, the lowest index winning).
MAX_PCK_DIFF = {"hpf": 0.5, "nn": 0.5, "ncnet": 0.5}
GEMM_OPS = ("corr4d", "conv4d")


@pytest.fixture(scope="module")
def dataset():
    return build_dataset("synthetic", None, split="test", size=SIZE, max_kps=100, n_kps=100)


class _GemmDtypes(TorchDispatchMode):
    """Records (op, input dtype, output dtype) of every corr4d / conv4d call as it reaches the kernels (after
    autocast: a dispatch mode sees the op below the autocast keys, with the inputs autocast gave it); a conv4d with
    several output channels (a hidden layer) is recorded as "conv4d-hidden"."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name in GEMM_OPS:
            hidden = name == "conv4d" and args[1].shape[0] > 1
            self.seen.add((name + "-hidden" if hidden else name, args[0].dtype, out.dtype))
        return out


def _hand_set_consensus(model):
    """ncnet's consensus with PMNC's hand-set 5^4 filters (16, 16, 1 channels: a peak detector; PCK@0.1 ~75%)
    instead of untrained random weights (PCK ~11%), so the PCK measures matches worth keeping."""
    hand = PMNCScorer(kernel_sizes=(5, 5, 5), channels=(16, 16, 1))
    convs = [m for m in model.consensus.conv if isinstance(m, torch.nn.Module) and hasattr(m, "weight")]
    assert len(convs) == len(hand.weights) == 3
    with torch.no_grad():
        for c, w, b in zip(convs, hand.weights, hand.biases):
            c.weight.copy_(w)
            c.bias.copy_(b)


def _pck(res):
    out = {}
    for kind in ("pck", "pck_per_keypoint"):
        for thresh, per_alpha in res["groups"]["all"][kind].items():
            for alpha in ("0.05", "0.1", "0.15"):
                out[(kind, thresh, alpha)] = 100.0 * per_alpha[alpha]
    return out


@pytest.mark.parametrize("method,kwargs", [("nn", {}), ("hpf", {"backbone": "daisy"}),
                                           ("ncnet", {"backbone": "daisy"})])
def test_pck_under_bf16_autocast_stays_close_to_float32(method, kwargs, dataset):
    torch.manual_seed(0)
    model = load_model(method, torch.device("cpu"), **kwargs)
    if method == "ncnet":
        _hand_set_consensus(model)
    cfg = EvalConfig(method=method, dataset="synthetic", limit=PAIRS, batch_size=4, size=SIZE, device="cpu",
                     progress=False, figures=False, print_table=False, model_kwargs=kwargs)
    used = {"nn": {"corr4d"}, "hpf": {"corr4d"}, "ncnet": {"corr4d", "conv4d-hidden", "conv4d"}}[method]
    with _GemmDtypes() as spy:
        f32 = _pck(evaluate(cfg, model=model, dataset=dataset))
    assert spy.seen == {(n, torch.float32, torch.float32) for n in used}
    with _GemmDtypes() as spy, torch.autocast("cpu", dtype=torch.bfloat16):
        b16 = _pck(evaluate(cfg, model=model, dataset=dataset))
    # the ops did multiply bfloat16 inputs, and returned float32 volumes (bfloat16 from the hidden layers)
    assert spy.seen == {(n, torch.bfloat16, torch.bfloat16 if n.endswith("-hidden") else torch.float32) for n in used}
    assert f32.keys() == b16.keys() and f32
    diffs = {k: abs(b16[k] - f32[k]) for k in f32}
    worst = max(diffs, key=diffs.get)
    print("%s: float32 %s, bf16 %s, worst |diff| %.2f points at %s" % (
        method, {k: round(v, 2) for k, v in f32.items() if k[2] == "0.1"},
        {k: round(v, 2) for k, v in b16.items() if k[2] == "0.1"}, diffs[worst], worst))
    assert diffs[worst] <= MAX_PCK_DIFF[method], (worst, f32[worst], b16[worst])
