"""Numerics for the ReLU-DAE: data, the exact objective (eq. 6), solvers, certificates, comparisons.

One module per idea: `validation` (input checks), `threads`, `checkpoint`; `data`, `images`;
`gaussian`, `moment_sums` (the sample sums behind the exact objective), `objective`, `model`,
`denoisers`; `geometry` (weight geometry: loss unit, zero columns, invariant subspace,
packing, Hessian-vector products by finite differences or a given exact factory), `hessian`
(exact Hessian-vector products of eq. 6), `newton` (trust-region Newton stage with them, the
bottom of the Hessian spectrum), `initialization`,
`protocol` (the authors' training loop), `training` (`train`), `multistart`, `symmetry`,
`spectrum`, `zero_column`, `certify`, `escape` (`train_to_minimum`); `solvers` gathers the
solver entry points; `compare` (representation statistics, column structure, per-cluster
maps); `convex` (cvxpy certificates); `diagnostics` (Taylor-remainder slope test);
`sweep` (independent tasks on local processes or Dask, cached and resumable), with
`executors` (where tasks run) and `sweep_cache` (the cache entries).

No sympy at run time: symbolic results reach this package as plain functions.
"""
