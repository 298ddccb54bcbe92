"""Fig. 7 analog: steering by a mean representation (eq. 11), memorised vs generalised samples.

The paper steers the decoder with ``h + a·v``, ``v`` the mean representation of a reference
set, and shows that generalised generations change smoothly with ``a`` while memorised ones
are "brittle, threshold-like". `numerics.unet_steering.steering_numbers` quantifies it on the
digit DDPM: per sample, the Spearman ρ between ``a`` and a response (the target digit's
logit, a pixel projection, the displacement), and the largest single-step share of the total
change (``1/(G−1)`` for an even change over G strengths, 1 for one jump), averaged over the
memorised and the generalised samples, mean ± std over sampling seeds. Needs the ``[torch]``
extra; the numbers are shared with Table 1 (b) and Fig. 5 (`figures.ddpm`).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from figures.common import Config, check
from figures.ddpm import ddpm_numbers

PAPER = "Fig. 7 (steering: generalised samples edit smoothly, memorised ones are brittle)"
PANELS = (("abs_spearman", "|Spearman rho| (a, response)"), ("largest_step_share", "largest step / total change"))


def compute(config: Config) -> dict:
    steering = ddpm_numbers(config)["steering"]
    caption = ("Steering a digit DDPM towards one digit class by adding a times the mean up-block representation of "
               "held-out digits of that class (eq. 11). Per response: monotonicity (|Spearman rho| against a) and "
               "the largest single-step share of the change, memorised vs generalised samples (mean +- std over "
               "sampling seeds).")
    return dict(paper=PAPER, caption=caption, parameters=steering["parameters"], summary=steering["summary"],
                vector_norms=steering["vector_norms"])


def _gap(summary: dict, key: str, first: str, second: str) -> tuple[float, float]:
    """Mean of ``first`` minus mean of ``second`` (over seeds) and the combined seed spread √(s₁² + s₂²)."""
    a, b = summary[first][key], summary[second][key]
    return a["mean"] - b["mean"], float(np.hypot(a["std"], b["std"]))


def checks(numbers: dict) -> list:
    """Eq. (11) first has to steer: the target logit of generalised samples must rise with ``a``
    (mean Spearman ρ above its seed spread). Then the paper's qualitative claim on that
    response: generalised samples respond more monotonically and with a smaller largest step
    than memorised ones, each gap larger than the two seed spreads combined (√(s₁² + s₂²)),
    i.e. not seed noise. When the vector does not steer this model, the comparison cannot be
    made: that is recorded as the reason of the expected failures, with the measured ρ. On the
    full-size digit DDPM the step-size contrast holds and the monotonicity contrast does not;
    that measured split is recorded as the reason when it recurs."""
    logit = numbers["summary"]["logit"]
    rho = logit["generalised"]["spearman"]
    steers = bool(rho["mean"] > max(rho["std"], 0.0))
    reason = None if steers else (
        f"measured on this digit DDPM: eq. (11)'s mean-representation vector does not raise the target logit "
        f"(Spearman rho of a vs logit: generalised {rho['mean']:+.2f} +- {rho['std']:.2f}, memorised "
        f"{logit['memorised']['spearman']['mean']:+.2f}), so the paper's contrast cannot be observed here")
    out = [check("steering (target logit): eq. (11) moves generalised samples towards the target (Spearman rho > 0)",
                 rho["mean"], rho["std"], steers, expected_failure=reason)]
    monotone, monotone_spread = _gap(logit, "abs_spearman", "generalised", "memorised")
    step, step_spread = _gap(logit, "largest_step_share", "memorised", "generalised")
    holds = {name: bool(np.isfinite(gap) and np.isfinite(spread) and gap > spread)
             for name, gap, spread in (("monotone", monotone, monotone_spread), ("step", step, step_spread))}
    mem_rho, gen_rho = logit["memorised"]["abs_spearman"]["mean"], logit["generalised"]["abs_spearman"]["mean"]
    # Measured on the full-size digit DDPM: the memorised samples' larger single steps (the
    # paper's "threshold-like") come with responses as monotone as the generalised ones'.
    step_only = (f"measured on this digit DDPM: memorised samples do change in larger single steps, but their "
                 f"target logit is as monotone in a as the generalised samples' (|rho| {mem_rho:.2f} vs "
                 f"{gen_rho:.2f}): the brittleness shows in step size only")
    reasons = {"monotone": step_only if steers and holds["step"] else None, "step": None}
    for name, claim, gap, spread in (("monotone", "generalised samples respond more monotonically (|rho|)",
                                      monotone, monotone_spread),
                                     ("step", "memorised samples change in a larger single step", step, step_spread)):
        reason = reasons[name] if steers else "needs steering to work (first check)"
        out.append(check(f"steering (target logit): {claim}", gap, spread, holds[name],
                         expected_failure=None if holds[name] else reason))
    return out


def draw(numbers: dict) -> Figure:
    summary = numbers["summary"]
    responses = list(summary)
    figure = Figure(figsize=(8.0, 3.0), layout="constrained")
    for ax, (key, label) in zip(figure.subplots(1, len(PANELS)), PANELS):
        for offset, (group, colour) in enumerate((("memorised", "tab:red"), ("generalised", "tab:blue"))):
            means = [summary[r][group][key]["mean"] for r in responses]
            spreads = [summary[r][group][key]["std"] for r in responses]
            ax.bar(np.arange(len(responses)) + 0.38 * offset, means, width=0.38, yerr=spreads, color=colour,
                   alpha=0.7, label=f"{group} (n = {summary[responses[0]][group]['n']})")
        ax.set_xticks(np.arange(len(responses)) + 0.19, responses, fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    return figure
