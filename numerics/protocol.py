"""The authors' training protocol in NumPy: one noise draw per step, Adam/RMSprop, PyTorch semantics.

The paper's code trains the ReLU-DAE with ``torch.nn.MSELoss`` on ``x + σε`` (a fresh draw
per sample and step), minibatches from a shuffling ``DataLoader``, and ``weight_decay=wd``
in Adam or RMSprop. This module reproduces that loop step for step without torch, so it
can run next to `numerics.solvers.train` on the exact objective eq. (6).

Mapping to eq. (6) (derived here; THEORY.md §1). On a batch of B samples the torch loss is
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

from numerics.checkpoint import (
    fingerprint,
    load_checkpoint,
    progress_bar,
    save_checkpoint,
    single_blas_thread,
)
from numerics.validation import as_matrix, nonnegative, positive, positive_int

# ----------------------------------------------------------------------------- mapping


def lambda_from_weight_decay(weight_decay, d, tied=True) -> float:
    """λ of eq. (6) equivalent to PyTorch ``weight_decay`` with MSELoss: d·wd/2 (untied), d·wd/4 (tied).

    >>> lambda_from_weight_decay(1e-2, d=1024, tied=False)
    5.12
    """
    wd = nonnegative("weight_decay", weight_decay)
    d = positive_int("d", d)
    return d * wd / (4.0 if tied else 2.0)


def weight_decay_from_lambda(lam, d, tied=True) -> float:
    """Inverse of `lambda_from_weight_decay`."""
    lam = nonnegative("lam", lam, symbol="λ")
    d = positive_int("d", d)
    return lam * (4.0 if tied else 2.0) / d


def torch_default_init(d, p, *, tied=True, seed=0):
    """``nn.Linear`` default initialisation, as (W1, W2) in this package's (d, p) layout.

    Encoder ``Linear(d, p)``: entries U(−1/√d, 1/√d); decoder ``Linear(p, d)``: U(−1/√p, 1/√p)
    (kaiming_uniform with a = √5). Tied: W2 is W1 (the encoder's weight is reused).
    """
    d = positive_int("d", d)
    p = positive_int("p", p)
    rng = np.random.default_rng(seed)
    W1 = rng.uniform(-1.0, 1.0, size=(d, p)) / np.sqrt(d)
    if tied:
        return W1, W1
    return W1, rng.uniform(-1.0, 1.0, size=(d, p)) / np.sqrt(p)


# ----------------------------------------------------------------------------- optimisers


@dataclass
class Adam:
    """``torch.optim.Adam`` (amsgrad=False, maximize=False): L2 weight decay added to the gradient.

    ``m ← β1 m + (1−β1) g``, ``v ← β2 v + (1−β2) g²``,
    ``θ ← θ − lr · (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + eps)`` with ``g = ∇ℓ + wd·θ``.
    """
    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    step_count: int = 0
    state: list = field(default_factory=list)

    def step(self, params, grads) -> None:
        """Update ``params`` (list of arrays) in place from their loss gradients ``grads``."""
        if not self.state:
            self.state = [(np.zeros_like(w), np.zeros_like(w)) for w in params]
        self.step_count += 1
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

    def arrays(self) -> dict:
        return {f"opt_{k}_{i}": a for i, pair in enumerate(self.state) for k, a in zip("mv", pair)}

    def load(self, arrays: dict, step_count: int, n_params: int) -> None:
        self.state = [(arrays[f"opt_m_{i}"].copy(), arrays[f"opt_v_{i}"].copy()) for i in range(n_params)]
        self.step_count = step_count


@dataclass
class RMSprop:
    """``torch.optim.RMSprop`` (centered=False, momentum=0 by default): L2 decay added to the gradient.

    ``s ← α s + (1−α) g²``, ``θ ← θ − lr · g / (√s + eps)`` with ``g = ∇ℓ + wd·θ``;
    with ``momentum > 0``: ``b ← μ b + g/(√s + eps)``, ``θ ← θ − lr·b``.
    """
    lr: float = 1e-2
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    step_count: int = 0
    state: list = field(default_factory=list)

    def step(self, params, grads) -> None:
        """Update ``params`` (list of arrays) in place from their loss gradients ``grads``."""
        if not self.state:
            self.state = [(np.zeros_like(w), np.zeros_like(w)) for w in params]
        self.step_count += 1
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

    def arrays(self) -> dict:
        return {f"opt_{k}_{i}": a for i, pair in enumerate(self.state) for k, a in zip("sb", pair)}

    def load(self, arrays: dict, step_count: int, n_params: int) -> None:
        self.state = [(arrays[f"opt_s_{i}"].copy(), arrays[f"opt_b_{i}"].copy()) for i in range(n_params)]
        self.step_count = step_count


@dataclass
class AdamW(Adam):
    """``torch.optim.AdamW``: Adam on the loss gradient, with *decoupled* decay ``θ ← θ(1 − lr·wd)`` first.

    Its decay is not a penalty in the loss, so eq. (6)'s λ does not describe it exactly.
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
class SGD:
    """``torch.optim.SGD`` (dampening 0, nesterov False): ``b ← μb + g``, ``θ ← θ − lr·b``, g = ∇ℓ + wd·θ."""
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    step_count: int = 0
    state: list = field(default_factory=list)

    def step(self, params, grads) -> None:
        """Update ``params`` (list of arrays) in place from their loss gradients ``grads``."""
        if not self.state:
            self.state = [np.zeros_like(w) for w in params]
        self.step_count += 1
        for w, g, b in zip(params, grads, self.state):
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

    def arrays(self) -> dict:
        return {f"opt_b_{i}": b for i, b in enumerate(self.state)}

    def load(self, arrays: dict, step_count: int, n_params: int) -> None:
        self.state = [arrays[f"opt_b_{i}"].copy() for i in range(n_params)]
        self.step_count = step_count


OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "sgd": SGD}


def make_optimizer(name: str, lr, weight_decay=0.0, **options):
    """``"adam"``, ``"adamw"``, ``"rmsprop"`` or ``"sgd"`` with PyTorch defaults for anything not given."""
    key = str(name).lower()
    lr = positive("lr", lr)
    weight_decay = nonnegative("weight_decay", weight_decay)
    if key not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}; got {name!r}")
    return OPTIMIZERS[key](lr=lr, weight_decay=weight_decay, **options)


# ----------------------------------------------------------------------------- one step


def minibatch_mse_and_grad(W1, W2, X_batch, noise, sigma, tied=True):
    """torch's MSELoss on one noisy batch and its gradient (ReLU'(0) = 0 as in torch).

    ``ℓ = ‖W2[W1ᵀ(X_b + σE)]_+ − X_b‖_F² / (d·B)``; returns ``(ℓ, [grads])`` with one gradient
    per parameter tensor: ``[∂ℓ/∂W]`` (= ∂/∂W1 + ∂/∂W2) when tied, else ``[∂ℓ/∂W1, ∂ℓ/∂W2]``.
    Weight decay is not included (the optimiser adds it, as torch does).
    """
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
    pair ``(W1, W2)`` / a single W when tied. ``checkpoint=(folder, name)`` saves weights,
    optimiser state and RNG state every ``checkpoint_every`` seconds and resumes from them.

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
    record_every = positive_int("record_every", record_every)
    batch = n if batch_size is None else min(positive_int("batch_size", batch_size), n)
    options = dict(optimizer_options or {})
    opt = make_optimizer(optimizer, lr, weight_decay, **options)
    lam = lambda_from_weight_decay(weight_decay, d, tied=tied)

    init_seed, noise_seed = np.random.SeedSequence(seed).spawn(2)
    if init is None:
        W1, W2 = torch_default_init(d, p, tied=tied, seed=np.random.default_rng(init_seed))
    elif tied:
        W1 = as_matrix("init", init[0] if isinstance(init, tuple) else init, rows=d, cols=p).copy()
        W2 = W1
    else:
        if not (isinstance(init, tuple) and len(init) == 2):
            raise ValueError("init must be a pair (W1, W2) when tied=False")
        W1 = as_matrix("init[0]", init[0], rows=d, cols=p).copy()
        W2 = as_matrix("init[1]", init[1], rows=d, cols=p).copy()
    params = [W1] if tied else [W1, W2]

    config = dict(optimizer=str(optimizer).lower(), lr=float(lr), weight_decay=float(weight_decay),
                  batch_size=int(batch), steps=int(steps), seed=seed,
                  tied=bool(tied), sigma=sigma, p=p, d=d, n=n, lam=lam, options=options)
    # ``steps`` is left out so that a finished run can be extended from its checkpoint.
    key = fingerprint(X, init_given=init is not None,
                      **{k: v for k, v in config.items() if k != "steps"})
    rng = np.random.default_rng(noise_seed)
    start_step = 0
    hist_steps, hist_loss = [], []
    batches = _Batches(n, batch, rng) if batch < n else None
    if checkpoint is not None:
        folder, name = checkpoint
        saved = load_checkpoint(folder, name)
        if saved is not None:
            arrays, meta = saved
            if meta.get("fingerprint") != key:
                raise ValueError(f"checkpoint {folder}/{name} belongs to another run "
                                 f"(fingerprint {meta.get('fingerprint')} != {key})")
            for i, w in enumerate(params):
                w[...] = arrays[f"param_{i}"]
            if meta["step"] > 0:
                opt.load(arrays, meta["step"], len(params))
            start_step = int(meta["step"])
            rng.bit_generator.state = meta["rng_state"]
            if batches is not None:
                batches.order = arrays["batch_order"].copy()
                batches.position = int(meta["batch_position"])
            hist_steps = list(arrays["history_steps"].astype(int))
            hist_loss = list(arrays["history_loss"])

    def save(step_done: int) -> None:
        arrays = {f"param_{i}": w for i, w in enumerate(params)}
        arrays.update(opt.arrays())
        arrays["history_steps"] = np.asarray(hist_steps, dtype=np.int64)
        arrays["history_loss"] = np.asarray(hist_loss, dtype=np.float64)
        meta = {"fingerprint": key, "step": step_done, "rng_state": rng.bit_generator.state,
                "config": config}
        if batches is not None:
            arrays["batch_order"] = batches.order
            meta["batch_position"] = batches.position
        save_checkpoint(checkpoint[0], checkpoint[1], arrays, meta)
    started = time.perf_counter()
    last_save = started
    with progress_bar(progress, total=steps, initial=start_step, desc=f"protocol {config['optimizer']}",
                      mininterval=1.0) as bar, single_blas_thread():
        for step in range(start_step, steps):
            X_batch = X if batches is None else X[:, batches.next()]
            noise = rng.standard_normal(X_batch.shape)
            loss, grads = minibatch_mse_and_grad(params[0], params[-1], X_batch, noise, sigma, tied)
            opt.step(params, grads)
            if (step + 1) % record_every == 0 or step == 0:
                hist_steps.append(step + 1)
                hist_loss.append(loss)
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            bar.update(1)
            if checkpoint is not None and time.perf_counter() - last_save > checkpoint_every:
                save(step + 1)
                last_save = time.perf_counter()
    wall = time.perf_counter() - started
    if checkpoint is not None:
        save(steps)

    W1, W2 = params[0], params[-1]
    exact = float("nan")
    exact_time = 0.0
    if exact_loss:
        from numerics.objective import expected_loss

        tick = time.perf_counter()
        exact = float(expected_loss(W1, W2, X, sigma, lam))
        exact_time = time.perf_counter() - tick
    return ProtocolResult(W1=W1, W2=W2, lam=lam, steps=steps,
                          history_steps=np.asarray(hist_steps, dtype=np.int64),
                          history_loss=np.asarray(hist_loss, dtype=np.float64),
                          exact_loss=exact, wall_time=wall, exact_time=exact_time, config=config)
