"""PyTorch adapters: read pooled representations from named layers, and steer them (eq. 11).

This is the one module of `numerics` that touches torch (the optional ``[torch]`` extra:
``pip install 'balanced-rep[torch]'``). torch is imported inside the functions, so
``import numerics.hooks`` works without it; calling a function then raises an ImportError
naming the extra.

* :func:`collect` — run a model and return, for each named submodule, its output pooled to
  one vector per sample: an array ``(m, C)`` with samples as rows (feed it to
  ``numerics.detection.spikiness(..., samples="rows")``);
* :func:`steer` — a context manager adding ``a · v`` to named layers' outputs, the steered
  denoiser ``g(h(x_t) + a v)`` of eq. (11), optionally only in chosen denoising steps;
* :func:`denoising_window` — the steps the authors steer in: the last 20 except the final 2.

Layer names are the dotted paths of ``model.named_modules()``, e.g.
``"up_blocks.0.resnets.1.nonlinearity"`` in a diffusers UNet.

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU())
>>> x = torch.randn(5, 1, 4, 4, generator=torch.Generator().manual_seed(0))
>>> reps = collect(model, ["1"], lambda m: m(x))           # spatial max of the ReLU output
>>> reps["1"].shape, reps["1"].dtype
((5, 3), dtype('float64'))
>>> with torch.no_grad(), steer(model, {"1": [1.0, 0.0, 0.0]}, strength=0.5):
...     steered = model(x)                          # the ReLU's channel 0 is shifted by 0.5
>>> change = steered - model(x).detach()
>>> torch.allclose(change[:, 0], torch.tensor(0.5)), bool(change[:, 1:].eq(0).all())
(True, True)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

__all__ = ["collect", "steer", "Steering", "denoising_window", "require_torch", "torch_threads"]

# Docstring examples need torch (the optional extra); test runners skip them without it.
__doctest_requires__ = {("*",): ["torch"]}

POOLINGS = ("max", "mean")


def require_torch():
    """Import and return torch, or raise an ImportError naming the ``[torch]`` extra.

    >>> require_torch().__name__                   # with the [torch] extra installed
    'torch'
    """
    try:
        import torch
    except ImportError as error:                                  # pragma: no cover
        raise ImportError("this function needs PyTorch: install the optional extra with "
                          "pip install 'balanced-rep[torch]'") from error
    return torch


@contextlib.contextmanager
def torch_threads(n: int | None = 1):
    """Run torch on ``n`` intra-op threads inside the block (``None``: leave as is), then restore.

    Small models gain nothing from several threads, and on a busy machine the thread
    hand-offs can make a tiny forward pass a hundred times slower.

    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    torch = require_torch()
    if n is None:
        yield
        return
    from numerics.validation import positive_int

    n, previous = positive_int("threads", n), torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _names(layer_names) -> list[str]:
    names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(f"layer_names must be a non-empty list of module names; got {layer_names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"layer_names must not repeat a name; got {names}")
    return names


def _modules(model, names: list[str]) -> dict:
    torch = require_torch()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    modules = {}
    for name in names:
        try:
            modules[name] = model.get_submodule(name)
        except AttributeError as error:
            raise ValueError(f"layer_names: {name!r} is not a submodule of the model "
                             f"(names as in model.named_modules())") from error
    return modules


def _primary(output):
    """The tensor a hook works on: element 0 of a tuple output, else the output itself."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _pool(name: str, tensor, pooling: str):
    """(batch, C, *rest) → (batch, C): max or mean over every dimension after the channel dim."""
    if tensor.ndim < 2:
        raise ValueError(f"layer {name!r} returned shape {tuple(tensor.shape)}; expected "
                         "(batch, C, ...) with a channel dimension")
    tensor = tensor.detach()
    if tensor.ndim == 2:
        return tensor
    flat = tensor.flatten(2)
    return flat.amax(dim=2) if pooling == "max" else flat.mean(dim=2)


def collect(model, layer_names, run, pooling: str = "max", *, calls="all") -> dict[str, np.ndarray]:
    """Pooled outputs of the named submodules while ``run(model)`` executes: ``{name: (m, C)}``.

    Each output of shape ``(batch, C, *spatial)`` is pooled over every dimension after the
    channel dimension (``pooling="max"``: the spatial max of the authors' detection code;
    ``"mean"``: the spatial mean used for steering vectors); a ``(batch, C)`` output is kept
    as is; a tuple output contributes its element 0. Values are returned as float64 numpy.

    A layer called several times inside one ``run`` (e.g. once per denoising step, or a
    diffusers ``ResnetBlock2D.nonlinearity``, which is applied to the features, to the time
    embedding and to the features again) contributes, with ``calls="all"``, the rows of every
    call stacked in call order: rows ``0 … batch−1`` are call 0, the next ``batch`` rows
    call 1, and so on; calls whose pooled widths differ raise a ValueError. An integer
    ``calls=k`` keeps only call ``k`` (Python indexing: ``-1`` is the last call, which is
    what a hook that overwrites its record on every call — as in the authors' code — keeps).

    The hooks are removed when ``run`` returns or raises. A layer that ``run`` never called
    raises a ValueError.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    >>> x = torch.randn(2, 4)
    >>> out = collect(model, ["0", "1"], lambda m: (m(x), m(x)))   # two calls: 2 + 2 rows
    >>> out["0"].shape, collect(model, "1", lambda m: (m(x), m(x)), calls=-1)["1"].shape
    ((4, 3), (2, 3))
    """
    torch = require_torch()
    names = _names(layer_names)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}; got {pooling!r}")
    if not (calls == "all" or (isinstance(calls, (int, np.integer)) and not isinstance(calls, bool))):
        raise ValueError(f"calls must be 'all' or an integer call index; got {calls!r}")
    if not callable(run):
        raise TypeError(f"run must be a callable run(model); got {type(run).__name__}")
    modules = _modules(model, names)
    records = {name: [] for name in names}

    def recorder(name):
        def hook(module, inputs, output):
            records[name].append(_pool(name, _primary(output), pooling))
        return hook

    handles = []
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(recorder(name)))
        run(model)
    finally:
        for handle in handles:
            handle.remove()
    return {name: _stack(name, records[name], calls, torch) for name in names}


def _stack(name: str, pooled: list, calls, torch) -> np.ndarray:
    if not pooled:
        raise ValueError(f"layer {name!r} was not called during run(model)")
    if calls != "all":
        if not -len(pooled) <= calls < len(pooled):
            raise ValueError(f"calls={calls} is out of range: layer {name!r} was called "
                             f"{len(pooled)} time(s)")
        pooled = [pooled[calls]]
    widths = sorted({int(tensor.shape[1]) for tensor in pooled})
    if len(widths) > 1:
        raise ValueError(f"layer {name!r} was called {len(pooled)} times with pooled widths "
                         f"{widths}; choose one call with calls=k (e.g. calls=-1 for the last)")
    return torch.cat(pooled, dim=0).to(dtype=torch.float64, device="cpu").numpy()


# ----------------------------------------------------------------------------- steering


@dataclass
class Steering:
    """What a `steer` context did: how many forward calls of the model it saw, which it steered.

    Yielded by `steer` (the target of its ``with ... as``).

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Identity())
    >>> with steer(model, {"0": [1.0]}, 0.5, steps=[0, 2]) as record:
    ...     _ = [model(torch.zeros(1, 1)) for _ in range(3)]
    >>> record.calls, record.steered
    (3, [0, 2])
    """

    calls: int = 0
    steered: list = field(default_factory=list)


def denoising_window(n_steps: int, count: int = 20, skip_final: int = 2) -> range:
    """Step indices of the last ``count`` denoising steps except the final ``skip_final``.

    The authors' steering of Stable Diffusion (40 DDIM steps) acts in steps 20 … 37.

    >>> denoising_window(40)
    range(20, 38)
    """
    from numerics.validation import positive_int

    n_steps = positive_int("n_steps", n_steps)
    count = positive_int("count", count, minimum=0)
    skip_final = positive_int("skip_final", skip_final, minimum=0)
    return range(max(n_steps - count, 0), max(n_steps - skip_final, 0))


def _vectors(vectors, torch) -> dict:
    if not isinstance(vectors, dict) or not vectors:
        raise ValueError("vectors must be a non-empty dict {layer name: length-C vector}")
    checked = {}
    for name, vector in vectors.items():
        if isinstance(vector, torch.Tensor):
            vector = vector.detach().to(device="cpu", dtype=torch.float64).numpy()
        array = np.asarray(vector, dtype=np.float64)
        if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)):
            raise ValueError(f"vectors[{name!r}] must be a finite 1-D vector of length C (one "
                             f"entry per channel); got shape {array.shape}")
        checked[name] = torch.from_numpy(array)
    return checked


def _steps(steps):
    if steps is None:
        return None
    try:
        chosen = {int(step) for step in steps}
    except (TypeError, ValueError) as error:
        raise ValueError(f"steps must be None or a collection of step indices; got {steps!r}") from error
    if any(step < 0 for step in chosen):
        raise ValueError(f"steps must be indices >= 0; got {sorted(chosen)}")
    return chosen


@contextlib.contextmanager
def steer(model, vectors, strength, *, steps=None):
    """Add ``strength · vectors[name]`` to the output of each named layer: eq. (11).

    Inside the ``with`` block the named submodules return ``h + a v`` instead of ``h``, with
    ``v = vectors[name]`` a length-C vector broadcast over the batch and every dimension after
    the channel dimension (``(batch, C, H, W)`` feature maps, ``(batch, C)`` vectors); a
    tuple output has its element 0 shifted. ``strength = 0`` leaves every output untouched
    (bit for bit). On exit — also after an error — the hooks are removed and the model
    computes exactly what it computed before.

    ``steps`` restricts steering to chosen forward calls of ``model`` itself, counted from 0
    inside the block: for a denoiser called once per sampling step these are the denoising
    steps (`denoising_window` gives the authors' choice). ``None`` steers every call. The
    context yields a `Steering` record of the calls seen and steered. Every call of a named
    layer is shifted: name blocks whose outputs are feature maps (e.g. ``up_blocks.0.resnets.0``),
    not a module shared with other inputs such as a resnet's ``nonlinearity``, which also acts
    on the time embedding.

    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Identity())
    >>> x = torch.zeros(1, 2, 3, 3)
    >>> with steer(model, {"0": [1.0, -1.0]}, 2.0, steps=[1]) as record:
    ...     outputs = [model(x) for _ in range(3)]
    >>> [float(out[0, 0].max()) for out in outputs], record.steered
    ([0.0, 2.0, 0.0], [1])
    """
    torch = require_torch()
    checked = _vectors(vectors, torch)
    modules = _modules(model, list(checked))
    try:
        strength = float(strength)
    except (TypeError, ValueError) as error:
        raise ValueError(f"strength must be a real number; got {strength!r}") from error
    if not np.isfinite(strength):
        raise ValueError(f"strength must be finite; got {strength!r}")
    chosen = _steps(steps)
    record = Steering()

    def count_call(module, inputs):
        record.calls += 1
        if chosen is None or record.calls - 1 in chosen:
            record.steered.append(record.calls - 1)

    def shifter(name):
        vector = checked[name]

        def hook(module, inputs, output):
            if strength == 0.0 or (chosen is not None and record.calls - 1 not in chosen):
                return None
            tensor = _primary(output)
            if tensor.ndim < 2 or tensor.shape[1] != vector.numel():
                raise ValueError(f"vectors[{name!r}] has length {vector.numel()} but layer "
                                 f"{name!r} returned shape {tuple(tensor.shape)} (C = dim 1)")
            shape = (1, vector.numel()) + (1,) * (tensor.ndim - 2)
            shifted = tensor + strength * vector.to(device=tensor.device, dtype=tensor.dtype).reshape(shape)
            if isinstance(output, tuple):
                return (shifted,) + tuple(output[1:])
            if isinstance(output, list):
                return [shifted] + list(output[1:])
            return shifted
        return hook

    handles = []
    try:
        handles.append(model.register_forward_pre_hook(count_call))
        for name, module in modules.items():
            handles.append(module.register_forward_hook(shifter(name)))
        yield record
    finally:
        for handle in handles:
            handle.remove()
