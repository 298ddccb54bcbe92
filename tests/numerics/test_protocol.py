"""The authors' protocol in NumPy: torch semantics, the λ = d·wd/2 mapping, resumable runs."""
from __future__ import annotations

import numpy as np
import pytest

from numerics.objective import expected_loss_and_grad
from numerics.protocol import (
    SGD,
    Adam,
    AdamW,
    RMSprop,
    lambda_from_weight_decay,
    make_optimizer,
    minibatch_mse_and_grad,
    torch_default_init,
    train_protocol,
    weight_decay_from_lambda,
)


def _data(d=5, n=7, seed=0):
    return np.random.default_rng(seed).normal(size=(d, n))


# ----------------------------------------------------------------------------- mapping


def test_weight_decay_mapping_values_and_inverse():
    assert lambda_from_weight_decay(1e-2, d=1024, tied=False) == pytest.approx(5.12)
    assert lambda_from_weight_decay(1e-2, d=1024, tied=True) == pytest.approx(2.56)
    # λ = d·wd/4 (tied) or d·wd/2: one multiplication and one division each way, so the round
    # trip is exact to a couple of ulps (1e-15 relative)
    for tied in (True, False):
        lam = lambda_from_weight_decay(3e-4, d=37, tied=tied)
        assert weight_decay_from_lambda(lam, d=37, tied=tied) == pytest.approx(3e-4, rel=1e-15)


@pytest.mark.parametrize("tied", [True, False])
def test_torch_step_direction_is_eq6_gradient_over_d(tied):
    """E[∇ℓ + wd·θ] = (1/d) ∇L_eq6(λ = mapped λ): Monte-Carlo mean vs the exact gradient.

    Tolerance: the MC mean over K draws has per-entry standard errors s_e (estimated from
    the draws); the squared error norm should be about Σ s_e², we allow 3²·Σ s_e² + slack.
    """
    d, n, p, sigma, wd = 5, 6, 3, 0.4, 0.05
    X = _data(d, n, 1)
    rng = np.random.default_rng(2)
    W1 = rng.normal(size=(d, p)) / np.sqrt(d)
    W2 = W1 if tied else rng.normal(size=(d, p)) / np.sqrt(d)
    lam = lambda_from_weight_decay(wd, d, tied=tied)
    K = 4000
    draws = []
    for _ in range(K):
        _, grads = minibatch_mse_and_grad(W1, W2, X, rng.standard_normal((d, n)), sigma, tied)
        draws.append(np.concatenate([g.ravel() + wd * w.ravel()
                                     for g, w in zip(grads, [W1] if tied else [W1, W2])]))
    draws = np.array(draws)
    mean = draws.mean(axis=0)
    se2 = draws.var(axis=0, ddof=1) / K
    _, g1, g2 = expected_loss_and_grad(W1, W2, X, sigma, lam)
    exact = ((g1 + g2).ravel() if tied else np.concatenate([g1.ravel(), g2.ravel()])) / d
    assert np.sum((mean - exact) ** 2) <= 9.0 * se2.sum() + 1e-20


@pytest.mark.parametrize("tied", [True, False])
def test_minibatch_gradient_matches_finite_differences(tied):
    d, B, p, sigma = 4, 5, 3, 0.3
    rng = np.random.default_rng(3)
    X = rng.normal(size=(d, B))
    noise = rng.standard_normal((d, B))
    W1 = rng.normal(size=(d, p))
    W2 = W1 if tied else rng.normal(size=(d, p))
    _, grads = minibatch_mse_and_grad(W1, W2, X, noise, sigma, tied)
    params = [W1] if tied else [W1, W2]
    h = 1e-6
    for which, (W, g) in enumerate(zip(params, grads)):
        numeric = np.zeros_like(W)
        for idx in np.ndindex(W.shape):
            shifted = []
            for sign in (1.0, -1.0):
                copies = [w.copy() for w in params]
                copies[which][idx] += sign * h
                A1, A2 = (copies[0], copies[0]) if tied else copies
                shifted.append(minibatch_mse_and_grad(A1, A2, X, noise, sigma, tied)[0])
            numeric[idx] = (shifted[0] - shifted[1]) / (2 * h)
        # Central differences: O(h²) truncation + O(1e-16/h) rounding ≈ 1e-9 relative.
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- optimisers


def _reference_adam(theta, grads, lr, betas, eps, wd):
    """Element-wise loop transcribing torch.optim.Adam's documented algorithm."""
    theta = theta.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        for i in range(theta.size):
            gi = g[i] + wd * theta[i]
            m[i] = betas[0] * m[i] + (1 - betas[0]) * gi
            v[i] = betas[1] * v[i] + (1 - betas[1]) * gi * gi
            m_hat = m[i] / (1 - betas[0] ** t)
            v_hat = v[i] / (1 - betas[1] ** t)
            theta[i] -= lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


def _reference_rmsprop(theta, grads, lr, alpha, eps, wd):
    """Element-wise loop transcribing torch.optim.RMSprop's documented algorithm."""
    theta = theta.copy()
    s = np.zeros_like(theta)
    for g in grads:
        for i in range(theta.size):
            gi = g[i] + wd * theta[i]
            s[i] = alpha * s[i] + (1 - alpha) * gi * gi
            theta[i] -= lr * gi / (np.sqrt(s[i]) + eps)
    return theta


def test_adam_and_rmsprop_match_reference_loops():
    rng = np.random.default_rng(4)
    theta = rng.normal(size=6)
    grads = [rng.normal(size=6) * 10.0 ** rng.uniform(-9, 1) for _ in range(7)]
    adam = Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    w = theta.copy()
    for g in grads:
        adam.step([w], [g])
    np.testing.assert_allclose(w, _reference_adam(theta, grads, 1e-3, (0.9, 0.999), 1e-8, 1e-2),
                               rtol=1e-13, atol=1e-15)
    rms = RMSprop(lr=1e-3, alpha=0.99, eps=1e-8, weight_decay=1e-2)
    w = theta.copy()
    for g in grads:
        rms.step([w], [g])
    np.testing.assert_allclose(w, _reference_rmsprop(theta, grads, 1e-3, 0.99, 1e-8, 1e-2),
                               rtol=1e-13, atol=1e-15)


def test_optimisers_match_torch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    theta = rng.normal(size=(3, 2))
    grads = [rng.normal(size=(3, 2)) for _ in range(5)]
    for ours, theirs in ((Adam(lr=1e-2, weight_decay=0.1), lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.1)),
                         (RMSprop(lr=1e-2, weight_decay=0.1), lambda p: torch.optim.RMSprop(p, lr=1e-2, weight_decay=0.1)),
                         (AdamW(lr=1e-2, weight_decay=0.1), lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1)),
                         (SGD(lr=1e-2, momentum=0.9, weight_decay=0.1),
                          lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, weight_decay=0.1))):
        w = theta.copy()
        param = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))
        opt = theirs([param])
        for g in grads:
            ours.step([w], [g])
            param.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
        np.testing.assert_allclose(w, param.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("tied", [True, False])
def test_minibatch_loss_and_gradient_match_torch_when_installed(tied):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    d, B, p = 6, 5, 3
    X, E = rng.normal(size=(d, B)), rng.normal(size=(d, B))
    W1, W2 = rng.normal(size=(d, p)), rng.normal(size=(d, p))
    a = torch.tensor(W1, requires_grad=True)
    b = a if tied else torch.tensor(W2, requires_grad=True)
    x = torch.tensor(X.T)
    out = torch.relu((x + 0.3 * torch.tensor(E.T)) @ a) @ b.T
    loss = torch.nn.MSELoss()(out, x)
    loss.backward()
    ours, grads = minibatch_mse_and_grad(W1, W1 if tied else W2, X, E, 0.3, tied)
    # the same float64 arithmetic in another order (torch vs NumPy matmuls): rounding only
    assert ours == pytest.approx(loss.item(), rel=1e-14)
    np.testing.assert_allclose(grads[0], a.grad.numpy(), rtol=1e-12, atol=1e-15)
    if not tied:
        np.testing.assert_allclose(grads[1], b.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_adamw_and_sgd_follow_their_update_rules():
    """AdamW = decoupled shrink then Adam without decay; SGD with momentum = torch's buffer recursion."""
    rng = np.random.default_rng(9)
    theta = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) for _ in range(4)]
    w, reference = theta.copy(), theta.copy()
    adamw, adam = AdamW(lr=1e-2, weight_decay=0.1), Adam(lr=1e-2)
    for g in grads:
        adamw.step([w], [g])
        reference *= 1 - 1e-2 * 0.1
        adam.step([reference], [g])
    np.testing.assert_allclose(w, reference, rtol=1e-14, atol=1e-15)
    w, buffer, manual = theta.copy(), None, theta.copy()
    sgd = SGD(lr=0.1, momentum=0.5, weight_decay=0.2)
    for g in grads:
        sgd.step([w], [g])
        direction = g + 0.2 * manual
        buffer = direction if buffer is None else 0.5 * buffer + direction
        manual = manual - 0.1 * buffer
    np.testing.assert_allclose(w, manual, rtol=1e-14, atol=1e-15)


def test_make_optimizer_rejects_unknown_names():
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer("lbfgs", 1e-3)
    with pytest.raises(ValueError, match="lr"):
        make_optimizer("adam", -1.0)


# ----------------------------------------------------------------------------- the loop


def test_torch_default_init_bounds_and_tying():
    W1, W2 = torch_default_init(16, 4, tied=False, seed=0)
    assert np.abs(W1).max() <= 1 / 4 and np.abs(W2).max() <= 1 / 2
    W1, W2 = torch_default_init(16, 4, tied=True, seed=0)
    assert W1 is W2


@pytest.mark.parametrize("optimizer,batch", [("rmsprop", None), ("adam", 3)])
def test_protocol_is_deterministic_and_resumes_exactly(tmp_path, optimizer, batch):
    X = _data(5, 8, 6)
    kwargs = dict(optimizer=optimizer, lr=1e-2, weight_decay=1e-3, batch_size=batch, seed=7,
                  exact_loss=False, record_every=5)
    straight = train_protocol(X, 3, 0.2, steps=40, **kwargs)
    again = train_protocol(X, 3, 0.2, steps=40, **kwargs)
    np.testing.assert_array_equal(straight.W1, again.W1)
    first = train_protocol(X, 3, 0.2, steps=17, checkpoint=(str(tmp_path), "run"), **kwargs)
    assert first.steps == 17
    resumed = train_protocol(X, 3, 0.2, steps=40, checkpoint=(str(tmp_path), "run"), **kwargs)
    np.testing.assert_array_equal(resumed.W1, straight.W1)
    np.testing.assert_array_equal(resumed.history_loss, straight.history_loss)


def test_protocol_lowers_the_exact_loss_and_reports_it():
    X = 2.0 * np.linalg.qr(np.random.default_rng(8).normal(size=(6, 3)))[0]
    run = train_protocol(X, 4, 0.2, optimizer="adam", lr=1e-2, weight_decay=1e-3, steps=400,
                         seed=0, tied=False)
    W1, W2 = torch_default_init(6, 4, tied=False,
                                seed=np.random.default_rng(np.random.SeedSequence(0).spawn(2)[0]))
    from numerics.objective import expected_loss

    start = expected_loss(W1, W2, X, 0.2, run.lam)
    assert run.exact_loss < 0.5 * start
    assert run.lam == pytest.approx(lambda_from_weight_decay(1e-3, 6, tied=False))


def test_protocol_validates_arguments():
    X = _data()
    with pytest.raises(ValueError, match="batch_size"):
        train_protocol(X, 2, 0.1, batch_size=0, steps=1)
    with pytest.raises(ValueError, match="X"):
        train_protocol(np.ones(3), 2, 0.1, steps=1)
    with pytest.raises(ValueError, match="sigma"):
        train_protocol(X, 2, -0.1, steps=1)
