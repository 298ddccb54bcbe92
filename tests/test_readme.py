"""README.md is part of the product: its quick start runs as written and prints what it says;
it names every proof check and every figure; its test command is the one CI runs."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from figures import FIGURES
from proofs import CHECKS

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def test_quick_start_runs_as_written_and_prints_what_the_readme_says(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", section("Quick start"), flags=re.S)
    assert len(blocks) == 1
    code = blocks[0]
    assert len(code.strip().splitlines()) <= 15                  # a quick start, not a program
    script = tmp_path / "quickstart.py"
    script.write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    verdict, map_error, stds = out.stdout.strip().splitlines()
    assert verdict == "strict local minimum"
    # "a map error near 1e-7": the trained maps equal eq. (9)'s up to the solver's stopping
    # point. train stops at ‖∇L‖/L0 ≈ 1e-8; with the Hessian's floor 2λ = 0.02 (certify's
    # smallest eigenvalue on this instance) the distance to the minimiser, ‖∇L‖/μ, is ≲ 1e-6.
    assert 0 <= float(map_error) < 1e-6
    values = [float(v) for v in stds.strip("[]").split()]
    # "four Std values near 1": a spike r_i x_iᵀ(x_i + σε) with ‖x_i‖ = 3, σ = 0.2 over p = 6
    # neurons has Std = spike·√(p − 1)/p ≈ 1.1; the one noise draw moves the spike by σ‖x_i‖·N(0, 1),
    # i.e. the Std by ±0.22 per standard deviation: (0.5, 1.7) is ± 2.7 of those.
    assert len(values) == 4 and all(0.5 < v < 1.7 for v in values)


def test_every_proof_check_is_in_the_claims_table():
    table = section("Claims")
    missing = [name for name in CHECKS if f"python -m proofs --only {name}`" not in table]
    assert not missing, f"README's claims table lacks {missing}: regenerate it with python -m proofs --readme-table"


def test_every_figure_is_listed():
    table = section("Figures")
    assert not [name for name in FIGURES if f"`{name}`" not in table]


@pytest.mark.parametrize("command", ["make run", "make test"])
def test_the_two_commands_are_the_makefiles_and_ci_runs_the_test_command(command):
    block = re.findall(r"```bash\n(.*?)```", section("Two commands"), flags=re.S)[0]
    assert command in block
    target = command.split()[1]
    assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), flags=re.M)
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == "make test"
