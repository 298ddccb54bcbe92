"""The authors' multi-noise ReLU DAE: tied weights, per-noise gains, a scalar skip.

Their diffusion extension (``DAECond`` in the paper's public notebooks) conditions the ReLU-DAE
of eq. (5) on the noise level σ multiplicatively and predicts x₀:

``x̂₀ = W (g(σ) ⊙ [Wᵀ x_t]_+) + s x_t``,  ``g(σ) = exp(A2 [A1 log σ + b1]_+ + b2)``,

with W (d, p) the tied encoder/decoder, the gain network an MLP 1 → p → p (``A1, b1`` of
``Linear(1, p)``, ``A2, b2`` of ``Linear(p, p)``, the latter zero-initialised so g = 1 at the
start) and s a learnable scalar (initialised to 0). At one σ the model is the untied eq. (5)
network with ``W1 = W``, ``W2 = W diag(g(σ))`` plus the skip ``s x_t`` (`effective_weights`);
``rep`` is the representation ``[Wᵀ x_t]_+`` without the gain, as the authors' ``rep()``.

Because g is a ReLU network of ``log σ``, it is piecewise ``exp``-affine in ``log σ`` with kinks
where a first-layer unit's pre-activation ``A1_k log σ + b1_k`` crosses zero (`kinks`).

>>> model = MultiNoiseDAE.initial(d=6, p=4, seed=0)
>>> Y = np.random.default_rng(1).normal(size=(6, 3))
>>> model(Y, 0.5).shape, model.gains(0.5).tolist() == [1.0] * 4      # g = 1 at initialisation
((6, 3), True)
>>> theta = model.pack()
>>> theta.shape, np.array_equal(MultiNoiseDAE.unpack(theta, 6, 4).W, model.W)
((53,), True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numerics.validation import as_matrix, as_vector, positive_int

# Field order = `pack` order = the authors' ``model.parameters()`` order (encoder, skip, MLP).
FIELDS = ("W", "s", "A1", "b1", "A2", "b2")


def _log_sigma(sigma) -> np.ndarray:
    """``log σ`` for σ > 0 (a float or a 1-D array), raising ``ValueError`` otherwise."""
    array = np.asarray(sigma, dtype=np.float64)
    if array.ndim > 1:
        raise ValueError(f"sigma must be a number or a 1-D array (one σ per column); got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"sigma (σ) must be finite and > 0 (the gain network reads log σ); got {sigma!r}")
    return np.log(array)


@dataclass(eq=False)
class MultiNoiseDAE:
    """Parameters of the multi-noise ReLU DAE (module docstring); calling it denoises.

    ``W`` (d, p); ``s`` the skip (a float); ``A1, b1`` (p,) the first gain layer
    (``Linear(1, p)``: its weight column and bias); ``A2`` (p, p), ``b2`` (p,) the second.
    The same class holds gradients (`numerics.multinoise_objective`), field for field.
    """

    W: np.ndarray
    s: float
    A1: np.ndarray
    b1: np.ndarray
    A2: np.ndarray
    b2: np.ndarray

    def __post_init__(self):
        self.W = as_matrix("W", self.W, cols_name="p")
        p = self.W.shape[1]
        if p < 1:
            raise ValueError(f"W must have at least one column (p >= 1); got shape {self.W.shape}")
        self.A1 = as_vector("A1", self.A1, length=p)
        self.b1 = as_vector("b1", self.b1, length=p)
        self.A2 = as_matrix("A2", self.A2, rows=p, cols=p, rows_name="p", cols_name="p")
        self.b2 = as_vector("b2", self.b2, length=p)
        s = np.asarray(self.s, dtype=np.float64)
        if s.size != 1 or not np.isfinite(s).all():
            raise ValueError(f"s (the skip) must be one finite number; got {self.s!r}")
        self.s = float(s.reshape(()))

    # ------------------------------------------------------------------ construction

    @classmethod
    def initial(cls, d, p, seed=0) -> "MultiNoiseDAE":
        """The authors' initialisation (``DAECond.__init__``), reproduced without torch.

        Encoder: ``kaiming_uniform_(a=0, mode="fan_in", nonlinearity="relu")``, entries
        U(−√(6/d), √(6/d)); ``Linear(1, p)``: PyTorch's default, weight and bias U(−1, 1)
        (fan-in 1); ``Linear(p, p)`` and the skip: zero. Same seed, same parameters.
        """
        d, p = positive_int("d", d), positive_int("p", p)
        rng = np.random.default_rng(seed)
        W = rng.uniform(-1.0, 1.0, size=(d, p)) * np.sqrt(6.0 / d)
        A1 = rng.uniform(-1.0, 1.0, size=p)
        b1 = rng.uniform(-1.0, 1.0, size=p)
        return cls(W=W, s=0.0, A1=A1, b1=b1, A2=np.zeros((p, p)), b2=np.zeros(p))

    @classmethod
    def zeros_like(cls, other: "MultiNoiseDAE") -> "MultiNoiseDAE":
        return cls(W=np.zeros_like(other.W), s=0.0, A1=np.zeros(other.p), b1=np.zeros(other.p),
                   A2=np.zeros((other.p, other.p)), b2=np.zeros(other.p))

    @property
    def d(self) -> int:
        return self.W.shape[0]

    @property
    def p(self) -> int:
        return self.W.shape[1]

    @property
    def size(self) -> int:
        """Number of scalar parameters: ``d·p + 1 + p + p + p² + p``."""
        return self.d * self.p + 1 + 3 * self.p + self.p * self.p

    def copy(self) -> "MultiNoiseDAE":
        return MultiNoiseDAE(self.W.copy(), self.s, self.A1.copy(), self.b1.copy(), self.A2.copy(),
                             self.b2.copy())

    def pack(self) -> np.ndarray:
        """All parameters as one float64 vector, in the order of `FIELDS`."""
        return np.concatenate([self.W.ravel(), [self.s], self.A1, self.b1, self.A2.ravel(), self.b2])

    @classmethod
    def unpack(cls, theta, d, p) -> "MultiNoiseDAE":
        """Inverse of `pack` for a model with W of shape (d, p)."""
        d, p = positive_int("d", d), positive_int("p", p)
        theta = as_vector("theta", theta, length=d * p + 1 + 3 * p + p * p)
        W, rest = theta[:d * p].reshape(d, p), theta[d * p:]
        return cls(W=W.copy(), s=float(rest[0]), A1=rest[1:1 + p].copy(), b1=rest[1 + p:1 + 2 * p].copy(),
                   A2=rest[1 + 2 * p:1 + 2 * p + p * p].reshape(p, p).copy(), b2=rest[1 + 2 * p + p * p:].copy())

    def squared_norm(self) -> float:
        """``‖θ‖² = ‖W‖² + s² + ‖A1‖² + ‖b1‖² + ‖A2‖² + ‖b2‖²`` (what PyTorch's weight decay penalises)."""
        return float(self.pack() @ self.pack())

    # ------------------------------------------------------------------ the gain network

    def gain_layers(self, log_sigma):
        """First-layer pre-activations ``A1 u + b1``, hidden ``[·]_+`` and log-gains, each (p, m)."""
        u = np.atleast_1d(np.asarray(log_sigma, dtype=np.float64))
        pre = self.A1[:, None] * u[None, :] + self.b1[:, None]
        hidden = np.maximum(pre, 0.0)
        return pre, hidden, self.A2 @ hidden + self.b2[:, None]

    def gains(self, sigma) -> np.ndarray:
        """``g(σ) = exp(A2 [A1 log σ + b1]_+ + b2)``: shape (p,) for a number σ, (p, m) for m values."""
        u = _log_sigma(sigma)
        g = np.exp(self.gain_layers(u)[2])
        return g[:, 0] if u.ndim == 0 else g

    def kinks(self, u_min: float, u_max: float) -> np.ndarray:
        """Sorted ``log σ`` in (u_min, u_max) where g is not smooth.

        A first-layer unit k switches at ``u = −b1_k/A1_k``; it changes the gains only if its
        outgoing weights ``A2[:, k]`` are not all zero.
        """
        used = (self.A1 != 0.0) & np.any(self.A2 != 0.0, axis=0)
        points = -self.b1[used] / self.A1[used]
        return np.unique(points[(points > u_min) & (points < u_max)])

    # ------------------------------------------------------------------ the denoiser

    def rep(self, Y) -> np.ndarray:
        """The representation ``[Wᵀ Y]_+`` (p, m), without the gain (the authors' ``rep()``)."""
        Y = as_matrix("Y", Y, rows=self.d, cols_name="m")
        return np.maximum(self.W.T @ Y, 0.0)

    def denoise(self, Y, sigma) -> np.ndarray:
        """``X̂₀ = W (g(σ) ⊙ [WᵀY]_+) + s Y`` for columns Y (d, m); σ a number or one per column."""
        Y = as_matrix("Y", Y, rows=self.d, cols_name="m")
        u = _log_sigma(sigma)
        if u.ndim == 1 and u.shape[0] != Y.shape[1]:
            raise ValueError(f"sigma must be a number or have one entry per column of Y ({Y.shape[1]}); "
                             f"got {u.shape[0]}")
        g = np.exp(self.gain_layers(u)[2])                     # (p, 1) or (p, m)
        return self.W @ (g * np.maximum(self.W.T @ Y, 0.0)) + self.s * Y

    __call__ = denoise

    def effective_weights(self, sigma: float):
        """The single-σ network at σ: ``(W1, W2, s) = (W, W diag(g(σ)), s)`` (eq. (5) plus the skip)."""
        if np.ndim(sigma) != 0:
            raise ValueError(f"sigma must be one number; got shape {np.shape(sigma)}")
        return self.W, self.W * self.gains(sigma), self.s
