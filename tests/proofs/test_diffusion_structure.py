"""The diffusion-structure proof check: its measurements on hand-built models and its attribution.

Its verdict is tested with every registered check in ``tests/proofs/test_proofs.py`` (slow).
"""
from __future__ import annotations

import numpy as np
import pytest

from numerics.multinoise import MultiNoiseDAE
from proofs.diffusion_structure import SIGMAS, compare, group_maps, shape_and_scale
from proofs.record import CHECKS, CONFIRMED, DERIVED


def _exclusive_model(gain_slope):
    """Two neurons, each on for one of two antipodal samples; gains exp(gain_slope·log σ + c)."""
    W = np.array([[1.0, -1.0], [0.0, 0.0]])
    model = MultiNoiseDAE(W=W, s=0.0, A1=np.array([1.0, 1.0]), b1=np.array([10.0, 10.0]),
                          A2=np.diag([gain_slope, 2 * gain_slope]), b2=np.zeros(2))
    return model, np.array([[2.0, -2.0], [1.0, 1.0]])


def test_group_maps_follow_the_gains_and_flag_mixed_neurons():
    model, X = _exclusive_model(-0.1)
    masks, maps, mixed = group_maps(model, X, [np.array([0]), np.array([1])])
    assert [m.tolist() for m in masks] == [[True, False], [False, True]] and mixed == 0
    g = model.gains(SIGMAS[3])
    np.testing.assert_allclose(maps[0][3], g[0] * np.outer(model.W[:, 0], model.W[:, 0]), rtol=1e-15)
    model.W[:, 1] = [0.0, 1.0]                     # now on for both samples
    assert group_maps(model, X, [np.array([0]), np.array([1])])[2] == 1


def test_shape_and_scale_separates_scaling_from_reshaping():
    base = np.diag([1.0, 0.5])
    scaled = [c * base for c in np.linspace(2.0, 1.0, 5)]
    summary = shape_and_scale(scaled)
    assert summary["shape_change"] < 1e-15 and summary["decreasing"]
    assert summary["scale_ratio"] == pytest.approx(2.0, rel=1e-15)
    reshaped = [np.diag([1.0, t]) for t in np.linspace(0.1, 1.0, 5)]
    summary = shape_and_scale(reshaped)
    assert summary["shape_change"] > 0.3 and not summary["decreasing"]


def test_compare_against_a_theory_map_that_matches():
    """A model whose per-sample map is the 'theory' at every σ: distance zero, shapes equal."""
    model, X = _exclusive_model(-0.1)

    def theory(group, sigma, rank):
        return group_maps(model, X, [group], np.array([sigma]))[1][0][0]

    result = compare(model, X, [np.array([0]), np.array([1])], theory, 1)
    for group in result["groups"]:
        assert group["max_theory_distance"] < 1e-15 and group["max_range_angle"] < 1e-7
        assert group["trained"]["decreasing"] and group["trained"]["shape_change"] < 1e-15


def test_the_claim_is_labelled_as_our_reading():
    """No printed words of the paper are quoted for the diffusion extension: our own reading."""
    check = CHECKS["diffusion_structure"]
    assert check.source == DERIVED and not check.quote
    assert check.expected == CONFIRMED and check.slow     # its verdict: tests/proofs/test_proofs.py (≈ 40 s)
