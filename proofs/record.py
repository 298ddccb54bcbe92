"""What a proof check returns, and the registry that `python -m proofs` and pytest both read.

A check is a function ``check(record, mode) -> record`` registered with :func:`claim`. It
receives a :class:`CheckRecord` already holding the claim text, equation numbers and the
expected verdict, fills in the instance, the assumptions (measured, required, met), the
symbolic step, the numeric measurement and the bound, and decides a verdict:

* ``"confirmed"`` — the measurement agrees with the claim within the stated bound;
* ``"refuted"`` — the measurement contradicts the claim (with the numbers that show it);
* ``"inconclusive"`` — neither (e.g. the instance leaves the claim's assumptions).

``expected_verdict`` is what the package asserts: ``"confirmed"`` for claims we verify,
``"refuted"`` for errata. A run succeeds when every verdict equals its expected verdict.

>>> record = CheckRecord("demo", "1 + 1 = 2", "eq. (0)")
>>> record.assume("integers", 2, "> 0", True)
>>> record.decide(confirmed=1 + 1 == 2)
'confirmed'
"""
from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable

from numerics.checkpoint import jsonable

CONFIRMED, REFUTED, INCONCLUSIVE, ERROR = "confirmed", "refuted", "inconclusive", "error"
VERDICTS = (CONFIRMED, REFUTED, INCONCLUSIVE, ERROR)


@dataclass(frozen=True)
class Mode:
    """How hard to check: ``full`` is the paper's scale (d = 1024 …); ``workers`` processes for
    multistart-style loops; ``quiet`` silences progress output (set when the env var CI is)."""

    full: bool = False
    workers: int = 2
    quiet: bool = False
    seed: int = 0

    @property
    def name(self) -> str:
        return "full" if self.full else "default"


@dataclass
class CheckRecord:
    """Evidence for one claim; ``assumptions`` maps a name to ``(measured, required, met)``."""

    name: str
    claim: str
    equations: str
    expected_verdict: str = CONFIRMED
    title: str = ""
    instance: dict = field(default_factory=dict)
    assumptions: dict = field(default_factory=dict)
    symbolic: dict = field(default_factory=dict)
    measurement: dict = field(default_factory=dict)
    bound: dict = field(default_factory=dict)
    verdict: str = INCONCLUSIVE
    seconds: float = 0.0
    notes: list = field(default_factory=list)
    mode: str = "default"
    headline: str = ""          # one line for the table: the number that decides the verdict

    def assume(self, name: str, measured, required: str, met: bool) -> None:
        """Record an assumption of the claim with its measured value on the instance."""
        self.assumptions[name] = (jsonable(measured), required, bool(met))

    @property
    def assumptions_met(self) -> bool:
        return all(met for _, _, met in self.assumptions.values())

    def note(self, text: str) -> None:
        self.notes.append(text)

    def decide(self, *, confirmed: bool, refuted: bool | None = None) -> str:
        """Set the verdict: confirmed if ``confirmed``; refuted if ``refuted`` (default: not confirmed).

        When the instance leaves the claim's assumptions a claim can be neither confirmed
        nor refuted by it: the verdict is then inconclusive and a note says what was found.
        """
        refuted = (not confirmed) if refuted is None else refuted
        if not self.assumptions_met:
            failed = [k for k, (_, _, met) in self.assumptions.items() if not met]
            self.note(f"assumptions not met ({', '.join(failed)}): the measurement shows what the "
                      f"solver finds beyond them ({'claim holds' if confirmed else 'claim fails'} there)")
            self.verdict = INCONCLUSIVE
        elif confirmed:
            self.verdict = CONFIRMED
        elif refuted:
            self.verdict = REFUTED
        else:
            self.verdict = INCONCLUSIVE
        return self.verdict

    @property
    def ok(self) -> bool:
        return self.verdict == self.expected_verdict

    def to_json(self) -> dict:
        return jsonable(asdict(self))


@dataclass(frozen=True)
class Check:
    """A registered claim: ``run(mode)`` returns its :class:`CheckRecord`."""

    name: str
    title: str
    claim: str
    equations: str
    expected: str
    function: Callable
    slow: bool

    def run(self, mode: Mode | None = None) -> CheckRecord:
        mode = Mode() if mode is None else mode
        record = CheckRecord(self.name, self.claim, self.equations, self.expected, self.title,
                             mode=mode.name)
        started = time.perf_counter()
        try:
            self.function(record, mode)
        except Exception as error:  # a crashing check is reported, never hidden
            record.verdict = ERROR
            record.note(f"{type(error).__name__}: {error}")
            record.note(traceback.format_exc(limit=6))
        record.seconds = time.perf_counter() - started
        return record


CHECKS: dict[str, Check] = {}


def claim(name: str, *, title: str, statement: str, equations: str, expected: str = CONFIRMED,
          slow: bool = False):
    """Register ``function(record, mode)`` as the check of one claim (decorator)."""
    if expected not in (CONFIRMED, REFUTED, INCONCLUSIVE):
        raise ValueError(f"expected must be one of {VERDICTS[:3]}; got {expected!r}")

    def register(function):
        if name in CHECKS:
            raise ValueError(f"check {name!r} is registered twice")
        CHECKS[name] = Check(name, title, statement, equations, expected, function, slow)
        return function

    return register
