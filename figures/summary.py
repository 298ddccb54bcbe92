"""One line for the main job: are the proof checks as expected, and do the figure checks hold?

``python -m figures.summary`` reads the proof report (``results/proofs/report.json``: a check
is as expected when its ``verdict`` equals its ``expected_verdict``) and the figure manifests
of every registered figure (``results/figures/NAME.json``: ``checks[*].holds``, checks marked
``expected_failure`` with a reason counted apart), prints

``make run: claims as expected 17/17, figure checks 56/56 hold``

and exits 1 when a claim is not as expected, the report says it is not ``ok``, a check does
not hold, or a report or manifest is missing or unreadable (each is named on the line).

>>> line, ok = summarise(proofs=dict(ok=True, checks=[dict(verdict="confirmed", expected_verdict="confirmed")]),
...                      manifests={"fig4": dict(checks=[dict(holds=True), dict(holds=False)])})
>>> line, ok
('make run: claims as expected 1/1, figure checks 1/2 hold (fig4: 1 do not hold)', False)
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def _read(path: str):
    """The JSON at ``path``, or a string saying why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except FileNotFoundError:
        return f"missing {path}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"unreadable {path} ({type(error).__name__})"


def _proof_part(proofs) -> tuple[str, bool]:
    if isinstance(proofs, str):
        return f"proof report {proofs}", False
    checks = proofs.get("checks", [])
    expected = sum(c.get("verdict") == c.get("expected_verdict") for c in checks)
    ok = expected == len(checks) and len(checks) > 0 and proofs.get("ok") is True
    note = "" if ok or expected < len(checks) else " (report not ok)"
    return f"claims as expected {expected}/{len(checks)}{note}", ok


def _figure_part(manifests: dict) -> tuple[str, bool]:
    held = total = 0
    problems = []
    expected_failures = 0
    for name, manifest in manifests.items():
        if isinstance(manifest, str):
            problems.append(f"{name}: {manifest}")
            continue
        checks = manifest.get("checks", [])
        total += len(checks)
        held += sum(bool(c.get("holds")) for c in checks)
        expected = sum(not c.get("holds") and bool(c.get("expected_failure")) for c in checks)
        expected_failures += expected
        bad = sum(not c.get("holds") for c in checks) - expected
        if bad:
            problems.append(f"{name}: {bad} do not hold")
    text = f"figure checks {held}/{total} hold"
    if expected_failures:
        text += f", {expected_failures} expected to fail"
    if problems:
        text += f" ({'; '.join(problems)})"
    return text, not problems and (total > 0 or not manifests)


def summarise(proofs, manifests: dict, label: str = "make run") -> tuple[str, bool]:
    """The summary line and whether everything is as it should be.

    ``proofs``: the proof report (dict) or why it is missing (str); ``manifests``: figure name →
    manifest (dict) or why it is missing (str).
    """
    proof_text, proofs_ok = _proof_part(proofs)
    figure_text, figures_ok = _figure_part(manifests)
    return f"{label}: {proof_text}, {figure_text}", proofs_ok and figures_ok


def main(argv=None) -> int:
    from figures import buildable

    parser = argparse.ArgumentParser(prog="python -m figures.summary", description=__doc__.splitlines()[0])
    parser.add_argument("--proofs", default=os.path.join("results", "proofs", "report.json"),
                        help="proof report (JSON)")
    parser.add_argument("--figures", default=os.path.join("results", "figures"), help="folder of figure manifests")
    parser.add_argument("--label", default="make run", help="what the line summarises")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="figures to expect (default: every registered one whose optional extra is installed)")
    args = parser.parse_args(argv)
    names = args.names or buildable()
    manifests = {name: _read(os.path.join(args.figures, f"{name}.json")) for name in names}
    line, ok = summarise(_read(args.proofs), manifests, args.label)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
