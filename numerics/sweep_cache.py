"""The cache of a sweep: one checkpoint per task, keyed by what the task computes.

A task's key is `numerics.checkpoint.fingerprint` of the function's qualified name, the
task's parameters, its seed, a digest of the shared data and an optional ``version``: change
any of them and the key changes, so a cached result is only ever reused for the same
computation. Keys do not cover the code itself: after changing a task's code, pass a new
``version`` or use a fresh folder.

Each result is stored with `numerics.checkpoint.save_checkpoint` as ``NAME.npz`` (its
arrays) + ``NAME.json`` (everything else, readable, with the task under ``"sweep_task"``),
written atomically, so a sweep killed at any instant leaves whole entries only. Results are
written as JSON + npz rather than pickled, so reading a cache never runs code; they may be
nested dicts, lists and tuples of numbers, strings, booleans, None and numpy arrays (numpy
scalars come back as Python numbers). `encode` and `decode` are exact inverses on those:
floats keep every bit (JSON writes the shortest repr that round-trips), tuples stay tuples,
non-string dict keys and non-finite floats are tagged.

>>> import numpy as np
>>> arrays, tree = encode({"W": np.eye(2), "levels": (1.5, float("nan")), 3: "three"})
>>> back = decode(arrays, tree)
>>> back["levels"][0], repr(back["levels"][1]), back[3], back["W"].shape
(1.5, 'nan', 'three', (2, 2))
"""
from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np

from numerics.checkpoint import CorruptFileError, fingerprint, jsonable, load_checkpoint, save_checkpoint
from numerics.validation import flag

__all__ = ["encode", "decode", "save_entry", "load_entry"]

TASK_FIELD = "sweep_task"          # where an entry's JSON keeps the task (key, function, parameters, seed)
_TAGS = ("__array__", "__tuple__", "__float__", "__items__")


# ----------------------------------------------------------------------------- results <-> JSON + arrays


def encode(value, arrays: dict | None = None, where: str = "result"):
    """``(arrays, tree)``: ``tree`` JSON-ready, every numpy array moved to ``arrays`` under a tag.

    >>> arrays, tree = encode({"W": np.eye(2), "pair": (1, 2)})
    >>> tree, list(arrays)
    ({'W': {'__array__': 'a0'}, 'pair': {'__tuple__': [1, 2]}}, ['a0'])
    """
    arrays = {} if arrays is None else arrays
    return arrays, _encode(value, arrays, where)


def _encode(value, arrays: dict, where: str):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic) and not isinstance(value, (np.complexfloating, np.str_, np.bytes_, np.void)):
        return _encode(value.item(), arrays, where)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufcUS":
            raise TypeError(f"{where}: an array of dtype {value.dtype} cannot be cached (numbers or strings only)")
        name = f"a{len(arrays)}"
        arrays[name] = value
        return {"__array__": name}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(item, arrays, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        plain = all(isinstance(key, str) for key in value) and not (len(value) == 1 and next(iter(value)) in _TAGS)
        if plain:
            return {key: _encode(item, arrays, f"{where}[{key!r}]") for key, item in value.items()}
        return {"__items__": [[_encode(key, arrays, f"{where} key"), _encode(item, arrays, f"{where}[{key!r}]")]
                              for key, item in value.items()]}
    raise TypeError(f"{where}: {type(value).__name__} values cannot be cached; a task returns dicts, lists and "
                    f"tuples of numbers, strings, booleans, None and numpy arrays")


def decode(arrays: dict, tree):
    """The value `encode` turned into ``(arrays, tree)``.

    >>> back = decode(*encode((1.5, np.eye(2))))
    >>> type(back).__name__, back[0], back[1].shape
    ('tuple', 1.5, (2, 2))
    """
    if isinstance(tree, list):
        return [decode(arrays, item) for item in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1:
        (tag, content), = tree.items()
        if tag == "__array__":
            return arrays[content]
        if tag == "__tuple__":
            return tuple(decode(arrays, item) for item in content)
        if tag == "__float__":
            return float(content)
        if tag == "__items__":
            return {_hashable(decode(arrays, key)): decode(arrays, item) for key, item in content}
    return {key: decode(arrays, item) for key, item in tree.items()}


def _hashable(key):
    return key.item() if isinstance(key, np.ndarray) and key.ndim == 0 else key


# ----------------------------------------------------------------------------- keys


def _split_arrays(values: dict) -> tuple[list, dict]:
    """Top-level numpy arrays of ``values`` (hashed as bytes) and the rest with placeholders naming them."""
    arrays, rest = [], {}
    for name in sorted(values):
        value = values[name]
        if isinstance(value, np.ndarray):
            rest[name] = {"array": len(arrays), "dtype": value.dtype.str, "shape": list(value.shape)}
            arrays.append(value)
        else:
            rest[name] = value
    return arrays, rest


def _hash(arrays, where: str, **params) -> str:
    try:
        return fingerprint(*arrays, **params)
    except TypeError as error:
        raise TypeError(f"{where} cannot key the cache ({error}); use numbers, strings, lists, dicts and "
                        f"numpy arrays, or pass what does not change the result in unkeyed=") from None


def shared_digest(shared: dict) -> str:
    """A digest of the shared data (names, dtypes, shapes and bytes of arrays; JSON of the rest).

    >>> X = np.ones((3, 4))                                   # X (d, n)
    >>> shared_digest({"X": X}) == shared_digest({"X": X.copy()}), shared_digest({"X": X}) == shared_digest({"X": 2 * X})
    (True, False)
    """
    arrays, rest = _split_arrays(shared)
    return _hash(arrays, "shared", shared=rest)


def task_key(function_name: str, params: dict, seed, shared: str, version="") -> str:
    """The cache key of one task: fingerprint of function, parameters, seed, shared-data digest, version.

    >>> digest = shared_digest({"X": np.ones((3, 4))})
    >>> key = task_key("numerics.objective.expected_loss", {"sigma": 0.1}, None, digest)
    >>> len(key), key == task_key("numerics.objective.expected_loss", {"sigma": 0.2}, None, digest)
    (16, False)
    """
    arrays, rest = _split_arrays(params)
    return _hash(arrays, f"the parameters {sorted(params)}", function=function_name, params=rest, seed=seed,
                 shared=shared, version=version)


# ----------------------------------------------------------------------------- entries on disk


def _readable(params: dict) -> dict:
    """The parameters for the entry's JSON: arrays shown by dtype and shape, not by value."""
    return {k: (f"array {v.dtype} {v.shape}" if isinstance(v, np.ndarray) else jsonable(v)) for k, v in params.items()}


def save_entry(folder: str, name: str, value, task: dict):
    """Write ``value`` as the entry ``name`` of ``folder``; return it exactly as a later load will.

    Arrays go to ``name.npz``; the rest, with ``task`` (key, function, parameters, seed) under
    ``"sweep_task"``, to ``name.json`` — at its top level when ``value`` is a dict with string keys.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> save_entry(folder, "cell", {"loss": np.float64(0.5), "pair": (1, 2)}, {"key": "k1"})
    {'loss': 0.5, 'pair': (1, 2)}
    >>> sorted(os.listdir(folder))
    ['cell.json', 'cell.npz']
    """
    if not isinstance(task, dict):
        raise TypeError(f"task must be a dict (key, function, parameters, seed); got {type(task).__name__}")
    arrays, tree = encode(value)
    merged = isinstance(tree, dict) and TASK_FIELD not in tree and not (len(tree) == 1 and next(iter(tree)) in _TAGS)
    task = dict(task, params=_readable(task.get("params", {})), layout="merged" if merged else "wrapped")
    meta = {**tree, TASK_FIELD: task} if merged else {"result": tree, TASK_FIELD: task}
    save_checkpoint(folder, name, arrays, meta)
    # The JSON file lists dict keys sorted; hand out the value with the same order a load gives.
    return decode(arrays, json.loads(json.dumps(tree, sort_keys=True)))


def load_entry(folder: str, name: str, key: str, *, strict: bool):
    """``(found, value)`` of the entry ``name`` for the task keyed ``key``.

    A corrupt entry is reported with a warning naming the file and treated as missing (it will
    be recomputed and overwritten). An entry holding another key is missing too, unless
    ``strict`` (entries named by the caller, one per task index): then it is a ValueError,
    since it means the folder holds another run.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_entry(folder, "cell", {"loss": 0.5}, {"key": "k1"})
    >>> load_entry(folder, "cell", "k1", strict=False), load_entry(folder, "cell", "k2", strict=False)
    ((True, {'loss': 0.5}), (False, None))
    """
    if not isinstance(key, str):
        raise TypeError(f"key must be a str; got {type(key).__name__}")
    strict = flag("strict", strict)
    try:
        saved = load_checkpoint(folder, name)
    except CorruptFileError as error:
        warnings.warn(f"{error}; recomputing this task", RuntimeWarning, stacklevel=3)
        return False, None
    if saved is None:
        return False, None
    arrays, meta = saved
    task = meta.pop(TASK_FIELD, None)
    if not isinstance(task, dict) or task.get("key") != key:
        if strict:
            found = task.get("key") if isinstance(task, dict) else None
            raise ValueError(f"cache_dir {folder} holds {name} of another run (key {found} != {key}); "
                             f"use a fresh folder for this run")
        return False, None
    try:
        tree = meta if task.get("layout") == "merged" else meta["result"]
        return True, decode(arrays, tree)
    except (KeyError, ValueError, TypeError) as error:
        path = os.path.join(folder, name + ".json")
        warnings.warn(f"{CorruptFileError(path, f'{type(error).__name__}: {error}')}; recomputing this task",
                      RuntimeWarning, stacklevel=3)
        return False, None

