"""Tests for numerics.images: offline image sets load without the network, in [−1, 1], seeded."""
from __future__ import annotations

import socket

import numpy as np
import pytest

from numerics.images import camera_patches, digits, faces, resize_columns


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a data loader tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_faces(no_network):
    X = faces()
    assert X.shape == (625, 100) and X.dtype == np.float64
    assert X.min() >= -1 and X.max() <= 1 and X.min() < -0.5 and X.max() > 0.5
    Xs = faces(n=10, seed=3, size=32)
    assert Xs.shape == (1024, 10) and Xs.min() >= -1 and Xs.max() <= 1
    np.testing.assert_array_equal(Xs, faces(n=10, seed=3, size=32))
    assert not np.array_equal(faces(n=10, seed=3), faces(n=10, seed=4))
    # resizing to the same size is the identity; a 32×32 face keeps the 25×25 face's mean
    np.testing.assert_allclose(resize_columns(X[:, :2], (25, 25), (25, 25)), X[:, :2])
    assert abs(Xs.mean() - faces(n=10, seed=3).mean()) < 0.02


def test_digits(no_network):
    X, y = digits()
    assert X.shape == (64, 1797) and y.shape == (1797,)
    assert X.min() == -1.0 and X.max() == 1.0
    X01, y01 = digits(n=20, classes=[0, 1], seed=2)
    assert X01.shape == (64, 20) and set(y01.tolist()) <= {0, 1}
    np.testing.assert_array_equal(X01, digits(n=20, classes=[0, 1], seed=2)[0])


def test_camera_patches(no_network):
    P = camera_patches(size=8, n=50, seed=1)
    assert P.shape == (64, 50) and P.min() >= -1 and P.max() <= 1
    np.testing.assert_array_equal(P, camera_patches(size=8, n=50, seed=1))
    assert not np.array_equal(P, camera_patches(size=8, n=50, seed=2))


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
