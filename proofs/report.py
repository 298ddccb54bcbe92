"""The printed table and the Markdown / JSON reports of `python -m proofs` (written atomically).

The Markdown report and the README share one claims table in three parts, by source
(`claims_tables`): (a) statements the paper prints, with their words; (b) statements of the
appendix known only second-hand; (c) statements this package derives or conjectures.

>>> from proofs.record import CheckRecord
>>> r = CheckRecord("demo", "a claim", "eq. (1)", verdict="confirmed", headline="ε = 1e-9")
>>> print(table([r]).splitlines()[2])
demo   confirmed  confirmed  ok  0.0  ε = 1e-9
"""
from __future__ import annotations

import json
import os

from numerics.checkpoint import atomic_write_text
from proofs.record import CheckRecord

COLUMNS = ("check", "verdict", "expected", "", "s", "evidence")


def table(records: list[CheckRecord]) -> str:
    """Compact fixed-width table: one line per check."""
    rows = [(r.name, r.verdict, r.expected_verdict, "ok" if r.ok else "FAIL", f"{r.seconds:.1f}",
             r.headline) for r in records]
    widths = [max(len(str(row[i])) for row in rows + [COLUMNS]) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(COLUMNS, widths)) + "  " + COLUMNS[-1]]
    lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 8)
    for row in rows:
        cells = [str(c).ljust(w) if i != 4 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells) + "  " + row[-1])
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)) and len(value) > 12:
        return "[" + ", ".join(_fmt(v) for v in value[:12]) + f", … ({len(value)} values)]"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def _rows_table(rows: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["  | " + " | ".join(keys) + " |", "  |" + "---|" * len(keys)]
    lines += ["  | " + " | ".join(_fmt(row.get(k, "")) for k in keys) + " |" for row in rows]
    return lines


PARTS = (("paper", "(a) Statements the paper prints",
          "Each row quotes the printed words; existence claims are checked on loss (6) as printed (untied W1, W2)."),
         ("appendix, second-hand", "(b) Statements of the appendix, known only second-hand",
          "Their constants may be our source's, not the paper's: verdicts are \"consistent\", \"disagrees with "
          "our source\" or \"inconclusive\", never \"refuted\"."),
         ("derived here", "(c) Statements this package derives or conjectures",
          "Our own results: a refuted row is a mistake of ours or a reading of the paper that does not hold, "
          "not an error of the paper."))


def _cell(text) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def claims_tables(checks: list[dict], command: str = "python -m proofs --only") -> str:
    """The claims table in three parts, from report records (`CheckRecord.to_json` dicts).

    >>> row = dict(name="demo", title="a claim", source="paper", quote="as printed", weights="untied",
    ...            verdict="confirmed", expected_verdict="confirmed", headline="ε = 1e-9", equations="eq. (1)")
    >>> print(claims_tables([row]).splitlines()[6])
    | a claim (eq. (1)) | “as printed” | untied | confirmed | ε = 1e-9 | `python -m proofs --only demo` |
    """
    out = []
    for source, heading, explanation in PARTS:
        rows = [c for c in checks if c.get("source") == source]
        if not rows:
            continue
        out += [f"#### {heading}", "", explanation, ""]
        if source == "paper":
            out += ["| claim | printed words | weights | verdict | evidence | command |", "|---|---|---|---|---|---|"]
        else:
            out += ["| claim | weights | verdict | evidence | command |", "|---|---|---|---|---|"]
        for c in rows:
            verdict = c["verdict"] if c["verdict"] == c["expected_verdict"] else \
                f"**{c['verdict']}** (expected {c['expected_verdict']})"
            cells = [f"{c['title']} ({c['equations']})"]
            if source == "paper":
                cells.append(f"“{c['quote']}”")
            cells += [c.get("weights") or "—", verdict, c["headline"], f"`{command} {c['name']}`"]
            out.append("| " + " | ".join(_cell(x) for x in cells) + " |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def markdown(records: list[CheckRecord], parameters: dict) -> str:
    """The full report: the claims table in three parts, then one section per check with all its evidence."""
    out = ["# Proof checks: *Generalization of Diffusion Models Arises with a Balanced Representation Space*",
           "", "Parameters: " + ", ".join(f"`{k}={v}`" for k, v in parameters.items()), "",
           claims_tables([r.to_json() for r in records])]
    for r in records:
        plain = r.to_json()
        out += ["", f"## `{r.name}` — {r.title}", "", f"**Claim** ({r.equations}): {r.claim}", "",
                f"**Source:** {r.source}" + (f"; printed words: “{r.quote}”" if r.quote else "")
                + (f"; weights: {r.weights}" if r.weights else ""), "",
                f"**Verdict:** {r.verdict} (expected {r.expected_verdict}); {r.seconds:.1f} s, mode {r.mode}.", ""]
        if r.instance:
            out.append("**Instance:** " + ", ".join(f"{k} = {_fmt(v)}" for k, v in plain["instance"].items()))
            out.append("")
        if r.assumptions:
            out += ["| assumption | measured | required | met |", "|---|---|---|---|"]
            out += [f"| {k} | {_fmt(m)} | {req} | {'yes' if met else '**no**'} |"
                    for k, (m, req, met) in plain["assumptions"].items()]
            out.append("")
        for label, key in (("Symbolic", "symbolic"), ("Measurement", "measurement"), ("Bound", "bound")):
            content = plain[key]
            if content:
                out.append(f"**{label}:**")
                for k, v in content.items():
                    if isinstance(v, list) and v and all(isinstance(row, dict) for row in v):
                        out += [f"- {k}:", ""] + _rows_table(v) + [""]
                    else:
                        out.append(f"- {k}: {_fmt(v)}")
                out.append("")
        if r.notes:
            out.append("**Notes:**")
            out += [f"- {note}" if "\n" not in note else f"```\n{note}\n```" for note in r.notes]
    return "\n".join(out) + "\n"


def write_reports(records: list[CheckRecord], parameters: dict, folder: str) -> tuple[str, str]:
    """Write ``folder/report.md`` and ``folder/report.json``; return their paths."""
    md_path, json_path = os.path.join(folder, "report.md"), os.path.join(folder, "report.json")
    payload = dict(parameters=parameters, ok=all(r.ok for r in records),
                   checks=[r.to_json() for r in records])
    atomic_write_text(json_path, json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(md_path, markdown(records, parameters))
    return md_path, json_path
