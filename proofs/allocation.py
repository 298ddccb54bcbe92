"""Our neuron-allocation rule (docs/theory.md §3, derived here) against the best of 16 random starts.

With stable masks the loss is a sum over clusters and eigen-directions; a neuron on a
direction with eigenvalue Λ of X_kX_kᵀ lowers n·L by ``(Λ − nλ)²/(Λ + n_kσ²)``, so the best
block solution keeps the p directions with the largest gains (water-filling,
`theory.allocation.allocate`). The rule predicts, per cluster, how many directions its
linear map keeps: 1 for a memorised sample or duplicate, ≥ 2 for a generalising mode, 0 for
an unrepresented cluster.

Proof sketch checked here, on random small instances in the theorem's regime
(`random_instance`: modes and duplicates on a simplex, orthogonal spreads, γ/σ ≥ 2.5):

1. predict the allocation (`allocate`);
2. run `numerics.solvers.multistart` (16 random starts, exact loss, tied) and read the
   allocation of the lowest-loss start as the rank of each cluster's map ``A_k`` (singular
   values > 1e-2: invariant under column splitting, O_k and permutations);
3. also minimise from the rule's own block point, to tell apart "the optimiser missed the
   rule's minimum" from "a different allocation has a lower loss" (the rule is wrong there).

The agreement rate (target ≥ 90 %) is reported whatever it is; the verdict is
"confirmed" when it reaches 90 %. The instances are the tasks of one `numerics.sweep.sweep`:
on ``--workers`` local processes or on Dask (``--dask``), cached with ``--cache`` so that a
killed run resumes; the numbers do not depend on where they ran.
"""
from __future__ import annotations

import numpy as np

from numerics.compare import column_structure
from numerics.solvers import multistart
from numerics.sweep import sweep
from numerics.threads import single_thread
from proofs.common import minimise_from, orthogonal_clusters, say
from proofs.record import claim
from theory.allocation import allocate, cluster_spectra, direction_gains
from theory.predict import predict

RANK_THRESHOLD = 1e-2      # a kept direction has map eigenvalue a* ≥ 0.1 in `random_instance`
LOSS_RTOL = 1e-6           # solver tolerance: losses within this are the same level


def random_instance(rng, max_tries=200):
    """A random hybrid instance where the allocation is a real choice and masks are stable.

    2–3 clusters with simplex means of norms in [2, 4]; each is a mode (3–8 points, spread of
    rank 1–2, α in [0.2, 0.5]) or a duplicated point (1–4 copies). σ in [0.15, 0.6], λ log-uniform
    in [1e-4, 1e-2]; p is below the number U of directions with positive gain (so some must be
    dropped) and at least U − 3. Rejected unless the rule's block point has γ/σ ≥ 2.5 and every
    kept direction has a* ≥ 0.1.
    """
    for _ in range(max_tries):
        M = int(rng.integers(2, 4))
        kinds = rng.random(M) < 0.6                                   # True: a mode
        if not kinds.any():
            kinds[0] = True
        sizes = [int(rng.integers(3, 9)) if mode else int(rng.integers(1, 5)) for mode in kinds]
        ranks = [int(rng.integers(1, 3)) if mode else 0 for mode in kinds]
        d = M - 1 + sum(ranks)
        norms = rng.uniform(2.0, 4.0, size=M)
        X, labels = orthogonal_clusters(d, sizes, ranks, alpha=rng.uniform(0.2, 0.5), norms=norms, seed=rng)
        sigma, lam = rng.uniform(0.15, 0.6), 10 ** rng.uniform(-4, -2)
        n = X.shape[1]
        gains = [direction_gains(s, n, sigma, lam) for s in cluster_spectra(X, labels)]
        usable = int(sum(np.sum(g > 0) for g in gains))
        if usable < 2:
            continue
        p = int(rng.integers(max(1, usable - 3), usable))
        rule = allocate(X, labels, p, sigma, lam)
        try:
            prediction = predict(X, labels, rule.p_per_cluster, sigma, lam)
        except ValueError:                                            # unstable masks
            continue
        smallest_a = min(np.min(np.linalg.eigvalsh(A)[-q:]) for A, q in
                         zip(prediction.linear_maps.values(), rule.p_per_cluster) if q)
        if prediction.margin / sigma >= 2.5 and smallest_a >= 0.1:
            return dict(X=X, labels=labels, p=p, sigma=sigma, lam=lam, sizes=sizes, ranks=ranks,
                        rule=rule.p_per_cluster, prediction=prediction.W)
    raise RuntimeError("no valid instance found")


def measured_allocation(W1, W2, X, labels):
    """Rank of each cluster's map A_k = Σ_{j in cluster k} w2_j w1_jᵀ, and the number of mixed columns."""
    info = column_structure(W1, W2, X, labels)
    ranks = []
    for k in np.unique(labels):
        J = info.cluster_of_column == k
        A = W2[:, J] @ W1[:, J].T
        ranks.append(int(np.sum(np.linalg.svd(A, compute_uv=False) > RANK_THRESHOLD)) if J.any() else 0)
    return tuple(ranks), info.n_mixed


def evaluate(seed: int, n_starts: int = 16) -> dict:
    """One instance: the rule, the best of ``n_starts`` random starts, and the rule's own minimum."""
    with single_thread():
        inst = random_instance(np.random.default_rng(seed))
        X, labels, p, sigma, lam = (inst[k] for k in ("X", "labels", "p", "sigma", "lam"))
        runs = multistart(X, p, sigma, lam, n_starts=n_starts, seed=seed, labels=labels, workers=1,
                          tied=True, gtol=1e-6, progress=False)
        best, mixed = measured_allocation(runs.best_W1, runs.best_W2, X, labels)
        from_rule = minimise_from(X, inst["prediction"], sigma, lam, seed=seed, perturb=1e-3, gtol=1e-6)
    best_loss = float(runs.losses.min())
    scale = LOSS_RTOL * max(best_loss, from_rule.loss)
    if best == inst["rule"]:
        outcome = "agree"
    elif from_rule.loss < best_loss - scale:
        outcome = "optimiser missed the rule's minimum"
    elif best_loss < from_rule.loss - scale:
        outcome = "rule wrong: lower loss elsewhere"
    else:
        outcome = "tie: different allocation, same loss"
    return dict(seed=seed, sizes=inst["sizes"], ranks=inst["ranks"], p=p, sigma=round(sigma, 3),
                lam=float(f"{lam:.2g}"), rule=inst["rule"], best_of_starts=best, mixed_columns=mixed,
                best_loss=best_loss, rule_minimum_loss=from_rule.loss, outcome=outcome,
                starts_reaching_best=int(np.sum(runs.losses <= best_loss + scale)))


def run_instances(seeds, mode) -> list:
    """`evaluate` on every instance seed, as a sweep on ``mode``'s executor (cached in ``mode.cache_dir``)."""
    out = sweep(evaluate, [dict(seed=int(seed)) for seed in seeds], desc="allocation instances",
                **mode.sweep_options("allocation_rule"))
    for result in out.results:
        say(mode, f"instance {result['seed']}: rule {result['rule']} vs best {result['best_of_starts']} "
                  f"({result['outcome']})")
    return out.results


@claim("allocation_rule", title="Neuron allocation (derived): water-filling predicts the best of 16 random starts",
       statement="the best block solution keeps the p directions with the largest gains (Λ − nλ)²/(Λ + n_kσ²); "
                 "it predicts which clusters are memorised, which generalise and with how many neurons, and "
                 "matches the allocation of the best of 16 random starts on ≥ 90 % of instances",
       equations="neuron allocation, Lemma D.1", source="derived here", weights="tied", slow=True)
def check(record, mode):
    count = 60 if mode.full else 30
    seeds = [10_000 * (mode.seed + 1) + i for i in range(count)]
    record.instance.update(instances=count, starts_per_instance=16, generator="proofs.allocation.random_instance",
                           rank_threshold=RANK_THRESHOLD, seeds=f"{seeds[0]} … {seeds[-1]}")
    results = run_instances(seeds, mode)
    outcomes = [r["outcome"] for r in results]
    rate = outcomes.count("agree") / len(results)
    record.measurement.update(agreement_rate=rate,
                              outcomes={o: outcomes.count(o) for o in sorted(set(outcomes))},
                              instances=[{k: v for k, v in r.items() if k != "seed"} for r in results])
    record.bound["target_agreement"] = 0.9
    lower = [r["rule_minimum_loss"] - r["best_loss"] for r in results
             if r["outcome"] == "agree" and r["rule_minimum_loss"] - r["best_loss"] > LOSS_RTOL * r["best_loss"]]
    record.measurement["same_allocation_but_lower_loss_than_the_rule_minimum"] = dict(
        instances=len(lower), largest_gap=max(lower, default=0.0))
    record.note("Instances are drawn in the theorem's regime (γ/σ ≥ 2.5 at the rule's block point, kept a* ≥ 0.1); "
                "allocations are compared as ranks of the per-cluster maps.")
    if lower:
        record.note(f"On {len(lower)} instance(s) the best random start has the rule's allocation but a lower loss "
                    f"than the minimum reached from the rule's own block point (gap up to {max(lower):.1e}): a "
                    f"different O_k, or a neuron switching off on part of a cluster, beats eq. (8)'s uniform O_k "
                    f"(see errata_balanced_global). The rule predicts the allocation, not the whole minimiser.")
    wrong = outcomes.count("rule wrong: lower loss elsewhere")
    record.headline = (f"agreement {rate:.0%} on {len(results)} instances (target 90 %); rule beaten by a lower "
                       f"loss on {wrong}")
    record.decide(confirmed=rate >= 0.9, refuted=rate < 0.9)
