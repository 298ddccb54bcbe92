"""The authors' multi-noise training protocol in NumPy, step for step with PyTorch semantics.

Their loop (the ``DAECond`` notebook): each step draws a batch from a shuffling
``DataLoader(drop_last=True)``, one ``log σ ~ U[log σ_min, log σ_max]`` and one ε per sample,
computes ``MSELoss(model(x + σε, log σ), x)`` (mean over d and the batch) and takes an Adam or
RMSprop step with ``weight_decay`` on every parameter (`numerics.protocol.Adam`, `RMSprop`).
Memorising (n = 5): RMSprop lr 1e-3, weight decay 1e-2, full batch, 100k steps; generalising:
Adam lr 5e-5, weight decay 5e-4, batch 256, 200k steps (`PROTOCOLS`).

Its expectation is the exact multi-noise loss of `numerics.multinoise_objective` divided by d,
with ``λ = d·wd/2`` (`decay_from_weight_decay`); `train_multinoise_protocol` reports that exact
loss at the end.

>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(6, 5))
>>> run = train_multinoise_protocol(X, 3, steps=20, exact_loss=False, **PROTOCOLS["memorise"])
>>> run.model.W.shape, run.lam == decay_from_weight_decay(1e-2, 6)
((6, 3), True)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from numerics.checkpoint import fingerprint, progress_bar, save_checkpoint
from numerics.multinoise import FIELDS, MultiNoiseDAE
from numerics.multinoise_objective import SIGMA_RANGE, _sigma_range, decay_from_weight_decay, multinoise_loss
from numerics.protocol import make_optimizer, restore_run
from numerics.threads import single_thread
from numerics.validation import as_matrix, positive_int

PROTOCOLS = {
    "memorise": dict(optimizer="rmsprop", lr=1e-3, weight_decay=1e-2, batch_size=None),
    "generalise": dict(optimizer="adam", lr=5e-5, weight_decay=5e-4, batch_size=256),
}


def minibatch_loss_and_grad(model: MultiNoiseDAE, X_batch, noise, log_sigma):
    """PyTorch's ``MSELoss`` of ``model(x + σε, log σ)`` against x on one batch, and its gradient.

    ``X_batch``, ``noise`` (d, B); ``log_sigma`` (B,). Returns ``(ℓ, grads)`` with ``grads`` a
    `MultiNoiseDAE` of ``∂ℓ/∂θ`` (ReLU'(0) = 0 as in PyTorch; no weight decay).

    >>> rng = np.random.default_rng(0)
    >>> X, noise, log_sigma = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), np.log([0.1, 0.5, 1.0, 2.0])
    >>> model = MultiNoiseDAE.initial(3, 2, seed=0)                  # d = 3, p = 2, batch B = 4
    >>> loss, grads = minibatch_loss_and_grad(model, X, noise, log_sigma)
    >>> sigma = np.exp(log_sigma)                                    # ℓ: the mean over d and B
    >>> bool(np.isclose(loss, np.mean((model(X + sigma * noise, sigma) - X) ** 2))), grads.W.shape
    (True, (3, 2))
    """
    d, batch = X_batch.shape
    sigma = np.exp(log_sigma)
    noisy = X_batch + sigma * noise
    pre = model.W.T @ noisy
    hidden = np.maximum(pre, 0.0)
    gain_pre, gain_hidden, log_g = model.gain_layers(log_sigma)
    g = np.exp(log_g)
    gated = g * hidden
    residual = model.W @ gated + model.s * noisy - X_batch
    loss = float(np.sum(residual * residual)) / (d * batch)
    back = (2.0 / (d * batch)) * residual
    through = model.W.T @ back                                  # ∂ℓ/∂(g ⊙ h)
    grad_W = back @ gated.T + noisy @ (through * g * (pre > 0.0)).T
    grad_log_g = through * hidden * g
    grad_gain_pre = (model.A2.T @ grad_log_g) * (gain_pre > 0.0)
    grads = MultiNoiseDAE(W=grad_W, s=float(np.sum(back * noisy)), A1=grad_gain_pre @ log_sigma,
                          b1=grad_gain_pre.sum(axis=1), A2=grad_log_g @ gain_hidden.T, b2=grad_log_g.sum(axis=1))
    return loss, grads


class DropLastBatches:
    """``DataLoader(shuffle=True, drop_last=True)`` as explicit state: a new permutation per epoch,
    consecutive batches of ``min(batch, n)`` indices, the last incomplete batch dropped.

    >>> batches = DropLastBatches(5, 2, np.random.default_rng(0))   # n = 5, batches of 2
    >>> epoch = np.concatenate([batches.next(), batches.next()])
    >>> len(set(epoch.tolist())), batches.position                   # 4 distinct samples; the 5th is dropped
    (4, 4)
    >>> batches.next().size, batches.position                        # a new epoch, a new permutation
    (2, 2)
    """

    def __init__(self, n: int, batch: int, rng: np.random.Generator):
        self.n, self.batch, self.rng = n, min(batch, n), rng
        self.order = np.arange(n)
        self.position = n

    def next(self) -> np.ndarray:
        if self.position + self.batch > self.n:
            self.order = self.rng.permutation(self.n)
            self.position = 0
        indices = self.order[self.position:self.position + self.batch]
        self.position += self.batch
        return indices


@dataclass
class MultiNoiseProtocolResult:
    """Outcome of a protocol run. Returned by `train_multinoise_protocol`.

    ``model`` the final parameters; ``lam`` the decay λ on ``‖θ‖²`` equivalent to
    ``weight_decay``; ``history_steps``/``history_loss`` the recorded minibatch losses ℓ (MSE
    per coordinate, one draw); ``exact_loss`` the exact multi-noise loss at the end with ``lam``
    (``nan`` if not computed); ``wall_time`` seconds of training only; ``config`` the run's
    parameters.
    """
    model: MultiNoiseDAE
    lam: float
    steps: int
    history_steps: np.ndarray
    history_loss: np.ndarray
    exact_loss: float
    wall_time: float
    exact_time: float
    config: dict


def _as_arrays(model: MultiNoiseDAE) -> list:
    """The parameters as a list of arrays (s as a 0-d array) that optimisers update in place."""
    return [np.array(getattr(model, name), dtype=np.float64) for name in FIELDS]


def _as_model(arrays) -> MultiNoiseDAE:
    return MultiNoiseDAE(**{name: (float(a) if name == "s" else a) for name, a in zip(FIELDS, arrays)})


class _LoopState:
    """Everything a protocol run carries between steps, saved to and restored from a checkpoint."""

    def __init__(self, params, opt, rng, batches, key, config):
        self.params, self.opt, self.rng, self.batches, self.key, self.config = params, opt, rng, batches, key, config
        self.step, self.hist_steps, self.hist_loss = 0, [], []

    def restore(self, checkpoint) -> None:
        saved = restore_run(checkpoint, self.key, self.params, self.opt)
        if saved is None:
            return
        arrays, meta = saved
        self.step = int(meta["step"])
        self.rng.bit_generator.state = meta["rng_state"]
        self.batches.order, self.batches.position = arrays["batch_order"].copy(), int(meta["batch_position"])
        self.hist_steps, self.hist_loss = list(arrays["history_steps"].astype(int)), list(arrays["history_loss"])

    def save(self, checkpoint) -> None:
        arrays = {f"param_{i}": w for i, w in enumerate(self.params)}
        arrays.update(self.opt.arrays(), batch_order=self.batches.order,
                      history_steps=np.asarray(self.hist_steps, dtype=np.int64),
                      history_loss=np.asarray(self.hist_loss, dtype=np.float64))
        save_checkpoint(*checkpoint, arrays, {"fingerprint": self.key, "step": self.step, "config": self.config,
                                              "rng_state": self.rng.bit_generator.state,
                                              "batch_position": self.batches.position})


def _run_steps(state, X, steps, u_range, record_every, checkpoint, checkpoint_every, progress) -> float:
    """The authors' loop from ``state.step`` to ``steps``: batch, one σ and ε per sample, MSE, optimiser step."""
    u_min, u_max = u_range
    started = last_save = time.perf_counter()
    with progress_bar(progress, total=steps, initial=state.step, desc="multi-noise protocol",
                      mininterval=1.0) as bar, single_thread(numba=False):
        while state.step < steps:
            X_batch = X[:, state.batches.next()]
            log_sigma = u_min + (u_max - u_min) * state.rng.random(X_batch.shape[1])
            noise = state.rng.standard_normal(X_batch.shape)
            loss, grads = minibatch_loss_and_grad(_as_model(state.params), X_batch, noise, log_sigma)
            state.opt.step(state.params, _as_arrays(grads))
            state.step += 1
            if state.step % record_every == 0 or state.step == 1:
                state.hist_steps.append(state.step)
                state.hist_loss.append(loss)
                bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            bar.update(1)
            if checkpoint is not None and time.perf_counter() - last_save > checkpoint_every:
                state.save(checkpoint)
                last_save = time.perf_counter()
    return time.perf_counter() - started


def train_multinoise_protocol(X, p, *, optimizer="rmsprop", lr=1e-3, weight_decay=1e-2, batch_size=None,
                              steps=10_000, seed=0, sigma_min=SIGMA_RANGE[0], sigma_max=SIGMA_RANGE[1], init=None,
                              record_every=100, exact_loss=True, checkpoint=None, checkpoint_every=60.0,
                              progress=None, optimizer_options=None) -> MultiNoiseProtocolResult:
    """Train `MultiNoiseDAE` the authors' way (module docstring); resumable from ``checkpoint``.

    ``X`` (d, n) samples as columns; ``batch_size=None`` is full batch. ``init``: ``None`` for
    `MultiNoiseDAE.initial` with ``seed``, or a `MultiNoiseDAE`. ``checkpoint=(folder, name)``
    saves parameters, optimiser and RNG state every ``checkpoint_every`` seconds (atomically,
    with the run's parameters) and resumes from them; a finished run can be extended by
    calling again with more ``steps``.

    >>> import tempfile
    >>> X, folder = np.random.default_rng(0).normal(size=(4, 5)), tempfile.TemporaryDirectory()  # d = 4, n = 5
    >>> first = train_multinoise_protocol(X, 2, steps=25, checkpoint=(folder.name, "run"), exact_loss=False)
    >>> resumed = train_multinoise_protocol(X, 2, steps=50, checkpoint=(folder.name, "run"), exact_loss=False)
    >>> straight = train_multinoise_protocol(X, 2, steps=50, exact_loss=False)
    >>> resumed.steps, np.array_equal(resumed.model.pack(), straight.model.pack())   # resumed at 25: bit for bit
    (50, True)
    >>> folder.cleanup()
    """
    X = as_matrix("X", X, cols_name="n")
    d, n = X.shape
    p = positive_int("p", p)
    steps = positive_int("steps", steps, minimum=0)
    seed = positive_int("seed", seed, minimum=0)
    record_every = positive_int("record_every", record_every)
    sigma_min, sigma_max = _sigma_range(sigma_min, sigma_max)
    batch = n if batch_size is None else min(positive_int("batch_size", batch_size), n)
    options = dict(optimizer_options or {})
    opt = make_optimizer(optimizer, lr, weight_decay, **options)
    lam = decay_from_weight_decay(weight_decay, d)
    init_seed, draw_seed = np.random.SeedSequence(seed).spawn(2)
    if init is None:
        model = MultiNoiseDAE.initial(d, p, seed=np.random.default_rng(init_seed))
    elif isinstance(init, MultiNoiseDAE) and init.W.shape == (d, p):
        model = init.copy()
    else:
        raise ValueError(f"init must be None or a MultiNoiseDAE with W of shape ({d}, {p})")
    params = _as_arrays(model)
    config = dict(optimizer=str(optimizer).lower(), lr=float(lr), weight_decay=float(weight_decay),
                  batch_size=int(batch), steps=int(steps), seed=seed, sigma_min=sigma_min, sigma_max=sigma_max,
                  p=p, d=d, n=n, lam=lam, options=options)
    # ``steps`` is left out so that a finished run can be extended from its checkpoint.
    key = fingerprint(X, *params, **{k: v for k, v in config.items() if k != "steps"})
    rng = np.random.default_rng(draw_seed)
    state = _LoopState(params, opt, rng, DropLastBatches(n, batch, rng), key, config)
    if checkpoint is not None:
        state.restore(checkpoint)
    wall = _run_steps(state, X, steps, (math.log(sigma_min), math.log(sigma_max)), record_every, checkpoint,
                      checkpoint_every, progress)
    if checkpoint is not None:
        state.save(checkpoint)
    model = _as_model(params)
    exact, exact_time = float("nan"), 0.0
    if exact_loss:
        tick = time.perf_counter()
        exact = multinoise_loss(model, X, sigma_min, sigma_max, lam)
        exact_time = time.perf_counter() - tick
    return MultiNoiseProtocolResult(model=model, lam=lam, steps=state.step,
                                    history_steps=np.asarray(state.hist_steps, dtype=np.int64),
                                    history_loss=np.asarray(state.hist_loss, dtype=np.float64), exact_loss=exact,
                                    wall_time=wall, exact_time=exact_time, config=config)
