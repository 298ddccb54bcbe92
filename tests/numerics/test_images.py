"""Tests for numerics.images: offline image sets load without the network, in [−1, 1], seeded, as one type;
centring and the selections that bring real data towards the theory's assumptions."""
from __future__ import annotations

import itertools
import socket

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.data import separability
from numerics.images import (Images, camera_patches, centred, digits, faces, largest_cosine, least_correlated,
                             most_obtuse_classes, resize_columns)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a data loader tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_faces(no_network):
    data = faces()
    X = data.X
    assert X.shape == (625, 100) and X.dtype == np.float64 and data.shape == (25, 25) and data.labels is None
    assert X.min() >= -1 and X.max() <= 1 and X.min() < -0.5 and X.max() > 0.5
    Xs = faces(n=10, seed=3, size=32).X
    assert Xs.shape == (1024, 10) and Xs.min() >= -1 and Xs.max() <= 1
    np.testing.assert_array_equal(Xs, faces(n=10, seed=3, size=32).X)
    assert not np.array_equal(faces(n=10, seed=3).X, faces(n=10, seed=4).X)
    # resizing to the same size is the identity; a 32×32 face keeps the 25×25 face's mean
    np.testing.assert_allclose(resize_columns(X[:, :2], (25, 25), (25, 25)), X[:, :2])
    assert abs(Xs.mean() - faces(n=10, seed=3).X.mean()) < 0.02


def test_digits(no_network):
    data = digits()
    assert data.X.shape == (64, 1797) and data.labels.shape == (1797,) and data.shape == (8, 8)
    assert data.X.min() == -1.0 and data.X.max() == 1.0
    subset = digits(n=20, classes=[0, 1], seed=2)
    assert subset.X.shape == (64, 20) and set(subset.labels.tolist()) <= {0, 1}
    np.testing.assert_array_equal(subset.X, digits(n=20, classes=[0, 1], seed=2).X)


def test_camera_patches(no_network):
    P = camera_patches(size=8, n=50, seed=1)
    assert P.X.shape == (64, 50) and P.X.min() >= -1 and P.X.max() <= 1 and P.shape == (8, 8)
    np.testing.assert_array_equal(P.X, camera_patches(size=8, n=50, seed=1).X)
    assert not np.array_equal(P.X, camera_patches(size=8, n=50, seed=2).X)


@pytest.mark.parametrize("load", [lambda: faces(n=3), lambda: digits(n=3), lambda: camera_patches(size=5, n=3)],
                         ids=["faces", "digits", "camera_patches"])
def test_every_loader_returns_images(load):
    """One return type: X (d, n), labels (n,) or None, and the image shape with rows·columns = d."""
    data = load()
    assert isinstance(data, Images)
    assert data.X.shape == (data.d, data.n) == (int(np.prod(data.shape)), 3)
    assert data.labels is None or data.labels.shape == (data.n,)
    np.testing.assert_array_equal(data.image(1).ravel(), data.X[:, 1])
    assert isinstance(data.source, str) and data.source


def test_image_arguments_are_checked():
    with pytest.raises(ValueError, match="n must be <= 100"):
        faces(n=101)
    with pytest.raises(ValueError, match="classes"):
        digits(classes=[10])
    with pytest.raises(ValueError, match="size"):
        camera_patches(size=0)
    with pytest.raises(TypeError, match="seed"):
        faces(seed="a")
    with pytest.raises(ValueError, match="new_shape"):
        resize_columns(np.zeros((4, 1)), (2, 2), (3,))
    with pytest.raises(ValueError, match="zero column"):
        largest_cosine(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="n must be <= 2"):
        least_correlated(np.eye(2), 3)
    with pytest.raises(ValueError, match="k must be <= 2"):
        most_obtuse_classes(np.eye(2), [0, 1], 3)
    with pytest.raises(ValueError, match="max_combinations"):
        most_obtuse_classes(np.eye(12), np.arange(12), 6, max_combinations=100)
    with pytest.raises(ValueError, match="origin"):
        centred(np.eye(3), origin=np.ones(2))


def test_centred_has_zero_mean_and_accepts_an_origin():
    X = np.random.default_rng(0).normal(size=(5, 7)) + 3.0
    # the mean of n numbers of size ~3 is exact to a few ulps: 1e-14 is ~50 ulps of 3
    np.testing.assert_allclose(centred(X).mean(axis=1), 0.0, atol=1e-14)
    origin = np.arange(5.0)
    np.testing.assert_array_equal(centred(X, origin), X - origin[:, None])


def brute_force_beta1(X, subset) -> float:
    unit = X[:, subset] / np.linalg.norm(X[:, subset], axis=0)
    return max(float(unit[:, a] @ unit[:, b]) for a, b in itertools.combinations(range(len(subset)), 2))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), N=st.integers(3, 9), n=st.integers(2, 4))
def test_least_correlated_never_worse_than_the_greedy_from_any_start(seed, N, n):
    """The chosen set's β1 is that of one greedy run, and no greedy run from another start does better
    (an independent, loop-by-loop greedy as the oracle)."""
    n = min(n, N)
    X = np.random.default_rng(seed).normal(size=(4, N))
    chosen = least_correlated(X, n)
    unit = X / np.linalg.norm(X, axis=0)
    cosine = unit.T @ unit
    runs = []
    for start in range(N):
        subset = [start]
        while len(subset) < n:
            rest = [j for j in range(N) if j not in subset]
            subset.append(min(rest, key=lambda j: max(cosine[j, s] for s in subset)))
        runs.append(brute_force_beta1(X, subset))
    # same float operations up to summation order in the dot products: 1e-12 absolute on cosines
    assert abs(brute_force_beta1(X, list(chosen)) - min(runs)) <= 1e-12
    assert len(set(chosen.tolist())) == n and list(chosen) == sorted(chosen)


def test_least_correlated_centred_faces_reach_negative_beta1():
    """Raw faces are positively correlated; about their mean the 5 least correlated are pairwise obtuse."""
    X = faces(size=16).X
    raw = X[:, least_correlated(X, 5)]
    about_mean = centred(X)[:, least_correlated(centred(X), 5)]
    assert largest_cosine(raw) > 0 > largest_cosine(about_mean)


def test_most_obtuse_classes_is_the_exhaustive_optimum_on_centred_digits():
    data = digits()
    X = centred(data.X)
    best = most_obtuse_classes(X, data.labels, 3)
    assert best == (2, 4, 9)
    beta = separability(X[:, np.isin(data.labels, best)], data.labels[np.isin(data.labels, best)]).beta
    # independent check through numerics.data.separability over every triple
    for triple in itertools.combinations(range(10), 3):
        keep = np.isin(data.labels, triple)
        assert separability(X[:, keep], data.labels[keep]).beta >= beta - 1e-12
    assert beta < 0
    # raw digits: every class mean lies along the mean digit, no triple is obtuse
    raw = most_obtuse_classes(data.X, data.labels, 3)
    keep = np.isin(data.labels, raw)
    assert separability(data.X[:, keep], data.labels[keep]).beta > 0
