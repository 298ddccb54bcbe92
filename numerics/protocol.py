"""The authors' training protocol in NumPy: one noise draw per step, Adam/RMSprop, PyTorch semantics.

The paper's code trains the ReLU-DAE with ``torch.nn.MSELoss`` on ``x + σε`` (a fresh draw
per sample and step), minibatches from a shuffling ``DataLoader``, and ``weight_decay=wd``
in Adam or RMSprop. This module reproduces that loop step for step without torch, so it
can run next to `numerics.solvers.train` on the exact objective eq. (6).

Mapping to eq. (6) (derived here; docs/theory.md §1). On a batch of B samples the torch loss is
``ℓ = (1/(dB)) Σ_b ‖f(x_b + σε_b) − x_b‖²`` (MSELoss averages over the d outputs and the
batch), so ``E ℓ = L_data / d`` with ``L_data`` the data term of eq. (6). PyTorch's
``weight_decay`` (L2, not decoupled, in Adam and RMSprop alike) adds ``wd·θ`` to the
gradient of every parameter tensor θ, i.e. a penalty ``(wd/2)‖θ‖²``. Hence

* untied (θ = W1, W2): ``g = ∇ℓ + wd·θ = (1/d) ∇[L_data + (d·wd/2)(‖W1‖² + ‖W2‖²)]``,
  so **λ = d·wd/2**;
* tied (one parameter W used as encoder and decoder): eq. (6) charges ``λ(‖W‖² + ‖W‖²)``,
  whose gradient ``4λW`` must equal ``d·wd·W``, so **λ = d·wd/4**.

In both cases the step direction is ``(1/d)·∇L_eq6``: plain SGD with learning rate ``lr``
is gradient descent on eq. (6) with learning rate ``lr/d``; Adam and RMSprop are invariant
to a constant positive gradient scale except through ``eps``, so torch's run equals Adam
(RMSprop) on eq. (6) with the same ``lr`` and ``eps_eff = d·eps``. This module keeps the
torch scaling literally (it optimises ``ℓ``), so no such conversion is needed to compare.

>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(8, 5))
>>> run = train_protocol(X, p=4, sigma=0.2, optimizer="rmsprop", lr=1e-3,
...                      weight_decay=1e-2, steps=50, seed=0, exact_loss=False)
>>> run.W1.shape, run.lam == lambda_from_weight_decay(1e-2, d=8, tied=True)
((8, 4), True)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from numerics.checkpoint import fingerprint, load_checkpoint, progress_bar, save_checkpoint
from numerics.initialization import given_weights
from numerics.objective import expected_loss
from numerics.threads import single_thread
from numerics.validation import (as_matrix, as_rng, data_matrix, flag, loss_magnitude, nonnegative,
                                 optional_flag, positive, positive_int, weights_pair)

__all__ = ["lambda_from_weight_decay", "weight_decay_from_lambda", "torch_default_init", "Adam", "RMSprop",
           "make_optimizer", "minibatch_mse_and_grad", "train_protocol", "ProtocolResult"]

# ----------------------------------------------------------------------------- mapping


def lambda_from_weight_decay(weight_decay, d, tied=True) -> float:
    """λ of eq. (6) equivalent to PyTorch ``weight_decay`` with MSELoss: d·wd/2 (untied), d·wd/4 (tied).

    >>> lambda_from_weight_decay(1e-2, d=1024, tied=False)
    5.12
    """
    wd = nonnegative("weight_decay", weight_decay)
    d = positive_int("d", d)
    return d * wd / (4.0 if flag("tied", tied) else 2.0)


def weight_decay_from_lambda(lam, d, tied=True) -> float:
    """Inverse of `lambda_from_weight_decay`.

    >>> weight_decay_from_lambda(lambda_from_weight_decay(0.01, d=8), d=8)    # a round trip
    0.01
    """
    lam = nonnegative("lam", lam, symbol="λ")
    d = positive_int("d", d)
    return lam * (4.0 if flag("tied", tied) else 2.0) / d


def torch_default_init(d, p, *, tied=True, seed=0):
    """``nn.Linear`` default initialisation, as (W1, W2) in this package's (d, p) layout.

    Encoder ``Linear(d, p)``: entries U(−1/√d, 1/√d); decoder ``Linear(p, d)``: U(−1/√p, 1/√p)
    (kaiming_uniform with a = √5). Tied: W2 is W1 (the encoder's weight is reused).
    ``seed`` is an int or a numpy Generator.

    >>> W1, W2 = torch_default_init(8, 4, tied=False, seed=0)
    >>> bool(np.abs(W1).max() <= 8 ** -0.5), bool(np.abs(W2).max() <= 4 ** -0.5)
    (True, True)
    """
    d = positive_int("d", d)
    p = positive_int("p", p)
    tied = flag("tied", tied)
    rng = as_rng("seed", seed)
    W1 = rng.uniform(-1.0, 1.0, size=(d, p)) / np.sqrt(d)
    if tied:
        return W1, W1
    return W1, rng.uniform(-1.0, 1.0, size=(d, p)) / np.sqrt(p)


# ----------------------------------------------------------------------------- optimisers


@dataclass
class _TorchOptimizer:
    """What `Adam` and `RMSprop` share: learning rate, ``eps``, L2 ``weight_decay`` (added to the
    gradient, as torch does), the step count and one pair of state arrays per parameter."""
    lr: float
    eps: float = 1e-8
    weight_decay: float = 0.0
    step_count: int = 0
    state: list = field(default_factory=list)
    STATE = ("a", "b")          # names of the two state arrays in checkpoints

    def __post_init__(self):
        self.lr = positive("lr", self.lr)
        self.eps = nonnegative("eps", self.eps)
        self.weight_decay = nonnegative("weight_decay", self.weight_decay)

    def _start(self, params) -> None:
        if not self.state:
            self.state = [(np.zeros_like(w), np.zeros_like(w)) for w in params]
        self.step_count += 1

    def arrays(self) -> dict:
        return {f"opt_{k}_{i}": a for i, pair in enumerate(self.state) for k, a in zip(self.STATE, pair)}

    def load(self, arrays: dict, step_count: int, n_params: int) -> None:
        first, second = self.STATE
        self.state = [(arrays[f"opt_{first}_{i}"].copy(), arrays[f"opt_{second}_{i}"].copy())
                      for i in range(n_params)]
        self.step_count = step_count


@dataclass
class Adam(_TorchOptimizer):
    """``torch.optim.Adam`` (amsgrad=False, maximize=False): L2 weight decay added to the gradient.

    ``m ← β1 m + (1−β1) g``, ``v ← β2 v + (1−β2) g²``,
    ``θ ← θ − lr · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + eps)`` with ``g = ∇ℓ + wd·θ``.

    >>> w = np.array([1.0, -2.0])
    >>> Adam(lr=0.1).step([w], [np.array([3.0, -0.5])])   # the first step moves by lr·sign(g)
    >>> np.round(w, 6).tolist()
    [0.9, -1.9]
    """
    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    STATE = ("m", "v")

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.betas, (str, bytes)) or np.ndim(self.betas) != 1 or len(self.betas) != 2:
            raise TypeError(f"betas must be a pair (β1, β2); got {self.betas!r:.60}")
        self.betas = tuple(nonnegative(f"betas[{i}]", b) for i, b in enumerate(self.betas))
        if not all(b < 1 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1); got {self.betas}")

    def step(self, params, grads) -> None:
        """Update ``params`` (list of arrays) in place from their loss gradients ``grads``."""
        self._start(params)
        beta1, beta2 = self.betas
        correction1 = 1.0 - beta1 ** self.step_count
        # Python floats, so that float32 parameters stay float32 (NumPy's scalar promotion).
        sqrt_correction2 = math.sqrt(1.0 - beta2 ** self.step_count)
        for w, g, (m, v) in zip(params, grads, self.state):
            if self.weight_decay:
                g = g + self.weight_decay * w
            m *= beta1
            m += (1.0 - beta1) * g
            v *= beta2
            v += (1.0 - beta2) * g * g
            w -= (self.lr / correction1) * m / (np.sqrt(v) / sqrt_correction2 + self.eps)


@dataclass
class RMSprop(_TorchOptimizer):
    """``torch.optim.RMSprop`` (centered=False, momentum=0 by default): L2 decay added to the gradient.

    ``s ← α s + (1−α) g²``, ``θ ← θ − lr · g / (√s + eps)`` with ``g = ∇ℓ + wd·θ``;
    with ``momentum > 0``: ``b ← μ b + g/(√s + eps)``, ``θ ← θ − lr·b``.

    >>> w = np.array([1.0, -2.0])
    >>> RMSprop(lr=0.01).step([w], [np.array([3.0, -0.5])])   # first step: g/√((1−α)g²) = 10·sign(g)
    >>> np.round(w, 6).tolist()
    [0.9, -1.9]
    """
    lr: float = 1e-2
    alpha: float = 0.99
    momentum: float = 0.0
    STATE = ("s", "b")

    def __post_init__(self):
        super().__post_init__()
        self.alpha = nonnegative("alpha", self.alpha)
        self.momentum = nonnegative("momentum", self.momentum)
        if not self.alpha < 1:
            raise ValueError(f"alpha must lie in [0, 1); got {self.alpha}")

    def step(self, params, grads) -> None:
        """Update ``params`` (list of arrays) in place from their loss gradients ``grads``."""
        self._start(params)
        for w, g, (s, b) in zip(params, grads, self.state):
            if self.weight_decay:
                g = g + self.weight_decay * w
            s *= self.alpha
            s += (1.0 - self.alpha) * g * g
            update = g / (np.sqrt(s) + self.eps)
            if self.momentum > 0.0:
                b *= self.momentum
                b += update
                update = b
            w -= self.lr * update


@dataclass
class AdamW(Adam):
    """``torch.optim.AdamW``: Adam on the loss gradient, with *decoupled* decay ``θ ← θ(1 − lr·wd)`` first.

    Its decay is not a penalty in the loss, so eq. (6)'s λ does not describe it exactly.

    >>> w = np.array([1.0, -2.0])
    >>> AdamW(lr=0.1, weight_decay=0.5).step([w], [np.zeros(2)])   # zero gradient: only θ(1 − lr·wd)
    >>> w.tolist()
    [0.95, -1.9]
    """
    weight_decay: float = 1e-2

    def step(self, params, grads) -> None:
        """Shrink ``params`` by ``1 − lr·wd``, then take an Adam step without L2 decay."""
        for w in params:
            w *= 1.0 - self.lr * self.weight_decay
        decay, self.weight_decay = self.weight_decay, 0.0
        try:
            super().step(params, grads)
        finally:
            self.weight_decay = decay


@dataclass
class SGD(_TorchOptimizer):
    """``torch.optim.SGD`` (dampening 0, nesterov False): ``b ← μb + g``, ``θ ← θ − lr·b``, g = ∇ℓ + wd·θ.

    The first step sets the momentum buffer to g, as torch does; the second state array is unused.

    >>> w, opt = np.array([1.0]), SGD(lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.step([w], [np.ones(1)])                   # buffer 1, then 0.9·1 + 1 = 1.9
    >>> np.round(w, 12).tolist()                          # 1 − 0.1 − 0.19
    [0.71]
    """
    lr: float = 1e-3
    momentum: float = 0.0
    STATE = ("b", "unused")

    def __post_init__(self):
        super().__post_init__()
        self.momentum = nonnegative("momentum", self.momentum)

    def step(self, params, grads) -> None:
        """Update ``params`` (list of arrays) in place from their loss gradients ``grads``."""
        self._start(params)
        for w, g, (b, _) in zip(params, grads, self.state):
            if self.weight_decay:
                g = g + self.weight_decay * w
            if self.momentum:
                if self.step_count == 1:
                    b[...] = g
                else:
                    b *= self.momentum
                    b += g
                g = b
            w -= self.lr * g


OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "sgd": SGD}


def make_optimizer(optimizer: str, lr, weight_decay=0.0, **options):
    """``"adam"``, ``"adamw"``, ``"rmsprop"`` or ``"sgd"`` with PyTorch defaults for anything not given.

    >>> make_optimizer("adam", 1e-3).betas
    (0.9, 0.999)
    """
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZERS:
        raise (TypeError if not isinstance(optimizer, str) else ValueError)(
            f"optimizer must be one of {sorted(OPTIMIZERS)}; got {optimizer!r:.60}")
    lr = positive("lr", lr)
    weight_decay = nonnegative("weight_decay", weight_decay)
    return OPTIMIZERS[optimizer.lower()](lr=lr, weight_decay=weight_decay, **options)


# ----------------------------------------------------------------------------- one step


def minibatch_mse_and_grad(W1, W2, X_batch, noise, sigma, tied=True):
    """torch's MSELoss on one noisy batch and its gradient (ReLU'(0) = 0 as in torch).

    ``ℓ = ‖W2[W1ᵀ(X_b + σE)]_+ − X_b‖_F² / (d·B)``; returns ``(ℓ, [grads])`` with one gradient
    per parameter tensor: ``[∂ℓ/∂W]`` (= ∂/∂W1 + ∂/∂W2) when tied, else ``[∂ℓ/∂W1, ∂ℓ/∂W2]``.
    Weight decay is not included (the optimiser adds it, as torch does). Arrays keep their
    float dtype (float32 stays float32, as in the warm-up of `numerics.training`).

    >>> W = np.eye(2); X = np.eye(2)
    >>> minibatch_mse_and_grad(W, W, X, np.zeros((2, 2)), sigma=0.1)[0]      # f(x) = x: no error
    0.0
    """
    tied = flag("tied", tied)
    sigma = nonnegative("sigma", sigma, symbol="σ")
    arrays = dict(W1=W1, W2=W2, X_batch=X_batch, noise=noise)
    for name, value in arrays.items():
        if not (isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim == 2):
            raise TypeError(f"{name} must be a 2-D float array; got {type(value).__name__} "
                            f"{getattr(value, 'dtype', '')} {getattr(value, 'shape', '')}")
    checked = weights_pair(W1, W2)                 # finite, not empty (on float64 copies)
    X64 = data_matrix("X_batch", X_batch, d=W1.shape[0], cols_name="B")
    noise64 = as_matrix("noise", noise)
    if noise.shape != X_batch.shape:
        raise ValueError(f"noise must have the shape of X_batch {X_batch.shape}; got {noise.shape}")
    dtype = np.result_type(W1, W2, X_batch, noise)
    loss_magnitude(X64 + sigma * noise64, *checked, 0.0, name="X_batch", dtype=dtype)
    return _minibatch_mse_and_grad(W1, W2, X_batch, noise, sigma, tied)


def _minibatch_mse_and_grad(W1, W2, X_batch, noise, sigma, tied):
    """`minibatch_mse_and_grad` without checks: the inner step of the training loops."""
    d, batch = X_batch.shape
    noisy = X_batch + sigma * noise
    pre = W1.T @ noisy
    hidden = np.maximum(pre, 0.0)
    residual = W2 @ hidden - X_batch
    scale = 2.0 / (d * batch)
    loss = float(np.sum(residual * residual)) / (d * batch)
    gW2 = scale * (residual @ hidden.T)
    back = (W2.T @ residual) * (pre > 0.0)
    gW1 = scale * (noisy @ back.T)
    if tied:
        return loss, [gW1 + gW2]
    return loss, [gW1, gW2]


# ----------------------------------------------------------------------------- the loop


@dataclass
class ProtocolResult:
    """Outcome of `train_protocol`.

    ``W1, W2`` final weights (the same array when tied); ``lam`` the eq. (6) weight decay
    equivalent to ``weight_decay``; ``history_steps``/``history_loss`` the recorded torch
    minibatch losses ``ℓ`` (MSE per coordinate, noisy, one draw); ``exact_loss`` eq. (6) at
    the end with ``lam`` (``nan`` if not computed); ``wall_time`` seconds of training only.
    """
    W1: np.ndarray
    W2: np.ndarray
    lam: float
    steps: int
    history_steps: np.ndarray
    history_loss: np.ndarray
    exact_loss: float
    wall_time: float
    exact_time: float
    config: dict


def restore_run(checkpoint, key: str, params: list, opt):
    """Load a protocol run's checkpoint ``(folder, name)``: None if there is none, else put its
    weights into ``params`` and its state into ``opt`` and return ``(arrays, meta)`` for the
    caller's own state (RNG, batch order, history). A checkpoint of another run (its
    fingerprint is not ``key``) is a ValueError naming the file.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> restore_run((folder, "run"), "abc", [], None) is None               # nothing saved yet
    True
    >>> save_checkpoint(folder, "run", {"param_0": np.ones(2)}, {"fingerprint": "abc", "step": 0})
    >>> w = np.zeros(2)                                                      # one weight array
    >>> arrays, meta = restore_run((folder, "run"), "abc", [w], None)
    >>> w.tolist(), meta["step"]
    ([1.0, 1.0], 0)
    """
    folder, name = checkpoint
    saved = load_checkpoint(folder, name)
    if saved is None:
        return None
    arrays, meta = saved
    if meta.get("fingerprint") != key:
        raise ValueError(f"checkpoint {folder}/{name} belongs to another run "
                         f"(fingerprint {meta.get('fingerprint')} != {key})")
    for i, w in enumerate(params):
        w[...] = arrays[f"param_{i}"]
    if meta["step"] > 0:
        opt.load(arrays, int(meta["step"]), len(params))
    return arrays, meta


class _Batches:
    """DataLoader(shuffle=True, drop_last=False) as explicit state (epoch order, position)."""

    def __init__(self, n: int, batch: int, rng: np.random.Generator):
        self.n, self.batch, self.rng = n, batch, rng
        self.order = np.arange(n)
        self.position = n

    def next(self) -> np.ndarray:
        if self.position >= self.n:
            self.order = self.rng.permutation(self.n)
            self.position = 0
        indices = self.order[self.position:self.position + self.batch]
        self.position += self.batch
        return indices


def train_protocol(X, p, sigma, *, optimizer="adam", lr=1e-4, weight_decay=0.0, batch_size=None,
                   steps=50_000, seed=0, tied=True, init=None, record_every=100,
                   exact_loss=True, checkpoint=None, checkpoint_every=60.0, progress=None,
                   optimizer_options=None) -> ProtocolResult:
    """Train the ReLU-DAE the authors' way: MC noise per step, torch Adam/RMSprop, minibatches.

    ``X`` (d, n) samples as columns; ``batch_size=None`` means full batch (the memorisation
    runs). ``init``: ``None`` for torch's default (`torch_default_init` with ``seed``), or a
    (d, p) array W / a pair ``(W1, W2)`` (`numerics.initialization.given_weights`).
    ``checkpoint=(folder, name)`` saves weights, optimiser state and RNG state every
    ``checkpoint_every`` seconds and resumes from them. Stages: the start (`_ProtocolRun`),
    resuming (`_ProtocolRun.resume`), the steps (`_ProtocolRun.run`), the exact loss.

    >>> import numpy as np
    >>> X = np.random.default_rng(1).normal(size=(6, 20))
    >>> out = train_protocol(X, 3, 0.2, optimizer="adam", lr=1e-3, batch_size=8, steps=20,
    ...                      exact_loss=False)
    >>> out.history_loss.shape[0] >= 1
    True
    """
    X = as_matrix("X", X, cols_name="n")
    d, n = X.shape
    p = positive_int("p", p)
    sigma = nonnegative("sigma", sigma, symbol="σ")
    steps = positive_int("steps", steps, minimum=0)
    seed = positive_int("seed", seed, minimum=0)
    tied = flag("tied", tied)
    record_every = positive_int("record_every", record_every)
    exact_loss = flag("exact_loss", exact_loss)
    progress = optional_flag("progress", progress)
    batch = n if batch_size is None else min(positive_int("batch_size", batch_size), n)
    if optimizer_options is not None and not isinstance(optimizer_options, dict):
        raise TypeError(f"optimizer_options must be a dict or None; got {optimizer_options!r:.60}")
    if checkpoint is not None:
        if not (isinstance(checkpoint, (tuple, list)) and len(checkpoint) == 2):
            raise TypeError(f"checkpoint must be a pair (folder, name) or None; got {checkpoint!r:.60}")
        checkpoint_every = nonnegative("checkpoint_every", checkpoint_every)
    run = _ProtocolRun(X, p, sigma, optimizer=optimizer, lr=lr, weight_decay=weight_decay, batch=batch,
                       steps=steps, seed=seed, tied=tied, init=init, options=dict(optimizer_options or {}))
    if checkpoint is not None:
        run.resume(checkpoint)
    wall = run.run(steps, record_every, checkpoint, checkpoint_every, progress)
    W1, W2 = run.params[0], run.params[-1]
    exact, exact_time = float("nan"), 0.0
    if exact_loss:
        tick = time.perf_counter()
        exact = float(expected_loss(W1, W2, X, sigma, run.lam))
        exact_time = time.perf_counter() - tick
    return ProtocolResult(W1=W1, W2=W2, lam=run.lam, steps=steps,
                          history_steps=np.asarray(run.hist_steps, dtype=np.int64),
                          history_loss=np.asarray(run.hist_loss, dtype=np.float64),
                          exact_loss=exact, wall_time=wall, exact_time=exact_time, config=run.config)


class _ProtocolRun:
    """The state of one `train_protocol` run: weights, optimiser, noise stream, batch order, history."""

    def __init__(self, X, p, sigma, *, optimizer, lr, weight_decay, batch, steps, seed, tied, init, options):
        d, n = X.shape
        self.X, self.sigma, self.tied = X, sigma, tied
        self.opt = make_optimizer(optimizer, lr, weight_decay, **options)
        self.lam = lambda_from_weight_decay(weight_decay, d, tied=tied)
        init_seed, noise_seed = np.random.SeedSequence(seed).spawn(2)
        if init is None:
            W1, W2 = torch_default_init(d, p, tied=tied, seed=np.random.default_rng(init_seed))
        else:
            W1, W2 = given_weights(init, d, p, tied=tied, n=n)
        self.params = [W1] if tied else [W1, W2]
        self.config = dict(optimizer=optimizer.lower(), lr=float(lr), weight_decay=float(weight_decay),
                           batch_size=int(batch), steps=int(steps), seed=seed,
                           tied=tied, sigma=sigma, p=p, d=d, n=n, lam=self.lam, options=options)
        # ``steps`` is left out so that a finished run can be extended from its checkpoint.
        self.key = fingerprint(X, init_given=init is not None,
                               **{k: v for k, v in self.config.items() if k != "steps"})
        self.rng = np.random.default_rng(noise_seed)
        self.batches = _Batches(n, batch, self.rng) if batch < n else None
        self.start_step = 0
        self.hist_steps: list = []
        self.hist_loss: list = []

    def resume(self, checkpoint) -> None:
        """Restore weights, optimiser, RNG, batch order and history from ``checkpoint`` if it exists."""
        saved = restore_run(checkpoint, self.key, self.params, self.opt)
        if saved is None:
            return
        arrays, meta = saved
        self.start_step = int(meta["step"])
        self.rng.bit_generator.state = meta["rng_state"]
        if self.batches is not None:
            self.batches.order = arrays["batch_order"].copy()
            self.batches.position = int(meta["batch_position"])
        self.hist_steps = list(arrays["history_steps"].astype(int))
        self.hist_loss = list(arrays["history_loss"])

    def save(self, checkpoint, step_done: int) -> None:
        arrays = {f"param_{i}": w for i, w in enumerate(self.params)}
        arrays.update(self.opt.arrays())
        arrays["history_steps"] = np.asarray(self.hist_steps, dtype=np.int64)
        arrays["history_loss"] = np.asarray(self.hist_loss, dtype=np.float64)
        meta = {"fingerprint": self.key, "step": step_done, "rng_state": self.rng.bit_generator.state,
                "config": self.config}
        if self.batches is not None:
            arrays["batch_order"] = self.batches.order
            meta["batch_position"] = self.batches.position
        save_checkpoint(checkpoint[0], checkpoint[1], arrays, meta)

    def run(self, steps: int, record_every: int, checkpoint, checkpoint_every: float, progress) -> float:
        """Steps ``start_step … steps − 1``, one noise draw each; returns the seconds spent."""
        X, params = self.X, self.params
        started = time.perf_counter()
        last_save = started
        with progress_bar(progress, total=steps, initial=self.start_step, mininterval=1.0,
                          desc=f"protocol {self.config['optimizer']}") as bar, single_thread(numba=False):
            for step in range(self.start_step, steps):
                X_batch = X if self.batches is None else X[:, self.batches.next()]
                noise = self.rng.standard_normal(X_batch.shape)
                loss, grads = _minibatch_mse_and_grad(params[0], params[-1], X_batch, noise, self.sigma, self.tied)
                self.opt.step(params, grads)
                if (step + 1) % record_every == 0 or step == 0:
                    self.hist_steps.append(step + 1)
                    self.hist_loss.append(loss)
                    bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
                bar.update(1)
                if checkpoint is not None and time.perf_counter() - last_save > checkpoint_every:
                    self.save(checkpoint, step + 1)
                    last_save = time.perf_counter()
        wall = time.perf_counter() - started
        self._check_finite()
        if checkpoint is not None:
            self.save(checkpoint, steps)
        return wall

    def _check_finite(self) -> None:
        """Adam and RMSprop square the gradients: with data far from order 1 they overflow silently."""
        arrays = list(self.params) + list(self.opt.arrays().values())
        if not all(np.all(np.isfinite(a)) for a in arrays):
            raise ValueError(f"training overflowed float64 (the optimiser squares gradients of size ~ "
                             f"‖X‖²‖W‖³): X has entries up to {float(np.max(np.abs(self.X))):.3g}, "
                             f"sigma = {self.sigma:.3g}; rescale X (and sigma)")
