"""A tiny DDPM trained offline on 8 × 8 digits, some of them duplicated so that it memorises them.

The paper's Table 1 and Fig. 5 need a diffusion model that memorises some training images
and generalises on the rest; pretrained ones cannot be downloaded here, so this module
trains one on CPU in minutes: a diffusers ``UNet2DModel`` (≈ 40k–90k parameters) with a
``DDPMScheduler`` (ε-prediction, 1000 steps, linear β) on ``numerics.data.digits`` in
[−1, 1]. The training set holds ``n_single`` digits once and ``n_duplicated`` digits
``copies`` times each: duplication is what makes a diffusion model memorise (the setting of
Corollary 3.4; Somepalli et al. 2023, Carlini et al. 2023).

* `DDPMConfig` — every parameter that determines the trained weights (`DDPMConfig.fast()`:
  a smaller model and fewer steps, for tests);
* `digit_training_set` — the training columns and the unique images behind them;
* `train_ddpm` — training, resumable, cached under a hash of every parameter
  (`numerics.checkpoint`, atomic writes);
* `sample` — deterministic DDIM sampling (η = 0) from the trained scheduler's configuration;

Samples are labelled memorised by `numerics.diffusion.memorization_report` (the ℓ2 rule of
the memorisation literature, against the unique training images); everything the Table 1,
Fig. 5 and Fig. 7 analogs need comes from `numerics.unet_numbers.digit_ddpm_numbers`
(command line: ``python -m numerics.unet_numbers [--fast]``).

The network runs in float32 (a documented speed path: torch convolutions on CPU); every
array handed back is float64, images as columns ``(64, m)``.

>>> config = DDPMConfig.fast()
>>> data = digit_training_set(config)
>>> data.X.shape, data.unique.shape, int(data.duplicated.sum())
((64, 220), (64, 64), 4)
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from numerics.checkpoint import fingerprint, load_checkpoint, progress_bar, save_checkpoint
from numerics.hooks import require_torch, torch_threads
from numerics.validation import as_matrix, positive, positive_int

__all__ = ["DDPMConfig", "DigitData", "TrainedDDPM", "digit_training_set", "build_unet", "train_ddpm",
           "sample", "to_images", "noised", "CACHE_VERSION"]

# These examples build or train a model: they need the optional extra.
__doctest_requires__ = {("build_unet", "cache_key", "train_ddpm", "sample", "noised"): ["torch", "diffusers"]}

# Bump when a change to the training code must invalidate cached weights.
CACHE_VERSION = 1
SIDE = 8                         # digits are 8 × 8 images, d = 64


@dataclass(frozen=True)
class DDPMConfig:
    """Everything that determines the trained weights (data, network, optimisation).

    >>> config = DDPMConfig.fast(train_steps=100)            # the small variant, one field changed
    >>> config.train_steps, config.block_out_channels, DDPMConfig().train_steps
    (100, (8, 16), 3000)
    """

    n_single: int = 300                      # digits that appear once in the training set
    n_duplicated: int = 10                   # digits that appear `copies` times
    copies: int = 30
    data_seed: int = 0
    block_out_channels: tuple = (12, 24)
    norm_num_groups: int = 4
    train_steps: int = 3000
    batch_size: int = 128
    learning_rate: float = 2e-3              # peak of a linear warm-up then cosine decay
    warmup_steps: int = 150
    train_seed: int = 0
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"

    @classmethod
    def fast(cls, **changes) -> "DDPMConfig":
        """A smaller model and data set trained in well under a minute (for tests)."""
        values = dict(n_single=60, n_duplicated=4, copies=40, block_out_channels=(8, 16),
                      train_steps=500, batch_size=64, learning_rate=1e-2, warmup_steps=25)
        values.update(changes)
        return cls(**values)

    def params(self) -> dict:
        """Plain parameters (JSON-ready), hashed into the cache key."""
        values = asdict(self)
        values["block_out_channels"] = list(self.block_out_channels)
        return values


@dataclass(frozen=True)
class DigitData:
    """Training columns ``X (64, n)``, the unique images ``unique (64, n_unique)`` behind them,
    which unique images are duplicated, their digit classes, and each column's unique index.

    Returned by `digit_training_set`.
    """

    X: np.ndarray
    unique: np.ndarray
    duplicated: np.ndarray
    labels: np.ndarray
    source: np.ndarray


def digit_training_set(config: DDPMConfig) -> DigitData:
    """``n_single`` digits once and ``n_duplicated`` digits ``copies`` times, in [−1, 1].

    The ``n_single + n_duplicated`` distinct images are drawn from all 1797 digits of
    ``sklearn.datasets.load_digits`` with ``data_seed``; the duplicated ones are the last.

    >>> data = digit_training_set(DDPMConfig.fast(n_single=5, n_duplicated=2, copies=3))
    >>> data.X.shape, data.unique.shape, data.duplicated.tolist()   # 5 + 2·3 columns, 7 distinct digits
    ((64, 11), (64, 7), [False, False, False, False, False, True, True])
    """
    from numerics.images import digits

    n_single = positive_int("n_single", config.n_single, minimum=0)
    n_dup = positive_int("n_duplicated", config.n_duplicated, minimum=0)
    copies = positive_int("copies", config.copies)
    if n_single + n_dup < 2:
        raise ValueError("n_single + n_duplicated must be >= 2 (the memorisation rule needs "
                         f"two training images); got {n_single + n_dup}")
    data = digits()
    pool, labels = data.X, data.labels
    chosen = np.random.default_rng(config.data_seed).permutation(pool.shape[1])[:n_single + n_dup]
    unique, labels = pool[:, chosen], labels[chosen]
    source = np.concatenate([np.arange(n_single), np.repeat(np.arange(n_single, n_single + n_dup), copies)])
    duplicated = np.arange(n_single + n_dup) >= n_single
    return DigitData(X=unique[:, source], unique=unique, duplicated=duplicated, labels=labels, source=source)


def build_unet(config: DDPMConfig):
    """The untrained ``UNet2DModel`` of ``config`` (initialised from ``train_seed``).

    >>> unet = build_unet(DDPMConfig.fast())
    >>> type(unet).__name__, unet.config.sample_size, unet.config.block_out_channels
    ('UNet2DModel', 8, (8, 16))
    """
    torch = require_torch()
    from diffusers import UNet2DModel

    blocks = len(config.block_out_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train_seed)
        return UNet2DModel(sample_size=SIDE, in_channels=1, out_channels=1,
                           block_out_channels=tuple(config.block_out_channels), layers_per_block=1,
                           down_block_types=("DownBlock2D",) * blocks, up_block_types=("UpBlock2D",) * blocks,
                           norm_num_groups=config.norm_num_groups, add_attention=False)


def _scheduler(config: DDPMConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule)


@dataclass
class TrainedDDPM:
    """A trained UNet (eval mode), its DDPM scheduler, the training data and how it was made.

    Returned by `train_ddpm`.
    """

    model: object
    scheduler: object
    data: DigitData
    config: DDPMConfig
    losses: np.ndarray
    seconds: float
    from_cache: bool
    key: str = field(default="")

    @property
    def n_parameters(self) -> int:
        """Number of trainable numbers in the UNet."""
        return int(sum(p.numel() for p in self.model.parameters()))


def cache_key(config: DDPMConfig) -> str:
    """Hash of every parameter, the code version and the torch / diffusers versions.

    >>> key = cache_key(DDPMConfig.fast())
    >>> len(key), key == cache_key(DDPMConfig.fast()), key == cache_key(DDPMConfig.fast(train_seed=1))
    (16, True, False)
    """
    torch = require_torch()
    import diffusers

    return fingerprint(**config.params(), cache_version=CACHE_VERSION, torch=torch.__version__,
                       diffusers=diffusers.__version__)


def _learning_rate(config: DDPMConfig, step: int) -> float:
    """Linear warm-up to ``learning_rate``, then cosine decay to 0 at ``train_steps``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(config.train_steps - config.warmup_steps, 1)
    return 0.5 * config.learning_rate * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _state_arrays(model, optimizer, generator) -> dict:
    arrays = {f"model.{k}": v.detach().numpy().copy() for k, v in model.state_dict().items()}
    for i, param in enumerate(model.parameters()):
        for key, value in optimizer.state.get(param, {}).items():
            arrays[f"adam.{i}.{key}"] = value.detach().numpy().copy()
    arrays["generator"] = generator.get_state().numpy().copy()
    return arrays


def _load_state(arrays: dict, model, optimizer, generator, torch) -> None:
    model.load_state_dict({k[6:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("model.")})
    if optimizer is not None:
        for i, param in enumerate(model.parameters()):
            state = {key.split(".", 2)[2]: torch.from_numpy(value).clone()
                     for key, value in arrays.items() if key.startswith(f"adam.{i}.")}
            if state:
                optimizer.state[param] = state
    if generator is not None:
        generator.set_state(torch.from_numpy(arrays["generator"]))


def train_ddpm(config: DDPMConfig = DDPMConfig(), *, cache: str | None = None, threads: int | None = 1,
               checkpoint_every: int = 500, callback=None, progress=None) -> TrainedDDPM:
    """Train the DDPM of ``config`` (ε-prediction MSE, Adam), or load it from ``cache``.

    With a ``cache`` folder the finished weights are stored as ``unet_ddpm-KEY`` (KEY hashes
    every parameter, `CACHE_VERSION` and the torch/diffusers versions), and a resumable
    state (weights, Adam moments, the batch generator) every ``checkpoint_every`` steps;
    an interrupted run resumes from it and ends with the same weights as an uninterrupted
    one. ``callback(step, loss)`` is called after each step (an exception stops training;
    the last resumable state stays on disk). ``threads`` torch threads are used (1: fastest
    for a model this small).

    >>> tiny = DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=10, batch_size=8)
    >>> trained = train_ddpm(tiny)
    >>> trained.losses.shape, 10_000 < trained.n_parameters < 100_000
    ((10,), True)
    >>> sample(trained, 3, steps=4).shape
    (64, 3)
    """
    torch = require_torch()
    steps = positive_int("train_steps", config.train_steps)
    batch = positive_int("batch_size", config.batch_size)
    checkpoint_every = positive_int("checkpoint_every", checkpoint_every)
    positive("learning_rate", config.learning_rate)
    positive_int("warmup_steps", config.warmup_steps, minimum=0)
    data = digit_training_set(config)
    key = cache_key(config)
    name = f"unet_ddpm-{key}"
    model, scheduler = build_unet(config), _scheduler(config)
    saved = load_checkpoint(cache, name) if cache else None
    if saved is not None:
        arrays, meta = saved
        _load_state(arrays, model, None, None, torch)
        return TrainedDDPM(model.eval(), scheduler, data, config, np.asarray(meta["losses"]),
                           float(meta["seconds"]), True, key)
    with torch_threads(threads):
        losses, seconds = _optimise(model, scheduler, data, config, steps, batch, cache, name,
                                    checkpoint_every, callback, progress, torch)
    if cache:
        arrays = {f"model.{k}": v.detach().numpy() for k, v in model.state_dict().items()}
        save_checkpoint(cache, name, arrays, dict(params=config.params(), key=key, losses=losses,
                                                  seconds=seconds, n_parameters=_count(model)))
        for suffix in (".npz", ".json"):
            partial = os.path.join(cache, name + "-partial" + suffix)
            if os.path.exists(partial):
                os.remove(partial)
    return TrainedDDPM(model.eval(), scheduler, data, config, np.asarray(losses), seconds, False, key)


def _count(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _optimise(model, scheduler, data, config, steps, batch, cache, name, every, callback, progress, torch):
    """The training loop; resumes from ``NAME-partial`` in ``cache`` when present."""
    images = torch.tensor(to_images(data.X), dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.train_seed)
    start, losses, seconds = 0, [], 0.0
    partial = load_checkpoint(cache, name + "-partial") if cache else None
    if partial is not None:
        arrays, meta = partial
        _load_state(arrays, model, optimizer, generator, torch)
        start, losses, seconds = int(meta["step"]), list(meta["losses"]), float(meta["seconds"])
    model.train()
    began = time.perf_counter() - seconds
    with progress_bar(progress, total=steps, initial=start, desc="DDPM training") as bar:
        for step in range(start, steps):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(config, step)
            x0 = images[torch.randint(0, images.shape[0], (batch,), generator=generator)]
            noise = torch.randn(x0.shape, generator=generator)
            t = torch.randint(0, config.num_train_timesteps, (batch,), generator=generator)
            loss = torch.mean((model(scheduler.add_noise(x0, noise, t), t).sample - noise) ** 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            bar.update(1)
            if cache and (step + 1) % every == 0 and step + 1 < steps:
                save_checkpoint(cache, name + "-partial", _state_arrays(model, optimizer, generator),
                                dict(step=step + 1, losses=losses, seconds=time.perf_counter() - began))
            if callback is not None:
                callback(step, losses[-1])
    model.eval()
    return losses, time.perf_counter() - began


# ----------------------------------------------------------------------------- images and sampling


def to_images(X) -> np.ndarray:
    """Columns ``(64, m)`` → a batch ``(m, 1, 8, 8)`` (row-major pixels), float64.

    >>> to_images(np.zeros((64, 3))).shape
    (3, 1, 8, 8)
    """
    X = as_matrix("X", X, rows=SIDE * SIDE, cols_name="m")
    return X.T.reshape(-1, 1, SIDE, SIDE).copy()


def _columns(batch) -> np.ndarray:
    """A torch batch ``(m, 1, 8, 8)`` → float64 columns ``(64, m)``."""
    return batch.detach().double().reshape(batch.shape[0], -1).numpy().T.copy()


def sample(trained: TrainedDDPM, n: int, *, seed: int = 0, steps: int = 50) -> np.ndarray:
    """``n`` images ``(64, n)`` by deterministic DDIM (η = 0) in ``steps`` steps, clipped to [−1, 1].

    The model is called once per step (so `numerics.hooks.steer(..., steps=...)` counts
    denoising steps); the initial noise comes from ``seed`` alone.

    >>> trained = train_ddpm(DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=2, batch_size=8))
    >>> images = sample(trained, 3, steps=4)                 # (64, n): one 8 × 8 image per column
    >>> images.shape, bool(images.min() >= -1 and images.max() <= 1), np.array_equal(images, sample(trained, 3, steps=4))
    ((64, 3), True, True)
    """
    torch = require_torch()
    from diffusers import DDIMScheduler

    n, steps = positive_int("n", n), positive_int("steps", steps)
    ddim = DDIMScheduler.from_config(trained.scheduler.config)
    ddim.set_timesteps(steps)
    x = torch.randn((n, 1, SIDE, SIDE), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for t in ddim.timesteps:
            x = ddim.step(trained.model(x, t).sample, t, x).prev_sample
    return np.clip(_columns(x), -1.0, 1.0)


def noised(trained: TrainedDDPM, X, t: int, *, seed: int = 0):
    """``x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε`` for the columns of X, as a float32 batch ``(m, 1, 8, 8)``,
    with the noise ``ε`` drawn from ``seed`` (returned too).

    >>> trained = train_ddpm(DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=2, batch_size=8))
    >>> x_t, eps, timesteps = noised(trained, np.zeros((64, 2)), t=500)   # x₀ = 0: x_t = √(1 − ᾱ_t) ε
    >>> alpha_bar = float(trained.scheduler.alphas_cumprod[500])
    >>> tuple(x_t.shape), timesteps.tolist(), np.allclose(x_t.numpy(), (1 - alpha_bar) ** 0.5 * eps.numpy())
    ((2, 1, 8, 8), [500, 500], True)
    """
    torch = require_torch()
    t = positive_int("t", t, minimum=0)
    if t >= trained.scheduler.config.num_train_timesteps:
        raise ValueError(f"t must be < {trained.scheduler.config.num_train_timesteps}; got {t}")
    x0 = torch.tensor(to_images(X), dtype=torch.float32)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    timesteps = torch.full((x0.shape[0],), t, dtype=torch.long)
    return trained.scheduler.add_noise(x0, noise, timesteps), noise, timesteps
