"""The authors' multi-noise protocol in NumPy: its gradient, the λ = d·wd/2 mapping, torch, resuming."""
from __future__ import annotations

import numpy as np
import pytest

from numerics.multinoise import FIELDS, MultiNoiseDAE
from numerics.multinoise_objective import decay_from_weight_decay, multinoise_loss_and_grad
from numerics.multinoise_protocol import (PROTOCOLS, DropLastBatches, minibatch_loss_and_grad,
                                          train_multinoise_protocol)
from numerics.protocol import make_optimizer


def _model(rng, d=4, p=3):
    return MultiNoiseDAE(W=rng.normal(size=(d, p)) / np.sqrt(d), s=0.3, A1=rng.normal(size=p), b1=rng.normal(size=p),
                         A2=0.5 * rng.normal(size=(p, p)), b2=0.2 * rng.normal(size=p))


def test_minibatch_gradient_matches_central_differences():
    rng = np.random.default_rng(0)
    model = _model(rng)
    X, noise = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    log_sigma = rng.uniform(np.log(0.02), np.log(2.0), size=5)
    _, grads = minibatch_loss_and_grad(model, X, noise, log_sigma)
    theta, h = model.pack(), 1e-6
    numeric = np.array([(minibatch_loss_and_grad(MultiNoiseDAE.unpack(theta + h * e, 4, 3), X, noise, log_sigma)[0]
                         - minibatch_loss_and_grad(MultiNoiseDAE.unpack(theta - h * e, 4, 3), X, noise, log_sigma)[0])
                        / (2 * h) for e in np.eye(theta.size)])
    # central differences: O(h²·f''') truncation + O(ε·f/h) rounding ≈ 1e-9 at these scales
    np.testing.assert_allclose(grads.pack(), numeric, rtol=1e-6, atol=1e-8)


def test_torch_step_direction_is_the_exact_gradient_over_d():
    """E[∇ℓ + wd·θ] = (1/d) ∇L_exact with λ = d·wd/2: Monte-Carlo mean against the exact gradient.

    Tolerance: the mean of K draws has per-entry standard errors s_e (from the draws); its
    squared error is about Σ s_e², a 3σ bound in norm is 9·Σ s_e² (as in the single-σ test).
    """
    rng = np.random.default_rng(1)
    d, n, wd = 4, 5, 0.05
    model, X = _model(rng, d), rng.normal(size=(d, n))
    K = 4000
    draws = np.empty((K, model.size))
    theta = model.pack()
    for k in range(K):
        log_sigma = rng.uniform(np.log(0.02), np.log(2.0), size=n)
        _, grads = minibatch_loss_and_grad(model, X, rng.standard_normal((d, n)), log_sigma)
        draws[k] = grads.pack() + wd * theta
    mean, se2 = draws.mean(axis=0), draws.var(axis=0, ddof=1) / K
    _, exact = multinoise_loss_and_grad(model, X, lam=decay_from_weight_decay(wd, d))
    assert np.sum((mean - exact.pack() / d) ** 2) <= 9.0 * se2.sum()


def test_drop_last_batches_cover_each_epoch_once():
    batches = DropLastBatches(10, 3, np.random.default_rng(2))
    epoch = np.concatenate([batches.next() for _ in range(3)])
    assert len(set(epoch.tolist())) == 9                         # the 10th sample is dropped
    assert DropLastBatches(4, 256, np.random.default_rng(0)).next().size == 4


@pytest.mark.parametrize("protocol", ["memorise", "generalise"])
def test_protocol_is_deterministic_and_resumes_exactly(tmp_path, protocol):
    X = np.random.default_rng(3).normal(size=(5, 8))
    kwargs = dict(PROTOCOLS[protocol], batch_size=3 if protocol == "generalise" else None, seed=4, exact_loss=False,
                  record_every=5)
    straight = train_multinoise_protocol(X, 3, steps=30, **kwargs)
    again = train_multinoise_protocol(X, 3, steps=30, **kwargs)
    np.testing.assert_array_equal(straight.model.pack(), again.model.pack())
    first = train_multinoise_protocol(X, 3, steps=11, checkpoint=(str(tmp_path), "run"), **kwargs)
    assert first.steps == 11
    resumed = train_multinoise_protocol(X, 3, steps=30, checkpoint=(str(tmp_path), "run"), **kwargs)
    np.testing.assert_array_equal(resumed.model.pack(), straight.model.pack())
    np.testing.assert_array_equal(resumed.history_loss, straight.history_loss)


def test_protocol_validates_arguments(tmp_path):
    X = np.ones((4, 3))
    with pytest.raises(ValueError, match="batch_size"):
        train_multinoise_protocol(X, 2, batch_size=0, steps=1)
    with pytest.raises(ValueError, match="sigma_max"):
        train_multinoise_protocol(X, 2, sigma_min=1.0, sigma_max=0.5, steps=1)
    with pytest.raises(ValueError, match="init"):
        train_multinoise_protocol(X, 2, init=MultiNoiseDAE.initial(3, 2), steps=1)
    with pytest.raises(ValueError, match="optimizer"):
        train_multinoise_protocol(X, 2, optimizer="adagrad", steps=1)
    train_multinoise_protocol(X, 2, steps=2, exact_loss=False, checkpoint=(str(tmp_path), "run"))
    with pytest.raises(ValueError, match="another run"):
        train_multinoise_protocol(X, 2, steps=2, seed=1, exact_loss=False, checkpoint=(str(tmp_path), "run"))


# ----------------------------------------------------------------------------- against PyTorch


def _torch_dae_cond(torch, model: MultiNoiseDAE):
    """The authors' ``DAECond`` (tied encoder, multiplicative exp-MLP gains, skip), float64,
    with this model's parameters."""
    nn = torch.nn

    class DAECond(nn.Module):
        def __init__(self, d, p):
            super().__init__()
            self.encoder = nn.Linear(d, p, bias=False)
            self.skip = nn.Parameter(torch.tensor(0.0))
            self.time_mlp = nn.Sequential(nn.Linear(1, p), nn.ReLU(), nn.Linear(p, p))

        def forward(self, x_t, log_sigma):
            h = torch.relu(self.encoder(x_t)) * torch.exp(self.time_mlp(log_sigma[:, None]))
            return torch.nn.functional.linear(h, self.encoder.weight.t()) + self.skip * x_t

    net = DAECond(model.d, model.p).double()
    with torch.no_grad():
        net.encoder.weight.copy_(torch.tensor(model.W.T))
        net.skip.fill_(model.s)
        net.time_mlp[0].weight.copy_(torch.tensor(model.A1[:, None]))
        net.time_mlp[0].bias.copy_(torch.tensor(model.b1))
        net.time_mlp[2].weight.copy_(torch.tensor(model.A2))
        net.time_mlp[2].bias.copy_(torch.tensor(model.b2))
    return net


def _from_torch(net) -> MultiNoiseDAE:
    weight = net.encoder.weight.detach().numpy()
    return MultiNoiseDAE(W=weight.T.copy(), s=float(net.skip.detach()),
                         A1=net.time_mlp[0].weight.detach().numpy()[:, 0].copy(),
                         b1=net.time_mlp[0].bias.detach().numpy().copy(),
                         A2=net.time_mlp[2].weight.detach().numpy().copy(),
                         b2=net.time_mlp[2].bias.detach().numpy().copy())


def test_minibatch_loss_and_gradient_match_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    model = _model(rng, 6, 4)
    X, noise = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    log_sigma = rng.uniform(np.log(0.02), np.log(2.0), size=5)
    net = _torch_dae_cond(torch, model)
    x0 = torch.tensor(X.T)
    x_t = x0 + torch.exp(torch.tensor(log_sigma))[:, None] * torch.tensor(noise.T)
    loss = torch.nn.MSELoss()(net(x_t, torch.tensor(log_sigma)), x0)
    loss.backward()
    ours, grads = minibatch_loss_and_grad(model, X, noise, log_sigma)
    # float64 on both sides, different summation order: agreement to ~1e-14 relative
    assert ours == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(grads.W, net.encoder.weight.grad.numpy().T, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads.s, net.skip.grad.item(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads.A1, net.time_mlp[0].weight.grad.numpy()[:, 0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads.b1, net.time_mlp[0].bias.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads.A2, net.time_mlp[2].weight.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads.b2, net.time_mlp[2].bias.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("protocol", ["memorise", "generalise"])
def test_protocol_steps_match_torch_dae_cond(protocol):
    """Same initialisation, noise and optimiser: the authors' DAECond in torch and this loop.

    Five steps of RMSprop (memorise) or Adam (generalise) with weight decay on every parameter.
    Both sides run in float64; they differ by summation order only (≈1e-16 relative per
    gradient entry), which the optimisers carry to the parameters as ≈ lr·1e-14 per step,
    far inside the 1e-6 required.
    """
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    d, n, p, steps = 8, 5, 4, 5
    X = rng.normal(size=(d, n))
    model = MultiNoiseDAE.initial(d, p, seed=7)
    settings = PROTOCOLS[protocol]
    net = _torch_dae_cond(torch, model)
    torch_opt = {"rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}[settings["optimizer"]](
        net.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"])
    ours = make_optimizer(settings["optimizer"], settings["lr"], settings["weight_decay"])
    params = [np.array(getattr(model, name), dtype=np.float64) for name in FIELDS]
    for _ in range(steps):
        noise = rng.standard_normal((d, n))
        log_sigma = rng.uniform(np.log(0.02), np.log(2.0), size=n)
        current = MultiNoiseDAE(**{name: (float(a) if name == "s" else a) for name, a in zip(FIELDS, params)})
        _, grads = minibatch_loss_and_grad(current, X, noise, log_sigma)
        ours.step(params, [np.array(getattr(grads, name), dtype=np.float64) for name in FIELDS])
        x0 = torch.tensor(X.T)
        x_t = x0 + torch.exp(torch.tensor(log_sigma))[:, None] * torch.tensor(noise.T)
        torch_opt.zero_grad()
        torch.nn.MSELoss()(net(x_t, torch.tensor(log_sigma)), x0).backward()
        torch_opt.step()
    final = MultiNoiseDAE(**{name: (float(a) if name == "s" else a) for name, a in zip(FIELDS, params)})
    np.testing.assert_allclose(final.pack(), _from_torch(net).pack(), rtol=0.0, atol=1e-6)
    assert np.abs(final.pack() - model.pack()).max() > 1e-4          # the steps did move the parameters
