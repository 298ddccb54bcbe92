"""Atomic checkpoints and quiet progress bars for long runs (multistart, paper-scale training).

A checkpoint is a pair ``NAME.npz`` (arrays) + ``NAME.json`` (parameters and summary),
each written to a temporary file in the same folder and moved into place with
``os.replace``, so a run killed at any instant leaves either the old pair or the new one,
never a torn file. The JSON is written last: a checkpoint counts as present only when its
JSON exists, so an ``.npz`` without JSON is an unfinished write and is ignored.

>>> import tempfile, numpy as np
>>> folder = tempfile.mkdtemp()
>>> save_checkpoint(folder, "start_0000", {"W": np.eye(2)}, {"loss": 1.5})
>>> arrays, meta = load_checkpoint(folder, "start_0000")
>>> meta["loss"], arrays["W"].shape
(1.5, (2, 2))
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile

import numpy as np

from numerics.validation import optional_flag, real_array

__all__ = ["atomic_write", "atomic_write_text", "jsonable", "save_checkpoint", "load_checkpoint",
           "CorruptFileError", "fingerprint", "in_notebook", "progress_enabled", "progress_bar"]


def _path_part(name: str, value) -> str:
    """A folder or file name: a str or os.PathLike; anything else is a TypeError naming it."""
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise TypeError(f"{name} must be a path (str or os.PathLike); got {type(value).__name__}")


def atomic_write(path: str, write) -> None:
    """Write ``path`` through a temporary file in the same folder and ``os.replace``.

    ``write(stream)`` receives a binary stream; a reader never sees a half-written file.

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "bytes.bin")
    >>> atomic_write(path, lambda stream: stream.write(b"abc"))
    >>> open(path, "rb").read()
    b'abc'
    """
    path = _path_part("path", path)
    if not callable(write):
        raise TypeError(f"write must be a callable taking a binary stream; got {type(write).__name__}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def atomic_write_text(path: str, text: str) -> None:
    """`atomic_write` of a UTF-8 text.

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "note.txt")
    >>> atomic_write_text(path, "σ = 0.2")
    >>> open(path, encoding="utf-8").read()
    'σ = 0.2'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    data = text.encode("utf-8")
    atomic_write(path, lambda stream: stream.write(data))


def jsonable(value):
    """JSON-ready copy: numpy scalars and arrays to Python, non-finite floats to strings.

    >>> jsonable({"W": np.eye(2), "loss": np.float64(np.inf), "p": np.int64(3)})
    {'W': [[1.0, 0.0], [0.0, 1.0]], 'loss': 'inf', 'p': 3}
    """
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    return value


def save_checkpoint(folder: str, name: str, arrays: dict, meta: dict) -> None:
    """Write ``folder/name.npz`` then ``folder/name.json`` atomically (JSON last).

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> save_checkpoint(folder, "run", {"W1": np.zeros((3, 2))}, {"sigma": 0.2})   # W1 (d, p)
    >>> sorted(os.listdir(folder))
    ['run.json', 'run.npz']
    """
    folder, name = _path_part("folder", folder), _path_part("name", name)
    if not isinstance(arrays, dict) or not isinstance(meta, dict):
        bad = "arrays" if not isinstance(arrays, dict) else "meta"
        raise TypeError(f"{bad} must be a dict; got {type(arrays if bad == 'arrays' else meta).__name__}")
    atomic_write(os.path.join(folder, name + ".npz"),
                  lambda stream: np.savez(stream, **{k: np.asarray(v) for k, v in arrays.items()}))
    text = json.dumps(jsonable(meta), indent=1, sort_keys=True).encode()
    atomic_write(os.path.join(folder, name + ".json"), lambda stream: stream.write(text))


class CorruptFileError(ValueError):
    """A checkpoint or cache file exists but cannot be read (truncated, garbage); names the file.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> save_checkpoint(folder, "run", {"W": np.eye(2)}, {"loss": 1.5})
    >>> atomic_write_text(os.path.join(folder, "run.json"), "{truncated")
    >>> try:
    ...     load_checkpoint(folder, "run")
    ... except CorruptFileError as error:
    ...     print(os.path.basename(error.path))
    run.json
    """

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot read {path}: {reason} (delete the file to recompute it)")
        self.path = path


def load_checkpoint(folder: str, name: str):
    """Return ``(arrays, meta)`` of a complete checkpoint, or ``None`` if there is none.

    A file that exists but cannot be read raises `CorruptFileError` naming it.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> load_checkpoint(folder, "run") is None              # nothing saved yet
    True
    >>> save_checkpoint(folder, "run", {"W": np.eye(2)}, {"loss": 1.5})
    >>> arrays, meta = load_checkpoint(folder, "run")
    >>> arrays["W"].shape, meta
    ((2, 2), {'loss': 1.5})
    """
    folder, name = _path_part("folder", folder), _path_part("name", name)
    meta_path = os.path.join(folder, name + ".json")
    array_path = os.path.join(folder, name + ".npz")
    if not (os.path.exists(meta_path) and os.path.exists(array_path)):
        return None
    try:
        with open(meta_path, encoding="utf-8") as stream:
            meta = json.load(stream)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptFileError(meta_path, f"{type(error).__name__}: {error}") from error
    try:
        with np.load(array_path) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as error:  # np.load raises BadZipFile, OSError, ValueError, EOFError ...
        raise CorruptFileError(array_path, f"{type(error).__name__}: {error}") from error
    return arrays, meta


def fingerprint(*arrays, **params) -> str:
    """A short hash of arrays and parameters, stored with checkpoints to refuse mixing runs.

    >>> X = np.ones((3, 4))                                  # X (d, n)
    >>> key = fingerprint(X, sigma=0.2)
    >>> len(key), key == fingerprint(X, sigma=0.2), key == fingerprint(X, sigma=0.3)
    (16, True, False)
    """
    digest = hashlib.sha256()
    for index, array in enumerate(arrays):
        array = np.ascontiguousarray(real_array(f"arrays[{index}]", array))
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    digest.update(json.dumps(jsonable(params), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel attached), where stderr is no TTY.

    >>> in_notebook()                                        # a doctest runs in no Jupyter kernel
    False
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:          # an IPython too old or half-imported: not a notebook we can detect
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def progress_enabled(progress) -> bool:
    """Whether to show progress bars: ``True``/``False`` as asked; ``None`` decides.

    ``None`` means on in notebooks (`in_notebook`) and on interactive terminals, off under CI
    (the environment variable ``CI`` set) and when stderr is redirected (a log file).

    >>> progress_enabled(False), progress_enabled(True)
    (False, True)
    """
    progress = optional_flag("progress", progress)
    if progress is not None:
        return progress
    if os.environ.get("CI"):
        return False
    return in_notebook() or sys.stderr.isatty()


def progress_bar(progress=None, **kwargs):
    """A tqdm bar obeying `progress_enabled` (``progress=None``: notebooks and terminals, not CI).

    In a notebook with ipywidgets installed it is a widget, otherwise a text bar on stderr
    (which notebooks render as well).

    >>> import io
    >>> with progress_bar(True, total=3, file=io.StringIO()) as bar:
    ...     _ = bar.update(3)
    >>> bar.n, progress_bar(False, total=3).disable        # False: no bar at all (CI, log files)
    (3, True)
    """
    enabled = progress_enabled(progress)
    if enabled and in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm(disable=not enabled, **kwargs)


def writable_folder(path: str) -> str | None:
    """None if ``path`` is (or can be made) a folder this process can write to, else the reason.

    >>> writable_folder("/proc/no_such_folder") is not None
    True
    """
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        return f"cannot create it ({error.strerror or error})"
    if not os.path.isdir(path):
        return "it is not a folder"
    try:
        with open(os.path.join(path, f".write-test-{os.getpid()}"), "wb") as stream:
            stream.write(b"")
        os.remove(stream.name)
    except OSError as error:
        return f"cannot write to it ({error.strerror or error})"
    return None
