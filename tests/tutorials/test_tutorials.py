"""The tutorials run as scripts, check what they teach, keep their exercises open and write nothing into the repository.

Each tutorial is a Jupytext percent script ending in ``assert``s about what it taught; running
it in a fresh interpreter (as ``python tutorials/NN_name.py``) is the test. On two shared
cores tutorials 1, 2, 4 and 5 take 5–16 s and tutorial 3 takes 20–60 s, so it is marked slow
(CI runs it).
"""
from __future__ import annotations

import ast
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
SLOW = {"03_generalisation"}


def scripts() -> list:
    return sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))


def test_there_are_five_tutorials_with_their_solutions():
    names = [path.stem for path in scripts()]
    assert names == ["01_exact_loss", "02_memorisation", "03_generalisation", "04_hybrid_phase", "05_diffusion"]
    for path in scripts():
        tutorial = _exercise_module(path)
        assert (TUTORIALS / "solutions" / f"{tutorial}.py").is_file(), path


def _exercise_module(path) -> str:
    """The solutions module named by the tutorial's ``@exercise("...")`` decorators (one per tutorial)."""
    names = {node.args[0].value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "exercise"}
    assert len(names) == 1, (path, names)
    return names.pop()


@pytest.mark.parametrize("path", scripts(), ids=lambda p: p.stem)
def test_exercises_are_open_and_solved_separately(path):
    """Every ``@exercise`` function is a stub returning None, and its solution exists under the same name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    solutions = ast.parse((TUTORIALS / "solutions" / f"{_exercise_module(path)}.py").read_text(encoding="utf-8"))
    solved = {node.name for node in solutions.body if isinstance(node, ast.FunctionDef)}
    stubs = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
             and any(isinstance(d, ast.Call) and getattr(d.func, "id", "") == "exercise" for d in node.decorator_list)]
    assert stubs, f"{path.name} has no exercise"
    for stub in stubs:
        returns = [node for node in ast.walk(stub) if isinstance(node, ast.Return)]
        assert all(isinstance(r.value, ast.Constant) and r.value.value is None for r in returns), stub.name
        assert stub.name in solved, f"{stub.name} has no solution"


def _untracked_state():
    """Files git sees as changed or new (ignored ones excluded), or None without git."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                         text=True)
    return out.stdout if out.returncode == 0 else None


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p for p in scripts()],
                         ids=lambda p: p.stem)
def test_tutorial_runs_as_a_script(path, tmp_path):
    before = _untracked_state()
    output = tmp_path / "figures"
    env = dict(os.environ, MPLBACKEND="Agg", TUTORIAL_OUTPUT=str(output))
    run = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"Tutorial {int(path.stem[:2])}: all checks passed." in run.stdout
    assert list(output.glob("*.png")), "the tutorial saved no figure"
    assert _untracked_state() == before, "the tutorial wrote into the repository"


def test_an_exercise_without_its_solution_says_what_to_do(tmp_path, monkeypatch):
    """Handed out without solutions/*.py, an unwritten exercise names itself instead of failing obscurely."""
    package = tmp_path / "solutions"
    package.mkdir()
    shutil.copy(TUTORIALS / "solutions" / "__init__.py", package / "__init__.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "solutions" or m.startswith("solutions.")]:
        monkeypatch.delitem(sys.modules, name)
    from solutions import exercise

    @exercise("exact_loss")
    def rectified_mean(m, s):
        return None

    with pytest.raises(NotImplementedError, match="rectified_mean is an exercise"):
        rectified_mean(0.3, 0.5)
    assert exercise("exact_loss")(lambda m, s: 1.5)(0.3, 0.5) == 1.5        # a written exercise is used
