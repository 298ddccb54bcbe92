"""Proof checks: one module per claim of the paper (docs/theory.md §3–4), each a symbolic step from
``theory/`` joined to a numeric confirmation from ``numerics/``.

>>> from proofs import CHECKS
>>> "theorem_3_1" in CHECKS and CHECKS["errata_cor33_printed_bound"].expected == "refuted"
True

``python -m proofs`` runs them all (see ``proofs/__main__.py``); ``tests/proofs/test_proofs.py``
collects the same registry under pytest.
"""
from __future__ import annotations

from proofs.record import CHECKS, CheckRecord, Mode

# Registration order is report order: definitions, lemmas, theorems, corollaries, derived, errata.
from proofs import (definition_3_1, lemma_d1, theorem_3_1, theorem_d2, corollary_3_2,  # noqa: E402,F401
                    corollary_3_3, corollary_3_4, corollary_d4, representation, allocation, errata,
                    corollary_3_2_decay, optimizer_bias, diffusion_sampling, diffusion_structure)

__all__ = ["CHECKS", "CheckRecord", "Mode", "run"]


def run(names=None, mode: Mode | None = None) -> list[CheckRecord]:
    """Run the named checks (all when ``names`` is None) in registry order; default mode when ``mode`` is None."""
    import contextlib

    from numerics.threads import single_thread
    from proofs.common import say

    mode = Mode() if mode is None else mode
    records = []
    for name, check in CHECKS.items():
        if names and name not in names:
            continue
        say(mode, f"{name} …")
        # small default instances: thread start-up costs more than it saves; paper scale: use the cores
        with contextlib.nullcontext() if mode.full else single_thread():
            record = check.run(mode)
        say(mode, f"{name}: {record.verdict} ({record.seconds:.1f} s) {record.headline}")
        records.append(record)
    return records
