"""The packages as a whole: no import cycle anywhere, every module imports in a fresh interpreter.

The graph check reads every ``import`` statement of every module — at module level and inside
functions alike (an import deferred into a function is still a dependency) — and fails on any
cycle among first-party modules. A cycle-free graph is what makes every import order work, so
it replaces importing the modules in all n! orders; one fresh interpreter then imports every
module once, in sorted order, to catch modules that do not import at all.
"""
from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "numerics", "proofs", "figures")
OPTIONAL = {"torch", "diffusers"}          # the [torch] extra: modules may import it lazily


def modules() -> dict:
    """{dotted name: path} of every module of the packages (``pkg`` for ``pkg/__init__.py``)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(path: pathlib.Path, name: str, known: dict) -> set:
    """First-party modules that ``path`` (module ``name``) imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            bases = [alias.name for alias in node.names]
            candidates = bases
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            # `from numerics import objective` imports the module numerics.objective; a name
            # that is not a module is an attribute of `base`, which the last candidate covers.
            parts = candidate.split(".")
            for cut in range(len(parts), 0, -1):
                prefix = ".".join(parts[:cut])
                if prefix in known:
                    targets.add(prefix)
                    break
    targets.discard(name)
    return targets


def test_the_module_list_is_complete():
    names = modules()
    assert {"numerics.training", "numerics.certify", "numerics.geometry", "theory.predict"} <= set(names)


def test_no_import_cycle_anywhere():
    known = modules()
    graph = {name: imported(path, name, known) for name, path in known.items()}
    cycles = []
    state: dict = {}                          # 1: on the DFS stack, 2: done

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_imports_in_a_fresh_interpreter(package):
    names = sorted(name for name in modules() if name.split(".")[0] == package)
    script = ("import importlib, sys\n"
              "failed = []\n"
              f"for name in {names!r}:\n"
              "    try:\n"
              "        importlib.import_module(name)\n"
              "    except ModuleNotFoundError as error:\n"
              f"        if error.name.split('.')[0] not in {sorted(OPTIONAL)!r}:\n"
              "            failed.append(f'{name}: {error!r}')\n"
              "    except Exception as error:\n"
              "        failed.append(f'{name}: {error!r}')\n"
              "print('\\n'.join(failed))\n"
              "sys.exit(1 if failed else 0)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
