"""Autocast kernels of the semcorr ops (docs/OPS.md#precision): what ``torch.autocast`` does to each op.

Three groups, as PyTorch's own autocast lists split its ops:

* GEMM-shaped ops (``AUTOCAST_GEMM``) run in the autocast dtype, like ``torch.mm``: their floating inputs are
  cast to it. Where the device's kernel has no path for that dtype (float16 on the CPU) they run in float32.
  ``corr4d`` and a ``conv4d`` with one output channel (``FLOAT32_OUT``) then return float32
  (``out_dtype=torch.float32``, unless the caller passed an ``out_dtype``): their products are those of the reduced
  inputs, summed and returned in float32. These are the volumes models read with argmaxes (nearest neighbours,
  NC-Net's matches after its last consensus layer), and a bfloat16 volume (8-bit mantissa) ties scores that differ
  in float32, the lowest index winning: on the synthetic benchmark (tests/test_bf16_models.py) that alone moved the
  PCK of ``nn`` by 0.75 points and of ``ncnet`` by 0.5-0.9, against the 0.5 goal; float32 outputs of the same
  bfloat16 inputs move ``nn`` by 0.00 and ``ncnet`` by ~0.2. A ``conv4d`` with several output channels is a hidden
  layer: the next layer would round a float32 output back to the autocast dtype, so it keeps that dtype (and the
  reduced-precision speed: float32 outputs cost NC-Net's 16 -> 16 layer 1.9x on the CPU).
* Reductions (``AUTOCAST_FLOAT32``: maxima and products, softmax, Hough votes) run in float32, like
  ``torch.softmax`` or ``torch.sum`` under autocast: reduced-precision inputs are cast up.
* Copies and comparisons (``AUTOCAST_EXACT``) are exact in any dtype and run in their input dtype; on the CPU,
  a reduced dtype its kernel lacks is cast to float32 (exactly) instead of being refused.

float64 inputs are never cast (as in PyTorch's autocast). The casts are ordinary differentiable ``.to`` calls
made before the op, so gradients flow back to the inputs in their own dtype.

``torch.library.register_autocast`` (torch >= 2.5) casts to one fixed dtype; these kernels read the autocast
dtype of the running region instead, so one registration serves ``torch.autocast(dtype=torch.bfloat16)`` and
``dtype=torch.float16`` alike, and they work on torch 2.4.
"""
import torch

AUTOCAST_GEMM = ("corr4d", "corr4d_topk", "conv4d", "sparse_conv4d", "gather_windows4d_linear")
AUTOCAST_FLOAT32 = ("mutual_matching", "kernel_soft_argmax", "hough_match", "hough_vote")
AUTOCAST_EXACT = ("max_pool4d", "gather_windows4d", "gather_windows4d_points", "patchmatch_select")
#: GEMM-shaped ops that return float32 when they run in a reduced dtype, with their ``out_dtype`` argument's position
#: (conv4d only with one output channel: ``_widens``)
FLOAT32_OUT = {"corr4d": 6, "conv4d": 4}


def _widens(name, args, kwargs):
    """Does this call of a FLOAT32_OUT op return float32 under autocast? conv4d: when its output is a score volume
    (one output channel), not a hidden layer's."""
    if name != "conv4d":
        return True
    weight = args[1] if len(args) > 1 else kwargs.get("weight")
    return isinstance(weight, torch.Tensor) and weight.dim() >= 1 and weight.shape[0] == 1

#: the reduced-precision dtypes each op's CPU kernel takes (the CUDA kernels take float16 and bfloat16)
CPU_REDUCED = {name: (torch.bfloat16,) for name in
               AUTOCAST_GEMM + ("gather_windows4d", "gather_windows4d_points")}
_REDUCED = (torch.float16, torch.bfloat16)

_AUTOCAST_KEYS = (torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCPU)
                  | torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCUDA))


def _autocast_dtype(device_type):
    if hasattr(torch, "get_autocast_dtype"):
        return torch.get_autocast_dtype(device_type)
    return torch.get_autocast_cpu_dtype() if device_type == "cpu" else torch.get_autocast_gpu_dtype()


def _accepts(name, device_type, dtype):
    """Does the op's kernel on ``device_type`` take ``dtype``?"""
    if dtype in (torch.float32, torch.float64):
        return True
    return dtype in CPU_REDUCED.get(name, ()) if device_type == "cpu" else dtype in _REDUCED


def run_dtype(name, device_type, dtype):
    """The dtype that autocast on ``device_type`` gives a floating input of op ``name`` whose dtype is ``dtype``
    (not float64), in the current autocast region; None: leave the input as it is."""
    if name in AUTOCAST_GEMM:
        target = _autocast_dtype(device_type)
        return target if _accepts(name, device_type, target) else torch.float32
    if name in AUTOCAST_FLOAT32:
        return torch.float32
    return None if _accepts(name, device_type, dtype) else torch.float32


def _cast(value, name, device_type):
    if (isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float64
            and value.device.type == device_type):
        dtype = run_dtype(name, device_type, value.dtype)
        return value if dtype is None else value.to(dtype)
    return value


def _float32_out(name, args, kwargs):
    """``args``, ``kwargs`` of a FLOAT32_OUT op with ``out_dtype=torch.float32`` when its (cast) first input is
    float16/bfloat16, the caller gave no ``out_dtype`` and the call ``_widens``."""
    pos = FLOAT32_OUT[name]
    given = args[pos] if len(args) > pos else kwargs.get("out_dtype")
    if (given is None and isinstance(args[0], torch.Tensor) and args[0].dtype in _REDUCED
            and _widens(name, args, kwargs)):
        if len(args) > pos:
            args[pos] = torch.float32
        else:
            kwargs["out_dtype"] = torch.float32
    return args, kwargs


def _make_kernel(name, device_type):
    op = getattr(torch.ops.semcorr, name).default

    def kernel(*args, **kwargs):
        args = [_cast(a, name, device_type) for a in args]
        kwargs = {k: _cast(v, name, device_type) for k, v in kwargs.items()}
        if name in FLOAT32_OUT:
            args, kwargs = _float32_out(name, args, kwargs)
        with torch._C._ExcludeDispatchKeyGuard(_AUTOCAST_KEYS):
            return op(*args, **kwargs)

    kernel.__name__ = "_%s_autocast_%s" % (name, device_type)
    return kernel


_lib = torch.library.Library("semcorr", "IMPL")  # kept alive: dropping it would unregister the kernels
for _name in AUTOCAST_GEMM + AUTOCAST_FLOAT32 + AUTOCAST_EXACT:
    for _device_type, _key in (("cpu", "AutocastCPU"), ("cuda", "AutocastCUDA")):
        _lib.impl(_name, _make_kernel(_name, _device_type), _key)
