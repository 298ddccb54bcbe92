"""Prompt-free memorisation detection: spikiness scores and their ROC summary (Algorithm 1).

The paper's detector (Algorithm 1) noises a query image to a fixed small level, reads an
intermediate representation ``h`` of the denoiser and flags the image as memorised when
``Std(h)`` exceeds a threshold: memorised samples have spiky representations, generalised
ones balanced representations (Section 4). Table 1 reports the area under the ROC curve and
the true-positive rate at 1 % false-positive rate of that score.

* :func:`spikiness` — per-sample scores of a batch of representations;
* :func:`effective_rank` — ``exp`` of the entropy of normalised singular values, the
  prompt-free baseline of the Jacobian analysis (App. B.3);
* :func:`roc_summary` — AUROC, TPR at 1 % FPR, counts and seconds per sample of a score
  that is meant to be *larger for memorised samples*.

numpy and scikit-learn only: representations from a torch model reach this module as arrays
(`numerics.hooks.collect` returns them with samples as rows, hence ``samples="rows"``).

>>> import numpy as np
>>> H = np.array([[3.0, 1.0], [0.0, 1.0], [0.0, 1.0]])     # (p, m): a spike, a flat vector
>>> np.round(spikiness(H), 4).tolist()
[1.4142, 0.0]
>>> summary = roc_summary([3.0, 2.5, 2.0], [1.0, 0.5, 2.2, 0.1])
>>> round(summary.auroc, 4), round(summary.tpr_at_1pct_fpr, 4), summary.n_memorised
(0.9167, 0.6667, 3)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numerics.compare import norm_ratio, representation_std
from numerics.validation import as_matrix, as_vector, nonnegative, positive_int

__all__ = ["SPIKINESS_KINDS", "spikiness", "effective_rank", "RocSummary", "roc_summary", "tpr_at_fpr", "null_auroc_se"]

SPIKINESS_KINDS = {"std": representation_std, "l4/l2": norm_ratio}
MAX_FPR = 0.01


def spikiness(H, kind: str = "std", *, samples: str = "columns") -> np.ndarray:
    """Spikiness score of every representation in ``H``: the paper's ``Std(h)`` (Section 4).

    ``kind="std"`` is the population standard deviation of the entries of ``h`` (the score of
    Algorithm 1, `numerics.compare.representation_std`); ``kind="l4/l2"`` is the scale-free
    ``‖h‖₄/‖h‖₂`` (`numerics.compare.norm_ratio`), also recorded by the authors' code.

    ``H`` holds one representation per column, shape ``(p, m)`` — the package's convention.
    Arrays with one representation per row, shape ``(m, C)`` as returned by
    `numerics.hooks.collect`, are accepted only with ``samples="rows"``; the layout is never
    guessed from the shape.

    >>> H = np.array([[2.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])   # (m, C) = (2, 4)
    >>> spikiness(H, samples="rows").tolist()
    [0.8660254037844386, 0.0]
    >>> spikiness(H, kind="l4/l2", samples="rows").tolist()
    [1.0, 0.7071067811865476]
    """
    if kind not in SPIKINESS_KINDS:
        raise ValueError(f"kind must be one of {sorted(SPIKINESS_KINDS)}; got {kind!r}")
    if samples == "columns":
        H = as_matrix("H", H, rows_name="p", cols_name="m")
    elif samples == "rows":
        H = as_matrix("H", H, rows_name="m", cols_name="C").T
    else:
        raise ValueError(f"samples must be 'columns' (H of shape (p, m)) or 'rows' "
                         f"(H of shape (m, C)); got {samples!r}")
    if H.shape[0] == 0:
        raise ValueError("H must have at least one entry per representation; got an empty "
                         f"representation dimension (shape {H.shape} as (p, m))")
    return SPIKINESS_KINDS[kind](H)


def effective_rank(singular_values) -> np.ndarray:
    """Effective rank ``exp(−Σ q_i log q_i)``, ``q = s/‖s‖₁``, of each row of singular values.

    Roy & Vetterli (2007): k equal non-zero singular values give k, one dominant value gives
    about 1. Used on the denoiser's Jacobian (App. B.3: one dominant data vector when
    memorised, local statistics when generalised). A row of zeros has effective rank 0.

    >>> np.round(effective_rank([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]]), 6).tolist()
    [3.0, 1.0]
    """
    s = np.asarray(singular_values, dtype=np.float64)
    s = s[None, :] if s.ndim == 1 else s
    if s.ndim != 2 or not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("singular_values must be a finite non-negative array of shape (k,) or "
                         f"(m, k); got shape {np.shape(singular_values)}")
    total = s.sum(axis=1, keepdims=True)
    q = np.divide(s, total, out=np.zeros_like(s), where=total > 0)
    entropy = -np.sum(q * np.log(q, out=np.zeros_like(q), where=q > 0), axis=1)
    return np.where(total[:, 0] > 0, np.exp(entropy), 0.0)


@dataclass(frozen=True)
class RocSummary:
    """ROC summary of a memorisation score (higher = more likely memorised).

    ``tpr_at_1pct_fpr`` is the largest true-positive rate over all thresholds whose
    false-positive rate is at most 0.01 (a point of the empirical ROC curve, no interpolation);
    ``threshold_at_1pct_fpr`` is the score threshold reaching it (flag ``score >= threshold``).
    ``seconds_per_sample`` is ``seconds / (n_memorised + n_generalised)`` when the time spent
    scoring all samples was given, else ``None``.

    Returned by `roc_summary`.
    """

    auroc: float
    tpr_at_1pct_fpr: float
    threshold_at_1pct_fpr: float
    n_memorised: int
    n_generalised: int
    seconds_per_sample: float | None = None

    def as_dict(self) -> dict:
        """Plain-Python copy for JSON output."""
        return dict(auroc=self.auroc, tpr_at_1pct_fpr=self.tpr_at_1pct_fpr,
                    threshold_at_1pct_fpr=self.threshold_at_1pct_fpr,
                    n_memorised=self.n_memorised, n_generalised=self.n_generalised,
                    seconds_per_sample=self.seconds_per_sample)


def _scores(name: str, value) -> np.ndarray:
    scores = as_vector(name, value)
    if scores.size == 0:
        raise ValueError(f"{name} must hold at least one score; got none")
    return scores


def tpr_at_fpr(scores_memorised, scores_generalised, max_fpr: float = MAX_FPR) -> tuple[float, float]:
    """Largest TPR over the thresholds with FPR ≤ ``max_fpr``, and that threshold.

    Uses ``sklearn.metrics.roc_curve`` with every threshold kept (``drop_intermediate=False``);
    the threshold ``+inf`` (nothing flagged, TPR = FPR = 0) is always admissible.

    >>> tpr_at_fpr([3.0, 2.0, 1.0], [0.0, 1.5], max_fpr=0.0)     # flag score >= 2.0
    (0.6666666666666666, 2.0)
    >>> tpr_at_fpr([3.0, 2.0, 1.0], [0.0, 1.5], max_fpr=0.5)     # flag score >= 1.0
    (1.0, 1.0)
    """
    from sklearn.metrics import roc_curve

    mem = _scores("scores_memorised", scores_memorised)
    gen = _scores("scores_generalised", scores_generalised)
    max_fpr = nonnegative("max_fpr", max_fpr)
    truth = np.concatenate([np.ones(mem.size, dtype=int), np.zeros(gen.size, dtype=int)])
    fpr, tpr, thresholds = roc_curve(truth, np.concatenate([mem, gen]), drop_intermediate=False)
    admissible = np.flatnonzero(fpr <= max_fpr)          # never empty: the first point is (0, 0)
    best = admissible[np.argmax(tpr[admissible])]
    return float(tpr[best]), float(thresholds[best])


def null_auroc_se(n_memorised: int, n_generalised: int) -> float:
    """Standard error of the AUROC of a score with no information: ``√((n₁ + n₂ + 1)/(12 n₁ n₂))``.

    The Mann–Whitney U statistic's null variance divided by ``(n₁ n₂)²`` (Hanley & McNeil
    1982, no ties); "better than chance" means an AUROC a few of these above 1/2.

    >>> round(null_auroc_se(50, 50), 4)
    0.058
    """
    n1, n2 = positive_int("n_memorised", n_memorised), positive_int("n_generalised", n_generalised)
    return float(np.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2)))


def roc_summary(scores_memorised, scores_generalised, *, seconds=None) -> RocSummary:
    """AUROC and TPR at 1 % FPR of a memorisation score, as in the paper's Table 1.

    ``scores_memorised`` / ``scores_generalised`` are 1-D arrays of the score on samples known
    to be memorised / generalised; a larger score must mean "more likely memorised" (negate a
    score that works the other way, e.g. a denoising loss). ``seconds`` is the wall time spent
    computing all the scores; the summary then reports seconds per sample.
    AUROC is ``sklearn.metrics.roc_auc_score`` (ties count one half).

    >>> s = roc_summary([0.9, 0.8], [0.1, 0.2, 0.3], seconds=1.0)
    >>> s.auroc, s.tpr_at_1pct_fpr, s.seconds_per_sample
    (1.0, 1.0, 0.2)
    """
    from sklearn.metrics import roc_auc_score

    mem = _scores("scores_memorised", scores_memorised)
    gen = _scores("scores_generalised", scores_generalised)
    per_sample = None
    if seconds is not None:
        per_sample = nonnegative("seconds", seconds) / (mem.size + gen.size)
    truth = np.concatenate([np.ones(mem.size, dtype=int), np.zeros(gen.size, dtype=int)])
    auroc = float(roc_auc_score(truth, np.concatenate([mem, gen])))
    tpr, threshold = tpr_at_fpr(mem, gen, MAX_FPR)
    return RocSummary(auroc=auroc, tpr_at_1pct_fpr=tpr, threshold_at_1pct_fpr=threshold,
                      n_memorised=int(mem.size), n_generalised=int(gen.size),
                      seconds_per_sample=per_sample)
