"""Second-order certificates for critical points of eq. (6): strict minimum, degenerate minimum, saddle.

`certify` evaluates, at given weights, the exact gradient and the smallest eigenvalues of
the Hessian of eq. (6) after removing the directions along which the loss is (exactly or
up to the theory's residual ``e^{−cγ²/σ²}``) constant:

* **zero columns** (``w1_j = w2_j = 0``, or shorter than 100 difference steps, see
  `below_resolution`): the loss is not twice differentiable there, so their coordinates
  leave the Hessian and get their own test, `numerics.zero_column` — a new small neuron
  must not lower the loss: ``ratio = sup_a ‖G(a)‖/(2λ‖a‖) ≤ 1``. In the linear regime
  ratio = 1 exactly along the live columns' own directions (``G(w1_i) = −2λ w2_i`` at a
  critical point): splitting a column into two is free — the "many sparse solutions" of
  Cor. 3.2 — so ratio ≈ 1 is that symmetry and ratio > 1 is a descent direction.
* **column rescaling** ``(w1_j, w2_j) → (c w1_j, w2_j / c)`` when untied and λ = 0 (with λ > 0
  it is not a symmetry and has positive curvature 4λ‖·‖², so it stays in the test);
  more generally ``W1 → W1 M^{−T}, W2 → W2 M`` inside a block when λ = 0;
* **rotations inside a block** ``W → W O`` (tied) or ``(W1, W2) → (W1 O, W2 O)``
  (`numerics.symmetry`): a block is a set of live columns with the same activation
  pattern on the data, so a small rotation keeps the masks (Theorem 3.1's O_k).

The stages of `certify`, in order: the point (`_point`: zero and too-short columns, the
gradient test), the zero-column test (`_zero_column_stage`), the Hessian spectrum modulo
symmetries (`_spectrum`, with `numerics.spectrum`), the verdict (`_verdict`,
with a descent direction checked on the loss for a saddle).

Hessian-vector products are central differences of the exact gradient with step
``h = 1e-5·max(‖θ‖, 1)`` along a unit vector: truncation error ``O(h²‖∇³L‖)`` and rounding
``O(ε_mach‖∇L‖_scale/h)`` are both ≲ 1e-9 of ``‖H‖`` here (checked against an analytic
Hessian in tests) — or, with ``hessp=numerics.newton.exact_hessp``, the exact products of
`numerics.hessian` (the same verdicts on the tests' instances, no differencing error).
Small problems use the dense compressed Hessian; large ones Lanczos
(``scipy.sparse.linalg.eigsh``) on ``P H P + c I + 2c (I − P)``, P the projector onto the
complement of the symmetry directions and c ≈ λ_max(H): the removed directions sit at the
top of the spectrum, and ARPACK's relative stopping test becomes an absolute eigenvalue
accuracy of about ``lanczos_tol · c``.

Verdict (eigenvalue tolerance ``eig_tol = rel_eig_tol · λ_max``):
``"not a critical point"`` if ``‖∇L‖/L0 > gtol``; ``"saddle"`` if the smallest eigenvalue is
``< −eig_tol`` or the zero-column ratio exceeds ``1 + ratio_tol`` plus the ratio's own
error along live columns, ``max_j ‖∂L/∂w_j‖/(2λ‖w1_j‖)`` (each comes with an
explicit descent direction, checked on the loss itself); ``"strict local minimum"`` if the
smallest eigenvalue is ``> eig_tol`` and zero columns pass — strict *modulo the removed
symmetry directions*, which are listed in the report; otherwise ``"degenerate minimum"``
(second-order necessary conditions hold, flat directions remain).

>>> import numpy as np
>>> from numerics.training import train
>>> X = np.array([[3.0, -1.5], [0.0, 2.6], [0.0, 0.0]])
>>> fit = train(X, 2, 0.2, 0.01, seed=0, tied=True)
>>> report = certify(fit.W1, fit.W2, X, 0.2, 0.01)
>>> report.verdict, report.is_minimum
('strict local minimum', True)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from numerics.checkpoint import progress_bar
from numerics.geometry import (HVP_STEP, ZERO_TOL, ExactGradient, Packing, column_sizes, invariant_basis,
                               loss_scale, zero_columns)
from numerics.objective import expected_loss, expected_loss_and_grad
from numerics.spectrum import Spectrum, dense_spectrum, difference_range, lanczos_spectrum
from numerics.symmetry import SymmetryProjector, activation_blocks
from numerics.validation import (MagnitudeError, as_rng, data_and_weights, flag, nonnegative, optional_flag,
                                 positive_int, tied_weights, weights_pair)
from numerics.zero_column import zero_column_bound, zero_column_ratio

__all__ = ["certify", "CertifyReport", "below_resolution", "VERDICTS",
           "MINIMUM_VERDICTS", "FD_RESOLUTION", "HVP_STEP"]

VERDICTS = ("strict local minimum", "degenerate minimum", "saddle", "not a critical point")
MINIMUM_VERDICTS = VERDICTS[:2]     # second-order necessary conditions hold
FD_RESOLUTION = 100.0   # columns shorter than this many steps are certified as zero columns


# ----------------------------------------------------------------------------- report


@dataclass
class CertifyReport:
    """What `certify` found at one point (see the module docstring for the tests).

    ``verdict`` one of `VERDICTS` (``is_minimum``: one of `MINIMUM_VERDICTS`); ``loss``
    eq. (6); ``grad_norm``, ``rel_grad_norm`` (÷ L0); ``eigenvalues`` the smallest
    eigenvalues of the Hessian restricted to the complement of the symmetry directions and
    of the zero-column coordinates, ascending; ``lambda_max`` its largest eigenvalue
    (estimate); ``eig_tol``; ``n_params``, ``n_reduced`` (live coordinates), ``n_symmetry``
    (removed directions); ``zero_columns`` indices; ``blocks`` the activation blocks;
    ``symmetries`` plain-language list of what was removed; ``zero_column_ratio`` (sup
    estimate, λ > 0) or ``zero_column_gain`` (λ = 0); ``zero_column_tol`` how far above 1
    the ratio may be before it counts as a descent (``ratio_tol`` plus the offset a nonzero
    gradient causes along live columns); ``zero_column_bound`` rigorous upper bound of the
    ratio; ``symmetry_curvature`` largest |Rayleigh quotient|/λ_max along random
    removed directions (small = the removed directions are indeed flat); ``descent`` (W1, W2)
    direction, ``descent_decrease`` (loss drop found along it, above rounding) and
    ``descent_step`` (the step t that gave it: ``W + t·descent`` is lower) for a saddle;
    ``lowest_mode`` (W1, W2) unit eigenvector of the smallest eigenvalue (zero on zero
    columns); ``method`` "dense" or "lanczos"; ``n_hvp``.
    """
    verdict: str
    loss: float
    grad_norm: float
    rel_grad_norm: float
    eigenvalues: np.ndarray
    lambda_max: float
    eig_tol: float
    n_params: int
    n_reduced: int
    n_symmetry: int
    zero_columns: np.ndarray
    blocks: list
    symmetries: list
    zero_column_ratio: float
    zero_column_gain: float
    zero_column_bound: float
    symmetry_curvature: float
    method: str
    n_hvp: int
    wall_time: float
    descent: tuple | None = None
    descent_decrease: float = 0.0
    descent_step: float = 0.0
    lowest_mode: tuple | None = None
    zero_column_tol: float = float("nan")
    notes: list = field(default_factory=list)

    @property
    def is_minimum(self) -> bool:
        """The verdict is a minimum, strict or degenerate (`MINIMUM_VERDICTS`)."""
        return self.verdict in MINIMUM_VERDICTS

    @property
    def min_eigenvalue(self) -> float:
        return float(self.eigenvalues[0]) if self.eigenvalues.size else float("nan")

    def summary(self) -> str:
        parts = [f"{self.verdict}: loss {self.loss:.10g}, |grad|/L0 {self.rel_grad_norm:.1e}",
                 f"min eig {self.min_eigenvalue:.3e} (tol {self.eig_tol:.1e}, max {self.lambda_max:.3e})",
                 f"{len(self.zero_columns)} zero columns"]
        if len(self.zero_columns):
            parts.append(f"zero-column ratio {self.zero_column_ratio:.6f} (bound {self.zero_column_bound:.3g})")
        parts.append(f"{self.n_symmetry} symmetry directions removed")
        return "; ".join(parts)


# ----------------------------------------------------------------------------- public helpers


def below_resolution(W1, W2, tied, hvp_step=HVP_STEP) -> np.ndarray:
    """Columns too short for the central-difference Hessian (``‖w_j‖ ≤ FD_RESOLUTION·h``), a mask (p,).

    A neuron's terms in eq. (6) are positively homogeneous of degree 2 in ``w1_j`` (times
    ``w2_j``), so their fourth derivatives grow like ``‖w_j‖^{-2}`` and the central
    difference's relative error on that column is ``O((h/‖w_j‖)²)``: ``≤ 1e-4`` when the
    column is 100 steps long. Shorter columns (the slowly vanishing copies that the
    splitting symmetry of Cor. 3.2 leaves behind) are certified as zero columns instead.

    >>> W = np.array([[1.0, 1e-6], [0.0, 0.0]])
    >>> below_resolution(W, W, tied=True).tolist()
    [False, True]
    """
    W1, W2 = weights_pair(W1, W2)
    tied = flag("tied", tied)
    hvp_step = nonnegative("hvp_step", hvp_step)
    size = float(np.sqrt(np.sum(W1 * W1) + (0.0 if tied else np.sum(W2 * W2))))
    step = hvp_step * max(size, 1.0)
    return column_sizes(W1, W2) <= FD_RESOLUTION * step


# ----------------------------------------------------------------------------- certify


@dataclass(frozen=True)
class _Options:
    gtol: float
    n_eigs: int
    rel_eig_tol: float
    eig_tol: float | None
    zero_tol: float
    ratio_tol: float
    blocks: object
    dense_max: int
    hvp_step: float
    lanczos_tol: float
    check_zero_columns: bool
    hessp: object = None


def certify(W1, W2, X, sigma, lam, *, tied=None, gtol=1e-6, n_eigs=2, rel_eig_tol=1e-6,
            eig_tol=None, zero_tol=ZERO_TOL, ratio_tol=1e-5, blocks="auto", dense_max=1200,
            hvp_step=HVP_STEP, lanczos_tol=1e-8, seed=0, check_zero_columns=True,
            reduce=True, progress=None, hessp=None) -> CertifyReport:
    """Gradient, smallest Hessian eigenvalues modulo symmetries, and a verdict (module docstring).

    ``W1, W2`` (d, p), ``X`` (d, n) with samples as columns; ``tied=None`` detects tied
    weights (``W1`` and ``W2`` equal), in which case derivatives are taken w.r.t. the single
    W. Columns with ``max(‖w1_j‖, ‖w2_j‖) ≤ zero_tol·max`` are set exactly to zero first
    (they are `zero_columns`). ``blocks``: ``"auto"`` (`activation_blocks`), a list of
    column-index arrays, or ``None`` to remove no rotations. ``n_eigs`` smallest eigenvalues
    are returned (2 by default: the verdict needs the smallest, the second shows the gap;
    each further, often clustered, eigenvalue costs Lanczos many more Hessian-vector
    products). Columns shorter than `FD_RESOLUTION` difference steps are zero columns too
    (`below_resolution`; the report's notes list them). ``reduce=True`` computes
    everything in the invariant subspace of `numerics.geometry.invariant_basis` (data
    span, the weights, one more direction) when it is smaller than d: eq. (6) is
    invariant under rotations fixing the data, so the Hessian splits into that subspace and
    ``I ⊗ K`` on the rest, K being seen by the extra direction — the eigenvalues (as a set)
    and the verdict are those of the full problem. ``progress``: a bar (tqdm) counting the
    Hessian-vector products of the spectrum stage, the long one; ``None`` (default) shows it
    in notebooks and terminals and hides it under CI (`numerics.checkpoint.progress_enabled`).
    ``hessp``: ``None`` (central differences) or a factory ``(W1, W2, X, sigma, lam, tied) →
    product`` of exact Hessian-vector products, e.g. `numerics.newton.exact_hessp`
    (`numerics.geometry.ExactGradient`).

    >>> import numpy as np
    >>> X = np.array([[2.0, -1.0], [0.0, 1.7]])
    >>> certify(np.zeros((2, 1)), np.zeros((2, 1)), X, 0.1, 0.01).verdict   # W = 0
    'saddle'
    """
    X, W1, W2 = data_and_weights(X, W1, W2)
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    tied = tied_weights(W1, W2, tied)
    options = _Options(gtol=nonnegative("gtol", gtol), n_eigs=positive_int("n_eigs", n_eigs),
                       rel_eig_tol=nonnegative("rel_eig_tol", rel_eig_tol),
                       eig_tol=None if eig_tol is None else nonnegative("eig_tol", eig_tol),
                       zero_tol=nonnegative("zero_tol", zero_tol), ratio_tol=nonnegative("ratio_tol", ratio_tol),
                       blocks=blocks, dense_max=positive_int("dense_max", dense_max, minimum=0),
                       hvp_step=nonnegative("hvp_step", hvp_step), lanczos_tol=nonnegative("lanczos_tol", lanczos_tol),
                       check_zero_columns=flag("check_zero_columns", check_zero_columns),
                       hessp=_product_factory(hessp))
    rng = as_rng("seed", seed)
    progress = optional_flag("progress", progress)
    d = X.shape[0]
    basis = invariant_basis(X, W1, None if tied else W2, extra=1) if flag("reduce", reduce) else None
    if basis is not None and basis.shape[1] >= d:
        basis = None
    if basis is not None:
        V1 = basis.T @ W1
        args = (V1, V1 if tied else basis.T @ W2, basis.T @ X)
    else:
        args = (W1, W2, X)
    # delay: a bar appears only once the call has run for 2 s, so quick certificates stay silent
    with progress_bar(progress, desc="certify", unit="Hv", mininterval=1.0, delay=2.0) as bar:
        report = _certify(*args, sigma, lam, tied, options, rng, bar)
    if basis is not None:
        report.n_params = d * W1.shape[1] * (1 if tied else 2)
        report.notes.append(f"computed in a {basis.shape[1]}-dimensional invariant subspace "
                            f"(data span + weights + one complement direction; exact by the "
                            f"O(d) symmetry of eq. (6)), out of d = {d}")
        for name in ("descent", "lowest_mode"):
            if getattr(report, name) is not None:
                D1, D2 = getattr(report, name)
                setattr(report, name, (basis @ D1, basis @ D1 if tied else basis @ D2))
    return report


def _product_factory(hessp):
    if hessp is not None and not callable(hessp):
        raise TypeError("hessp must be None or a callable (W1, W2, X, sigma, lam, tied) -> product, e.g. "
                        f"numerics.newton.exact_hessp; got {type(hessp).__name__}")
    return hessp


def _certify(W1, W2, X, sigma, lam, tied, options: _Options, rng, bar) -> CertifyReport:
    """The four stages of `certify` on (possibly reduced) checked inputs."""
    started = time.perf_counter()
    point = _point(W1, W2, X, sigma, lam, tied, options)
    base = dict(loss=point.loss, grad_norm=point.grad_norm, rel_grad_norm=point.rel, n_params=point.n_params,
                zero_columns=np.flatnonzero(point.zero), blocks=point.blocks, notes=point.notes)
    if point.rel > options.gtol:
        nan = float("nan")
        return CertifyReport(verdict="not a critical point", eigenvalues=np.array([]), lambda_max=nan,
                             eig_tol=nan, n_reduced=0, n_symmetry=0, symmetries=point.symmetries,
                             zero_column_ratio=nan, zero_column_gain=nan, zero_column_bound=nan,
                             symmetry_curvature=nan, method="none", n_hvp=0,
                             wall_time=time.perf_counter() - started, **base)
    zero = _zero_column_stage(point, X, sigma, lam, tied, options, rng)
    spectrum = _spectrum(point, X, sigma, lam, tied, options, rng, bar)
    verdict = _verdict(point, zero, spectrum, X, sigma, lam, tied, options)
    d = W1.shape[0]
    return CertifyReport(
        verdict=verdict.verdict, eigenvalues=np.asarray(spectrum.eigenvalues), lambda_max=spectrum.lambda_max,
        eig_tol=verdict.eig_tol, n_reduced=int(point.live.sum()) * d * (1 if tied else 2),
        n_symmetry=int(spectrum.n_symmetry), symmetries=point.symmetries, zero_column_ratio=zero.ratio,
        zero_column_gain=zero.gain, zero_column_bound=zero.bound, symmetry_curvature=spectrum.symmetry_curvature,
        zero_column_tol=options.ratio_tol + point.ratio_offset,
        method=spectrum.method, n_hvp=spectrum.n_hvp + zero.evaluations, wall_time=time.perf_counter() - started,
        descent=verdict.descent, descent_decrease=verdict.decrease, descent_step=verdict.step,
        lowest_mode=spectrum.lowest_mode, **base)


# ----------------------------------------------------------------------------- stage 1: the point


@dataclass
class _Point:
    W1: np.ndarray
    W2: np.ndarray
    zero: np.ndarray
    live: np.ndarray
    loss: float
    grad_norm: float
    rel: float
    n_params: int
    blocks: list
    reduced_blocks: list
    family: str
    symmetries: list
    notes: list
    ratio_offset: float = 0.0


def _point(W1, W2, X, sigma, lam, tied, options: _Options) -> _Point:
    """Zero columns (and too-short ones) set exactly to zero, the gradient test, the activation blocks."""
    notes = []
    zero = zero_columns(W1, W2, options.zero_tol)
    unresolved = below_resolution(W1, W2, tied, options.hvp_step) & ~zero
    if unresolved.any():
        notes.append(f"{int(unresolved.sum())} columns shorter than {FD_RESOLUTION:g} finite-difference "
                     f"steps (norms {np.array2string(column_sizes(W1, W2)[unresolved], precision=1)}) "
                     "treated as zero columns")
        zero |= unresolved
    W1 = np.where(zero[None, :], 0.0, W1)
    W2 = W1 if tied else np.where(zero[None, :], 0.0, W2)
    live = ~zero
    loss, g1, g2 = expected_loss_and_grad(W1, W2, X, sigma, lam)
    grad = (g1 + g2) if tied else np.concatenate([g1.ravel(), g2.ravel()])
    grad_norm = float(np.linalg.norm(grad))
    d, p = W1.shape
    blocks = _blocks(options.blocks, W1, X, zero)
    live_index = -np.ones(p, dtype=int)
    live_index[live] = np.arange(int(live.sum()))
    symmetries = [f"{int(zero.sum())} zero columns (tested separately)"] if zero.any() else []
    return _Point(W1=W1, W2=W2, zero=zero, live=live, loss=float(loss), grad_norm=grad_norm,
                  rel=grad_norm / loss_scale(X), n_params=d * p * (1 if tied else 2), blocks=blocks,
                  reduced_blocks=[live_index[b] for b in blocks],
                  family="general-linear" if (not tied and lam == 0.0) else "rotation",
                  symmetries=symmetries, notes=notes, ratio_offset=_splitting_ratio_error(W1, g1, g2, live, lam, tied))


def _splitting_ratio_error(W1, g1, g2, live, lam, tied) -> float:
    """Largest ``‖g_j‖/(2λ‖w1_j‖)`` over live columns.

    Along a live column the zero-column ratio is 1 at an exact critical point (splitting is
    free); at a point that is critical only up to its gradient g it is off by that much
    (positive homogeneity), which therefore widens the ratio's tolerance. 0 when λ = 0.
    """
    columns = np.flatnonzero(live)
    if not columns.size or lam == 0:
        return 0.0
    grads = (g1 + g2) if tied else g2
    sizes = np.linalg.norm(W1[:, columns], axis=0)
    return float(np.max(np.linalg.norm(grads[:, columns], axis=0) / (2.0 * lam * np.maximum(sizes, 1e-300))))


def _blocks(blocks, W1, X, zero) -> list:
    if isinstance(blocks, str):
        if blocks != "auto":
            raise ValueError(f"blocks must be 'auto', None or a list of column-index arrays; got {blocks!r}")
        return activation_blocks(W1, X, ~zero)
    if blocks is None:
        return [np.array([j]) for j in np.flatnonzero(~zero)]
    block_list = [np.asarray(b, dtype=int) for b in blocks]
    if any(zero[b].any() for b in block_list):
        raise ValueError("blocks must not contain zero columns")
    return block_list


# ----------------------------------------------------------------------------- stage 2: zero columns


@dataclass
class _ZeroStage:
    ratio: float = float("nan")
    gain: float = float("nan")
    bound: float = float("nan")
    descent: tuple | None = None
    evaluations: int = 0


def _zero_column_stage(point: _Point, X, sigma, lam, tied, options: _Options, rng) -> _ZeroStage:
    """`numerics.zero_column` at the first zero column; a descent direction if a new neuron helps."""
    if not (point.zero.any() and options.check_zero_columns):
        return _ZeroStage()
    W1, W2 = point.W1, point.W2
    found = zero_column_ratio(W1, W2, X, sigma, lam, tied=tied, zero=point.zero, rng=rng)
    stage = _ZeroStage(evaluations=found.evaluations)
    if lam > 0:
        stage.ratio = found.value
        stage.bound = zero_column_bound(W1, W2, X, sigma, lam)
    else:
        stage.gain = found.value
    tolerance = options.ratio_tol + point.ratio_offset
    unstable = (found.value > 1.0 + tolerance) if lam > 0 else (found.value > options.gtol * loss_scale(X))
    if unstable:
        D1 = np.zeros_like(W1)
        D2 = np.zeros_like(W2)
        D1[:, found.column] = found.a
        D2[:, found.column] = found.b
        stage.descent = (D1, D1 if tied else D2)
    return stage


# ----------------------------------------------------------------------------- stage 3: spectrum


def _spectrum(point: _Point, X, sigma, lam, tied, options: _Options, rng, bar) -> Spectrum:
    """Smallest eigenvalues of the Hessian on the live coordinates, modulo the symmetry directions."""
    if not point.live.any():
        return Spectrum()
    live = point.live
    packing = Packing(point.W1.shape[0], point.W1.shape[1], tied, live=live)
    gradient = ExactGradient(X, sigma, lam, packing, hessp=options.hessp)
    theta = packing.pack(point.W1, point.W2)
    projector = SymmetryProjector(point.W1[:, live], point.W2[:, live], point.reduced_blocks, tied=tied,
                                  family=point.family)
    if projector.blocks:
        if point.family == "general-linear":
            point.symmetries.append("W1 → W1 M^{-T}, W2 → W2 M inside each activation block "
                                    "(includes column rescaling; λ = 0, untied)")
        else:
            sizes = sorted((len(b) for b in projector.blocks), reverse=True)
            point.symmetries.append(f"rotations inside activation blocks of sizes {sizes}")

    def hvp(v):
        bar.update(1)
        return gradient.hvp(theta, v, options.hvp_step)

    with difference_range():
        if theta.size <= options.dense_max:
            spectrum = dense_spectrum(hvp, projector, theta.size, options.n_eigs, rng)
        else:
            spectrum = lanczos_spectrum(hvp, projector, theta.size, options.n_eigs, options.lanczos_tol, rng)
    if np.isfinite(spectrum.symmetry_curvature) and spectrum.lambda_max > 0:
        spectrum.symmetry_curvature /= spectrum.lambda_max
    if spectrum.n_symmetry and np.isfinite(spectrum.symmetry_curvature) and spectrum.symmetry_curvature > 1e-3:
        point.notes.append(f"removed symmetry directions have curvature up to {spectrum.symmetry_curvature:.2e}"
                           "·λ_max: they are not flat here (blocks may not be in the linear regime)")
    if spectrum.lowest_mode is not None:
        spectrum.lowest_mode = packing.unpack(spectrum.lowest_mode)
    spectrum.n_hvp = gradient.n_hvp
    return spectrum


# ----------------------------------------------------------------------------- stage 4: verdict


@dataclass
class _Verdict:
    verdict: str
    eig_tol: float
    descent: tuple | None = None
    decrease: float = 0.0
    step: float = 0.0


def _verdict(point: _Point, zero: _ZeroStage, spectrum: Spectrum, X, sigma, lam, tied,
             options: _Options) -> _Verdict:
    """Saddle (with a descent direction checked on the loss), strict or degenerate minimum."""
    eigenvalues, lambda_max = spectrum.eigenvalues, spectrum.lambda_max
    scale_eig = max(abs(lambda_max), abs(eigenvalues[0]) if eigenvalues.size else 0.0, 1e-300) \
        if np.isfinite(lambda_max) else 1.0
    tol = float(options.eig_tol) if options.eig_tol is not None else options.rel_eig_tol * scale_eig
    min_eig = float(eigenvalues[0]) if eigenvalues.size else np.inf
    has_zero, checked = bool(point.zero.any()), options.check_zero_columns
    zero_unstable = zero.descent is not None
    zero_ok = True
    if has_zero and checked and lam > 0 and not zero_unstable:
        zero_ok = zero.ratio <= 1.0 + options.ratio_tol + point.ratio_offset
    if has_zero and checked and lam == 0 and not zero_unstable:
        zero_ok = False
        point.notes.append("λ = 0: zero columns have zero curvature in some directions (degenerate)")
    if has_zero and not checked:
        zero_ok = False
    if min_eig < -tol or zero_unstable:
        out = _Verdict("saddle", tol)
        candidates = [zero.descent] if zero_unstable else []
        if min_eig < -tol and spectrum.lowest_mode is not None:
            candidates.append(spectrum.lowest_mode)
        out.descent, out.decrease, out.step = _confirm_descent(point.W1, point.W2, X, sigma, lam, tied,
                                                               candidates, point.loss)
        if out.descent is None:
            point.notes.append("no loss decrease above rounding found along the descent direction at "
                               "the tried step sizes; the negative curvature is below what the loss "
                               "resolves")
    elif min_eig > tol and zero_ok:
        out = _Verdict("strict local minimum", tol)
    else:
        out = _Verdict("degenerate minimum", tol)
    if has_zero and lam > 0 and np.isfinite(zero.ratio) and \
            abs(zero.ratio - 1.0) <= options.ratio_tol + point.ratio_offset:
        point.notes.append("zero-column ratio = 1: splitting a live column is a flat direction "
                           "(the non-unique sparse solutions of Cor. 3.2)")
    return out


def _confirm_descent(W1, W2, X, sigma, lam, tied, candidates, loss):
    """Largest loss decrease along ±t·direction over a geometric range of t.

    Returns ``(direction, decrease, t)``; decreases below the loss's rounding floor
    ``(n + d)·ε·|L|`` (the bound for summing n + d non-negative terms in floating point)
    do not count, so ``(None, 0.0, 0.0)`` means no decrease was resolved.
    """
    floor = (X.shape[1] + X.shape[0]) * np.finfo(float).eps * abs(loss)
    best = (None, floor, 0.0)
    size = max(float(np.linalg.norm(W1)), float(np.linalg.norm(W2)), 1.0)
    for D1, D2 in candidates:
        norm = float(np.sqrt(np.sum(D1 * D1) + (0.0 if tied else np.sum(D2 * D2))))
        if norm == 0:
            continue
        for t in size * np.logspace(-6, -1, 11) / norm:
            for sign in (1.0, -1.0):
                A1 = W1 + sign * t * D1
                A2 = A1 if tied else W2 + sign * t * D2
                try:
                    drop = loss - expected_loss(A1, A2, X, sigma, lam)
                except MagnitudeError:          # this step leaves the float64 range: no decrease here
                    continue
                if drop > best[1]:
                    best = ((sign * D1, sign * D2), float(drop), float(t))
    return best if best[0] is not None else (None, 0.0, 0.0)
