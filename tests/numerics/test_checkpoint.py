"""numerics.checkpoint: atomic writes, round trips, corrupt files named, fingerprints, quiet progress bars."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from numerics.checkpoint import (CorruptFileError, atomic_write, atomic_write_text, fingerprint, jsonable,
                                 in_notebook, load_checkpoint, progress_bar, progress_enabled, save_checkpoint)


def test_round_trip_keeps_arrays_and_parameters(tmp_path):
    W = np.random.default_rng(0).normal(size=(3, 2))
    save_checkpoint(str(tmp_path), "run", {"W": W, "steps": np.arange(4)}, {"loss": 1.5, "tags": ("a", 2)})
    arrays, meta = load_checkpoint(str(tmp_path), "run")
    np.testing.assert_array_equal(arrays["W"], W)              # .npz stores float64 exactly
    np.testing.assert_array_equal(arrays["steps"], np.arange(4))
    assert meta == {"loss": 1.5, "tags": ["a", 2]}              # JSON turns tuples into lists
    assert load_checkpoint(str(tmp_path), "missing") is None


def test_a_checkpoint_without_its_json_does_not_count(tmp_path):
    """The JSON is written last: an .npz alone is an interrupted write and is ignored."""
    save_checkpoint(str(tmp_path), "run", {"W": np.eye(2)}, {"step": 1})
    os.remove(tmp_path / "run.json")
    assert load_checkpoint(str(tmp_path), "run") is None


@pytest.mark.parametrize("broken", ["run.json", "run.npz"])
def test_a_corrupt_file_is_named(tmp_path, broken):
    save_checkpoint(str(tmp_path), "run", {"W": np.eye(2)}, {"step": 1})
    (tmp_path / broken).write_bytes(b"\x00garbage, not what was saved")
    with pytest.raises(CorruptFileError) as raised:
        load_checkpoint(str(tmp_path), "run")
    assert raised.value.path == str(tmp_path / broken)
    assert str(tmp_path / broken) in str(raised.value) and "delete the file" in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_a_truncated_archive_is_named(tmp_path):
    save_checkpoint(str(tmp_path), "run", {"W": np.ones((50, 50))}, {"step": 1})
    data = (tmp_path / "run.npz").read_bytes()
    (tmp_path / "run.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="run.npz"):
        load_checkpoint(str(tmp_path), "run")


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "result.txt"
    atomic_write_text(str(path), "old")

    def fail(stream):
        stream.write(b"half of the new")
        raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError):
        atomic_write(str(path), fail)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]      # no temporary left


def test_fingerprint_separates_data_and_parameters():
    X = np.arange(6.0).reshape(2, 3)
    key = fingerprint(X, p=3, sigma=0.2)
    assert key == fingerprint(X.copy(), sigma=0.2, p=3)                       # order of keywords is irrelevant
    assert key != fingerprint(X.T, p=3, sigma=0.2)                            # same numbers, other shape
    assert key != fingerprint(X, p=3, sigma=0.25)
    assert key == fingerprint(X.astype(np.float32).astype(np.int64), p=3, sigma=0.2)   # values, not dtypes
    with pytest.raises(TypeError, match="arrays\\[0\\]"):
        fingerprint(X + 1j)


def test_jsonable_converts_numpy_and_non_finite_values():
    out = jsonable({"a": np.float64(1.5), "b": np.arange(2), 3: (np.int64(4), float("nan"))})
    assert out == {"a": 1.5, "b": [0, 1], "3": [4, "nan"]}
    json.dumps(out)


def test_progress_bars_are_quiet_unless_asked(monkeypatch):
    monkeypatch.setenv("CI", "1")
    assert progress_enabled(None) is False and progress_enabled(True) is True
    with pytest.raises(TypeError, match="progress"):
        progress_enabled("bar")
    with progress_bar(False, total=3) as bar:
        bar.update(3)
        assert bar.disable


class _FakeShell:
    """What an IPython kernel shell looks like to `in_notebook`: ``get_ipython()`` with a ``kernel``."""

    def __init__(self, kernel):
        self.kernel = kernel


def _fake_ipython(monkeypatch, kernel):
    import types

    module = types.ModuleType("IPython")
    module.get_ipython = lambda: _FakeShell(kernel)
    monkeypatch.setitem(sys.modules, "IPython", module)


def test_progress_is_on_by_default_in_notebooks_and_off_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not in_notebook() and progress_enabled(None) is False          # a script writing to a log
    _fake_ipython(monkeypatch, kernel=None)                                # a terminal IPython shell
    assert not in_notebook()
    _fake_ipython(monkeypatch, kernel=object())                            # a Jupyter kernel
    assert in_notebook() and progress_enabled(None) is True
    with progress_bar(None, total=2) as bar:
        assert not bar.disable
    monkeypatch.setenv("CI", "true")
    assert progress_enabled(None) is False and progress_enabled(True) is True


def test_paths_must_be_paths(tmp_path):
    with pytest.raises(TypeError, match="folder"):
        save_checkpoint(3, "run", {}, {})
    with pytest.raises(TypeError, match="meta"):
        save_checkpoint(str(tmp_path), "run", {}, [1])
    with pytest.raises(TypeError, match="write"):
        atomic_write(str(tmp_path / "x"), "not callable")
