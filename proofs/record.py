"""What a proof check returns, and the registry that `python -m proofs` and pytest both read.

A check is a function ``check(record, mode) -> record`` registered with :func:`claim`. It
receives a :class:`CheckRecord` already holding the claim text, where it comes from and the
expected verdict, fills in the instance, the assumptions (measured, required, met), the
symbolic step, the numeric measurement and the bound, and decides a verdict.

Every claim has a ``source`` (see ``docs/theory.md``, "Attribution"):

* ``"paper"`` — printed in the paper's main text; the record carries the printed words
  (``quote``). Verdicts: ``"confirmed"``, ``"refuted"``, ``"inconclusive"``, or ``"typo"``
  (a misprint that the surrounding equations and the numbers both correct);
* ``"appendix, second-hand"`` — known only from a summary of the appendix, so its constants
  may be the summary's, not the paper's. Verdicts: ``"consistent"``, ``"disagrees with our
  source"``, ``"inconclusive"`` — never "refuted";
* ``"derived here"`` — this package's own statement (a derivation, a conjecture, a reading
  of the paper). Verdicts: ``"confirmed"``, ``"refuted"``, ``"inconclusive"``: a refuted
  derived statement is our result, not the paper's error.

Existence claims (a local minimiser of loss (6)) also carry ``weights``: ``"untied"`` when
the check trains and certifies independent ``W1, W2`` as loss (6) is printed.

``expected_verdict`` is what the package asserts. A run succeeds when every verdict equals
its expected verdict.

>>> record = CheckRecord("demo", "1 + 1 = 2", "eq. (0)", source="derived here")
>>> record.assume("integers", 2, "> 0", True)
>>> record.decide(confirmed=1 + 1 == 2)
'confirmed'
>>> second = CheckRecord("demo", "a constant of the appendix", "Cor. D.4", source="appendix, second-hand")
>>> second.decide(confirmed=False)
'disagrees with our source'
"""
from __future__ import annotations

import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Callable

from numerics.checkpoint import jsonable

CONFIRMED, REFUTED, INCONCLUSIVE, ERROR = "confirmed", "refuted", "inconclusive", "error"
# Verdicts on statements known only second-hand, and on printed typos: never "refuted".
CONSISTENT, DISAGREES, TYPO = "consistent", "disagrees with our source", "typo"
VERDICTS = (CONFIRMED, REFUTED, INCONCLUSIVE, ERROR, CONSISTENT, DISAGREES, TYPO)

# Where a statement comes from (the attribution of every record).
PAPER, SECOND_HAND, DERIVED = "paper", "appendix, second-hand", "derived here"
SOURCES = (PAPER, SECOND_HAND, DERIVED)
# Which verdicts a source admits: only the paper's printed words can be refuted as the paper's.
ALLOWED = {PAPER: (CONFIRMED, REFUTED, INCONCLUSIVE, TYPO),
           SECOND_HAND: (CONSISTENT, DISAGREES, INCONCLUSIVE),
           DERIVED: (CONFIRMED, REFUTED, INCONCLUSIVE)}


@dataclass(frozen=True)
class Mode:
    """How hard to check, and where the sweeps run.

    ``full`` is the paper's scale (d = 1024 …); ``quiet`` silences progress output (set when
    the env var CI is); ``seed`` seeds every instance. Sweeps (`numerics.sweep.sweep`) run on
    ``executor`` — None: ``workers`` local processes; ``"dask:local"``: a LocalCluster of
    ``workers`` workers; ``"dask:ADDRESS"``: a running Dask scheduler — and, with
    ``cache_dir``, cache each task there so that a killed run resumes.
    """

    full: bool = False
    workers: int = 2
    quiet: bool = False
    seed: int = 0
    executor: str | None = None
    cache_dir: str | None = None

    def sweep_options(self, name: str) -> dict:
        """Keyword arguments of `numerics.sweep.sweep` for the sweep ``name`` of a check.

        >>> Mode(cache_dir="cache").sweep_options("allocation_rule")["cache_dir"]
        'cache/allocation_rule'
        """
        cache = None if self.cache_dir is None else os.path.join(self.cache_dir, name)
        return dict(executor=self.executor, workers=self.workers, cache_dir=cache,
                    progress=False if self.quiet else None)

    def multistart_options(self, name: str) -> dict:
        """Keyword arguments of `numerics.multistart.multistart` for the multistart ``name`` of a check.

        The default mode's multistarts are a few starts of small problems: they run in this
        process (starting worker processes would cost more than it saves) unless an
        ``executor`` was chosen; at paper scale (``full``) they use the ``workers``. Either
        way every start runs with one thread, so the numbers are the same.

        >>> Mode().multistart_options("x")["workers"], Mode(full=True).multistart_options("x")["workers"]
        (1, 2)
        """
        # A multistart's checkpoint folder holds one run: one folder per mode and seed.
        options = self.sweep_options(os.path.join(name, f"{self.name}-seed{self.seed}"))
        cache = options.pop("cache_dir")
        if self.executor is None and not self.full:
            options["workers"] = 1
        return dict(options, checkpoint_dir=cache)

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
    source: str = PAPER         # "paper", "appendix, second-hand" or "derived here"
    quote: str = ""             # the paper's printed words (source "paper")
    weights: str = ""           # "untied" for existence claims checked on loss (6) as printed

    def assume(self, name: str, measured, required: str, met: bool) -> None:
        """Record an assumption of the claim with its measured value on the instance."""
        self.assumptions[name] = (jsonable(measured), required, bool(met))

    @property
    def assumptions_met(self) -> bool:
        return all(met for _, _, met in self.assumptions.values())

    def note(self, text: str) -> None:
        self.notes.append(text)

    def decide(self, *, confirmed: bool, refuted: bool | None = None, typo: bool = False) -> str:
        """Set the verdict: confirmed if ``confirmed``; refuted if ``refuted`` (default: not confirmed).

        When the instance leaves the claim's assumptions a claim can be neither confirmed
        nor refuted by it: the verdict is then inconclusive and a note says what was found.
        A second-hand statement is "consistent" or "disagrees with our source" instead.
        ``typo=True`` (paper statements only) marks a refutation of the printed form as a
        misprint: the verdict is "typo", and the record's notes must carry the evidence.
        """
        refuted = (not confirmed) if refuted is None else refuted
        if not self.assumptions_met:
            failed = [k for k, (_, _, met) in self.assumptions.items() if not met]
            self.note(f"assumptions not met ({', '.join(failed)}): the measurement shows what the "
                      f"solver finds beyond them ({'claim holds' if confirmed else 'claim fails'} there)")
            verdict = INCONCLUSIVE
        elif confirmed:
            verdict = CONFIRMED
        elif refuted:
            verdict = REFUTED
        else:
            verdict = INCONCLUSIVE
        if self.source == SECOND_HAND:
            verdict = {CONFIRMED: CONSISTENT, REFUTED: DISAGREES}.get(verdict, verdict)
        if typo:
            if self.source != PAPER:
                raise ValueError(f"only a statement of the paper can be a typo; {self.name!r} is {self.source!r}")
            if verdict == REFUTED:
                verdict = TYPO
        self.verdict = verdict
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
    source: str = PAPER
    quote: str = ""
    weights: str = ""

    def run(self, mode: Mode | None = None) -> CheckRecord:
        mode = Mode() if mode is None else mode
        record = CheckRecord(self.name, self.claim, self.equations, self.expected, self.title,
                             mode=mode.name, source=self.source, quote=self.quote, weights=self.weights)
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


def claim(name: str, *, title: str, statement: str, equations: str, source: str, quote: str = "",
          weights: str = "", expected: str = CONFIRMED, slow: bool = False):
    """Register ``function(record, mode)`` as the check of one claim (decorator).

    ``source`` is one of `SOURCES`; a ``"paper"`` claim needs its printed words in ``quote``;
    ``expected`` must be a verdict that source admits (`ALLOWED`).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}; got {source!r}")
    if source == PAPER and not quote.strip():
        raise ValueError(f"check {name!r}: a statement of the paper needs its printed words (quote)")
    if expected not in ALLOWED[source]:
        raise ValueError(f"check {name!r}: a {source!r} statement cannot be expected {expected!r}; "
                         f"choose from {ALLOWED[source]}")
    if weights not in ("", "untied", "tied"):
        raise ValueError(f"weights must be '', 'untied' or 'tied'; got {weights!r}")

    def register(function):
        if name in CHECKS:
            raise ValueError(f"check {name!r} is registered twice")
        CHECKS[name] = Check(name, title, statement, equations, expected, function, slow, source, quote, weights)
        return function

    return register
