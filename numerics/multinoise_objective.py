"""The multi-noise training loss, exactly: Gauss–Legendre in log σ of the exact single-σ loss.

The authors train `numerics.multinoise.MultiNoiseDAE` with ``log σ ~ U[log σ_min, log σ_max]``,
one noise draw per sample, ``MSELoss`` and PyTorch ``weight_decay``. Its expectation is

``L(θ) = E_{u∼U[u_min, u_max]} D(θ, e^u) + λ‖θ‖²``,
``D(θ, σ) = (1/n) Σ_i E_ε ‖W(g ⊙ [Wᵀy_i]_+) + s y_i − x_i‖²``,  ``y_i = x_i + σε``,

with ``‖θ‖²`` the squared norm of every parameter (`MultiNoiseDAE.squared_norm`).

**The single-σ loss with gains and skip** (derived here; ``theory/multinoise.py``). With
``W1 = W``, ``W2 = W diag(g)``, ``F = W2 [W1ᵀy]_+`` and ``a_j = w_jᵀy ~ N(w_jᵀx, σ²‖w_j‖²)``:

``E‖F + s y − x‖² = E‖F − x‖² + 2s (Σ_j g_j E[(a_j)_+²] − ‖x‖²) + s² (‖x‖² + σ² d)``,

because ``Fᵀy = Σ_j g_j (a_j)_+ a_j = Σ_j g_j (a_j)_+²``, ``E[xᵀy] = ‖x‖²`` and
``E‖y‖² = ‖x‖² + σ²d``. The first term and its gradient are `numerics.objective`'s exact
eq. (6) at ``(W1, W2)``; ``E[(a)_+²]`` is the rectified second moment of `numerics.gaussian`,
with ``∂/∂m = 2E[a_+]`` and ``∂/∂(s²) = Φ(m/s)`` (Price's theorem).

**The weight decay** (derived here). On a batch of B samples PyTorch's ``MSELoss`` is
``ℓ = (1/(dB)) Σ_b ‖x̂₀(y_b, σ_b) − x_b‖²``, so ``E ℓ = (1/d) E_u D``, and ``weight_decay = wd``
adds ``wd·θ`` to every parameter's gradient. The step direction is therefore
``∇ℓ + wd·θ = (1/d) ∇[E_u D + (d·wd/2)‖θ‖²]``: **λ = d·wd/2** on ``‖θ‖²``
(`decay_from_weight_decay`). W is one parameter here; eq. (6) for tied weights charges
``λ₆(‖W1‖² + ‖W2‖²) = 2λ₆‖W‖²``, so on W this is eq. (6)'s ``λ₆ = λ/2 = d·wd/4``
(`numerics.protocol.lambda_from_weight_decay` with ``tied=True``).

**Quadrature.** D is analytic in ``u = log σ`` except where g has kinks (`MultiNoiseDAE.kinks`),
so [u_min, u_max] is split there and each piece gets a Gauss–Legendre rule
(`scipy.special.roots_legendre`): the error decays exponentially in the number of nodes.
`adaptive_rule` doubles each piece's nodes until the piece agrees with twice its nodes to its
share of ``rtol`` (default `DEFAULT_RTOL`) relative; the differences sum to the reported
error estimate.

>>> import numpy as np
>>> from numerics.multinoise import MultiNoiseDAE
>>> X = np.random.default_rng(0).normal(size=(5, 4))
>>> model = MultiNoiseDAE.initial(5, 3, seed=1)
>>> loss, grad = multinoise_loss_and_grad(model, X, 0.02, 2.0, lam=0.1)
>>> grad.W.shape, bool(loss > 0)
((5, 3), True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, roots_legendre

from numerics.gaussian import relu_mean, relu_second_moment
from numerics.multinoise import MultiNoiseDAE
from numerics.objective import expected_loss, expected_loss_and_grad
from numerics.validation import as_matrix, nonnegative, positive, positive_int

DEFAULT_RTOL = 1e-10    # relative quadrature error of `adaptive_rule`, below the 1e-8 required
SIGMA_RANGE = (0.02, 2.0)  # the authors' σ range


def decay_from_weight_decay(weight_decay, d) -> float:
    """λ on ``‖θ‖²`` equivalent to PyTorch ``weight_decay`` with ``MSELoss``: ``d·wd/2`` (module docstring).

    >>> decay_from_weight_decay(1e-2, d=1024)
    5.12
    """
    return positive_int("d", d) * nonnegative("weight_decay", weight_decay) / 2.0


def weight_decay_from_decay(lam, d) -> float:
    """Inverse of `decay_from_weight_decay`."""
    return 2.0 * nonnegative("lam", lam, symbol="λ") / positive_int("d", d)


def _sigma_range(sigma_min, sigma_max):
    sigma_min = positive("sigma_min", sigma_min)
    sigma_max = positive("sigma_max", sigma_max)
    if sigma_max < sigma_min:
        raise ValueError(f"sigma_max must be >= sigma_min; got {sigma_max!r} < {sigma_min!r}")
    return sigma_min, sigma_max


# ----------------------------------------------------------------------------- one noise level


@dataclass
class NoiseLevelTerms:
    """D(θ, σ) at one σ and its partial derivatives w.r.t. W, the gains g (p,) and s."""

    value: float
    grad_W: np.ndarray | None = None
    grad_g: np.ndarray | None = None
    grad_s: float = 0.0


def rectified_energy(W, X, sigma, need_grad=False):
    """``M2_j = (1/n) Σ_i E[(w_jᵀ(x_i + σε))_+²]`` (p,) and, if asked, ``∂M2_j/∂w_j`` (d, p).

    ``∂E[a_+²]/∂m = 2E[a_+]`` and ``∂E[a_+²]/∂(s²) = Φ(m/s)`` with ``m = w_jᵀx``,
    ``s² = σ²‖w_j‖²`` give ``∂M2_j/∂w_j = (2/n) Σ_i (E[a_ij+] x_i + σ² Φ(z_ij) w_j)``.
    """
    n = X.shape[1]
    means = W.T @ X                                          # (p, n)
    scales = np.broadcast_to((sigma * np.linalg.norm(W, axis=0))[:, None], means.shape)
    energy = relu_second_moment(means, scales).mean(axis=1)
    if not need_grad:
        return energy, None
    with np.errstate(divide="ignore", invalid="ignore"):
        on = np.where(scales > 0.0, ndtr(means / scales), (means > 0.0).astype(float))
    grad = (2.0 / n) * (X @ relu_mean(means, scales).T) + 2.0 * sigma**2 * W * on.mean(axis=1)
    return energy, grad


def noise_level_terms(W, g, s, X, sigma, *, noise_dim=None, need_grad=True) -> NoiseLevelTerms:
    """``D = E‖W diag(g)[Wᵀy]_+ − x‖² + 2s(g·M2 − ‖x‖²) + s²(‖x‖² + σ²·noise_dim)``, averaged over samples.

    ``noise_dim`` is the dimension of the noise (d by default; larger when X and W are
    coordinates in a subspace that holds both, the rest of the noise only reaching the skip).
    """
    d, n = X.shape
    noise_dim = d if noise_dim is None else noise_dim
    energy_x = float(np.sum(X * X)) / n
    W2 = W * g
    energy, energy_grad = rectified_energy(W, X, sigma, need_grad)
    cross = float(g @ energy) - energy_x
    noisy = energy_x + sigma**2 * noise_dim
    if not need_grad:
        value = expected_loss(W, W2, X, sigma, 0.0, pair_method="auto")
        return NoiseLevelTerms(value + 2.0 * s * cross + s * s * noisy)
    value, gW1, gW2 = expected_loss_and_grad(W, W2, X, sigma, 0.0)
    grad_W = gW1 + gW2 * g + 2.0 * s * energy_grad * g
    grad_g = np.sum(W * gW2, axis=0) + 2.0 * s * energy
    return NoiseLevelTerms(value + 2.0 * s * cross + s * s * noisy, grad_W, grad_g,
                           2.0 * cross + 2.0 * s * noisy)


# ----------------------------------------------------------------------------- quadrature in log σ


@dataclass(frozen=True)
class QuadratureRule:
    """Nodes ``u = log σ`` and weights (summing to 1: the uniform density on [u_min, u_max]).

    ``breakpoints`` are the piece boundaries (ends and kinks of g), ``counts`` the nodes per
    piece; ``error_estimate`` (absolute, on the data term) and ``value`` are set by
    `adaptive_rule`. A rule that ``follows_kinks`` is re-placed on the kinks of the model it
    is applied to (`placed`), keeping its node counts, so that it stays exponentially accurate
    and smooth in θ while the kinks move; otherwise its nodes are used as they are.
    """

    nodes: np.ndarray
    weights: np.ndarray
    breakpoints: np.ndarray
    counts: tuple
    density: float
    min_nodes: int
    error_estimate: float = float("nan")
    value: float = float("nan")
    follows_kinks: bool = True

    @property
    def size(self) -> int:
        return int(self.nodes.size)

    @property
    def relative_error(self) -> float:
        return abs(self.error_estimate) / max(abs(self.value), 1e-300)

    def placed(self, model: MultiNoiseDAE) -> "QuadratureRule":
        """This rule on the model's kinks: the same counts per piece when the number of pieces
        is unchanged, else a composite rule with the rule's mean density and its starting
        minimum per piece (accurate in practice; `adaptive_rule` at the new point is the
        checked one)."""
        if not self.follows_kinks or self.size == 1:
            return self
        u_min, u_max = float(self.breakpoints[0]), float(self.breakpoints[-1])
        kinks = model.kinks(u_min, u_max)
        counts = self.counts if kinks.size + 1 == len(self.counts) else None
        if counts is not None and np.array_equal(kinks, self.breakpoints[1:-1]):
            return self
        return _composite(u_min, u_max, kinks, self.density, self.min_nodes, counts)


def _composite(u_min, u_max, kinks, density, min_nodes, counts=None) -> QuadratureRule:
    breakpoints = np.concatenate([[u_min], kinks, [u_max]])
    nodes, weights, used = [], [], []
    for piece, (left, right) in enumerate(zip(breakpoints[:-1], breakpoints[1:])):
        count = counts[piece] if counts is not None else max(int(min_nodes), int(math.ceil(density * (right - left))))
        x, w = roots_legendre(count)
        half = 0.5 * (right - left)
        nodes.append(left + half * (x + 1.0))
        weights.append(w * half / (u_max - u_min))
        used.append(count)
    return QuadratureRule(np.concatenate(nodes), np.concatenate(weights), breakpoints, tuple(used),
                          float(density), int(min_nodes))


def quadrature_rule(model: MultiNoiseDAE, sigma_min=SIGMA_RANGE[0], sigma_max=SIGMA_RANGE[1], *,
                    density=8.0, min_nodes=3) -> QuadratureRule:
    """Composite Gauss–Legendre rule in ``log σ``, split at the kinks of the model's gains.

    Each piece of length ℓ gets ``max(min_nodes, ⌈density·ℓ⌉)`` nodes. σ_min = σ_max gives
    the one-node rule at that σ (the single-σ loss).

    >>> from numerics.multinoise import MultiNoiseDAE
    >>> rule = quadrature_rule(MultiNoiseDAE.initial(4, 2, seed=0), 0.02, 2.0)
    >>> round(float(rule.weights.sum()), 12)
    1.0
    """
    sigma_min, sigma_max = _sigma_range(sigma_min, sigma_max)
    u_min, u_max = math.log(sigma_min), math.log(sigma_max)
    if u_max == u_min:
        return QuadratureRule(np.array([u_min]), np.array([1.0]), np.array([u_min, u_max]), (1,), density,
                              min_nodes)
    return _composite(u_min, u_max, model.kinks(u_min, u_max), density, min_nodes)


def _data_value(model, X, rule, noise_dim) -> float:
    rule = rule.placed(model)
    sigmas = np.exp(rule.nodes)
    gains = model.gains(sigmas)
    return float(sum(w * noise_level_terms(model.W, gains[:, k], model.s, X, sigma, noise_dim=noise_dim,
                                           need_grad=False).value
                     for k, (w, sigma) in enumerate(zip(rule.weights, sigmas))))


def _piece_value(model, X, left, right, count, length, noise_dim) -> float:
    """``(1/L)∫_left^right D(θ, e^u) du`` by ``count``-point Gauss–Legendre."""
    x, w = roots_legendre(count)
    half = 0.5 * (right - left)
    sigmas = np.exp(left + half * (x + 1.0))
    gains = model.gains(sigmas)
    return float(sum(weight * half / length * noise_level_terms(model.W, gains[:, k], model.s, X, sigma,
                                                                 noise_dim=noise_dim, need_grad=False).value
                     for k, (weight, sigma) in enumerate(zip(w, sigmas))))


def adaptive_rule(model: MultiNoiseDAE, X, sigma_min=SIGMA_RANGE[0], sigma_max=SIGMA_RANGE[1], *,
                  rtol=DEFAULT_RTOL, density=4.0, min_nodes=3, max_doublings=6, noise_dim=None) -> QuadratureRule:
    """A composite rule on the gains' pieces, each refined until it agrees with twice its nodes.

    Piece k starts with ``max(min_nodes, ⌈density·ℓ_k⌉)`` nodes; while its value differs from
    the rule with twice the nodes by more than its share ``rtol·|Q|·ℓ_k/L`` of the tolerance,
    its count doubles. The rule keeps the last count that passed (Gauss–Legendre converges
    exponentially, so the difference is an estimate of that count's error); ``error_estimate``
    is the sum of the pieces' differences and ``value`` the rule's Q. Raises ``RuntimeError``
    if a piece needs more than ``max_doublings`` doublings.
    """
    X = as_matrix("X", X, rows=model.d, cols_name="n")
    rtol = positive("rtol", rtol)
    start = quadrature_rule(model, sigma_min, sigma_max, density=density, min_nodes=min_nodes)
    if start.size == 1:
        value = _data_value(model, X, start, noise_dim)
        return QuadratureRule(**{**start.__dict__, "error_estimate": 0.0, "value": value})
    ends = start.breakpoints
    length = float(ends[-1] - ends[0])
    counts = list(start.counts)
    coarse = [_piece_value(model, X, a, b, c, length, noise_dim) for a, b, c in zip(ends[:-1], ends[1:], counts)]
    fine = [_piece_value(model, X, a, b, 2 * c, length, noise_dim) for a, b, c in zip(ends[:-1], ends[1:], counts)]
    for _ in range(max_doublings + 1):
        total = abs(sum(fine))
        failing = [k for k in range(len(counts))
                   if abs(fine[k] - coarse[k]) > rtol * total * (ends[k + 1] - ends[k]) / length]
        if not failing:
            rule = _composite(ends[0], ends[-1], ends[1:-1], max(density, sum(counts) / length), min_nodes, counts)
            error = float(sum(abs(f - c) for f, c in zip(fine, coarse)))
            return QuadratureRule(**{**rule.__dict__, "error_estimate": error, "value": float(sum(coarse))})
        for k in failing:
            counts[k] *= 2
            coarse[k] = fine[k]
            fine[k] = _piece_value(model, X, ends[k], ends[k + 1], 2 * counts[k], length, noise_dim)
    worst = max(abs(f - c) for f, c in zip(fine, coarse)) / max(abs(sum(fine)), 1e-300)
    raise RuntimeError(f"quadrature did not reach rtol = {rtol:g} after {max_doublings} doublings "
                       f"(largest piece difference {worst:.2e} relative, {sum(counts)} nodes)")


# ----------------------------------------------------------------------------- the objective


def _checked(model, X, sigma_min, sigma_max, lam):
    if not isinstance(model, MultiNoiseDAE):
        raise TypeError(f"model must be a numerics.multinoise.MultiNoiseDAE; got {type(model).__name__}")
    X = as_matrix("X", X, rows=model.d, cols_name="n")
    if X.shape[1] < 1:
        raise ValueError(f"X must have at least one column (sample); got shape {X.shape}")
    sigma_min, sigma_max = _sigma_range(sigma_min, sigma_max)
    return X, sigma_min, sigma_max, nonnegative("lam", lam, symbol="λ")


def _rule_for(model, X, sigma_min, sigma_max, rule, rtol, noise_dim):
    if rule is None:
        return adaptive_rule(model, X, sigma_min, sigma_max, rtol=rtol, noise_dim=noise_dim)
    if not isinstance(rule, QuadratureRule):
        raise TypeError(f"rule must be a QuadratureRule or None; got {type(rule).__name__}")
    if not np.allclose(rule.breakpoints[[0, -1]], np.log([sigma_min, sigma_max]), rtol=0.0, atol=1e-12):
        raise ValueError(f"rule covers σ in [{math.exp(rule.breakpoints[0]):g}, {math.exp(rule.breakpoints[-1]):g}], "
                         f"not the requested [{sigma_min:g}, {sigma_max:g}]")
    return rule


def multinoise_loss(model, X, sigma_min=SIGMA_RANGE[0], sigma_max=SIGMA_RANGE[1], lam=0.0, *, rule=None,
                    rtol=DEFAULT_RTOL, noise_dim=None) -> float:
    """The exact multi-noise loss ``E_u D(θ, e^u) + λ‖θ‖²`` (module docstring), X (d, n).

    ``rule=None`` builds an `adaptive_rule` at this θ (relative error ≤ ``rtol``); a given
    `QuadratureRule` is used as it is (a fixed function of θ, as in training).
    """
    X, sigma_min, sigma_max, lam = _checked(model, X, sigma_min, sigma_max, lam)
    if rule is None:
        data = adaptive_rule(model, X, sigma_min, sigma_max, rtol=rtol, noise_dim=noise_dim).value
    else:
        data = _data_value(model, X, _rule_for(model, X, sigma_min, sigma_max, rule, rtol, noise_dim), noise_dim)
    return data + lam * model.squared_norm()


def multinoise_loss_and_grad(model, X, sigma_min=SIGMA_RANGE[0], sigma_max=SIGMA_RANGE[1], lam=0.0, *,
                             rule=None, rtol=DEFAULT_RTOL, noise_dim=None):
    """`multinoise_loss` and its gradient w.r.t. every parameter, as a `MultiNoiseDAE` of gradients.

    The gradient is ``Σ_k w_k ∇_θ D(θ, e^{u_k}) + 2λθ`` over the rule's nodes: the gradient of
    the exact integral, evaluated by the rule (for a rule with fixed nodes, ``follows_kinks``
    false, exactly the gradient of the quadrature sum). The gains' derivatives are chained
    through the MLP (ReLU'(0) = 0, as in PyTorch).
    """
    X, sigma_min, sigma_max, lam = _checked(model, X, sigma_min, sigma_max, lam)
    rule = _rule_for(model, X, sigma_min, sigma_max, rule, rtol, noise_dim).placed(model)
    u = rule.nodes
    pre, hidden, log_g = model.gain_layers(u)
    gains = np.exp(log_g)                                          # (p, N)
    value, grad_W, grad_s = 0.0, np.zeros_like(model.W), 0.0
    grad_log_g = np.empty_like(gains)
    for k, (weight, sigma) in enumerate(zip(rule.weights, np.exp(u))):
        terms = noise_level_terms(model.W, gains[:, k], model.s, X, sigma, noise_dim=noise_dim)
        value += weight * terms.value
        grad_W += weight * terms.grad_W
        grad_s += weight * terms.grad_s
        grad_log_g[:, k] = weight * terms.grad_g * gains[:, k]
    grad_hidden = model.A2.T @ grad_log_g
    grad_pre = grad_hidden * (pre > 0.0)
    grad = MultiNoiseDAE(W=grad_W, s=grad_s, A1=grad_pre @ u, b1=grad_pre.sum(axis=1),
                         A2=grad_log_g @ hidden.T, b2=grad_log_g.sum(axis=1))
    if lam:
        grad = MultiNoiseDAE.unpack(grad.pack() + 2.0 * lam * model.pack(), model.d, model.p)
    return value + lam * model.squared_norm(), grad


# ----------------------------------------------------------------------------- Monte Carlo


def multinoise_monte_carlo_loss(model, X, sigma_min=SIGMA_RANGE[0], sigma_max=SIGMA_RANGE[1], lam=0.0, *,
                                n_draws=1000, rng=None):
    """Monte-Carlo estimate of the multi-noise loss: ``(mean, standard_error)``.

    Each of ``n_draws`` rounds draws, per sample, ``log σ ~ U[log σ_min, log σ_max]`` and one
    ε, as the authors' training loop does; the standard error is that of the mean over the
    ``n·n_draws`` independent squared errors (the decay is exact).
    """
    X, sigma_min, sigma_max, lam = _checked(model, X, sigma_min, sigma_max, lam)
    n_draws = positive_int("n_draws", n_draws, minimum=2)
    rng = np.random.default_rng(rng)
    d, n = X.shape
    u_min, u_max = math.log(sigma_min), math.log(sigma_max)
    errors = np.empty((n_draws, n))
    chunk = max(1, 2**20 // (d * n))          # draws per vectorised batch: ≤ 8 MiB of noise
    for first in range(0, n_draws, chunk):
        count = min(chunk, n_draws - first)
        sigma = np.exp(u_min + (u_max - u_min) * rng.random(count * n))
        clean = np.tile(X, count)
        noisy = clean + sigma * rng.standard_normal((d, count * n))
        errors[first:first + count] = np.sum((model(noisy, sigma) - clean) ** 2, axis=0).reshape(count, n)
    standard_error = float(np.sqrt(errors.var(axis=0, ddof=1).sum() / (n * n * n_draws)))
    return float(errors.mean() + lam * model.squared_norm()), standard_error
