"""Coordinates and continuous symmetries of the multi-noise DAE's parameters (for its certificates).

`Layout` indexes the packed vector of `numerics.multinoise.MultiNoiseDAE.pack`; `zero_sets`
finds vanishing encoder columns and gain units; `symmetry_tangents` lists tangent vectors of
the exact symmetries of the multi-noise loss (module docstring of `numerics.multinoise_certify`):
orthogonal mixing of gain units that switch together (every λ) and, with no weight decay, gain
rescalings, ReLU homogeneity, the affine redundancy of always-on units and the dead units.

>>> from numerics.multinoise import MultiNoiseDAE
>>> model = MultiNoiseDAE.initial(4, 3, seed=0)
>>> Layout(4, 3).size == model.size
True
"""
from __future__ import annotations

import numpy as np

from numerics.certify import FD_RESOLUTION
from numerics.multinoise import MultiNoiseDAE


class Layout:
    """Index sets of the packed vector (`MultiNoiseDAE.pack`) of a (k, p) model."""

    def __init__(self, k: int, p: int):
        self.k, self.p = k, p
        self.W = np.arange(k * p).reshape(k, p)
        start = k * p
        self.s = start
        self.A1 = start + 1 + np.arange(p)
        self.b1 = start + 1 + p + np.arange(p)
        self.A2 = start + 1 + 2 * p + np.arange(p * p).reshape(p, p)
        self.b2 = start + 1 + 2 * p + p * p + np.arange(p)
        self.size = start + 1 + 3 * p + p * p


def zero_sets(model: MultiNoiseDAE, zero_tol: float, step: float):
    """Masks of encoder columns and gain units within ``zero_tol`` (relative) of zero, or shorter than
    `FD_RESOLUTION` finite-difference steps ``step`` (too short for central differences)."""
    columns = np.linalg.norm(model.W, axis=0)
    zero_columns = (columns <= zero_tol * max(columns.max(), 1e-300)) | (columns <= FD_RESOLUTION * step)
    units = np.maximum(np.maximum(np.abs(model.A1), np.abs(model.b1)), np.linalg.norm(model.A2, axis=0))
    zero_units = (units <= zero_tol * max(units.max(), 1e-300)) | (units <= FD_RESOLUTION * step)
    return zero_columns, zero_units


def unit_groups(model: MultiNoiseDAE, zero_units, u_range):
    """Gain units that switch together over [u_min, u_max]: the always-on ones, the dead ones, and
    groups of switching units with the same kink and orientation; returns (always_on, dead, groups)."""
    u_min, u_max = u_range
    pre_ends = np.stack([model.A1 * u_min + model.b1, model.A1 * u_max + model.b1])
    always_on = np.all(pre_ends > 0.0, axis=0) & ~zero_units
    dead = np.all(pre_ends <= 0.0, axis=0) & ~zero_units
    groups = [np.flatnonzero(always_on)] if always_on.sum() > 1 else []
    switching = np.flatnonzero(~zero_units & ~always_on & ~dead)
    keys = [(np.sign(model.A1[k]), -model.b1[k] / model.A1[k]) for k in switching]
    used = np.zeros(switching.size, dtype=bool)
    for i, (sign, kink) in enumerate(keys):
        if used[i]:
            continue
        same = np.array([not used[j] and keys[j][0] == sign and abs(keys[j][1] - kink) <= 1e-9 * max(1.0, abs(kink))
                         for j in range(switching.size)])
        used |= same
        if same.sum() > 1:
            groups.append(switching[same])
    return always_on, dead, groups


def mixing_tangents(model: MultiNoiseDAE, layout: Layout, groups):
    """Orthogonal mixing ``(A1_S, b1_S, A2[:, S]) → (A1_S R, b1_S R, A2[:, S] R)`` of units that switch
    together: the gains and ``‖θ‖²`` are unchanged, so it is flat for every λ (derived here)."""
    rows = []
    for S in groups:
        q = S.size
        for a, b in zip(*np.triu_indices(q, 1)):
            A = np.zeros((q, q))
            A[a, b], A[b, a] = 1.0, -1.0
            v = np.zeros(layout.size)
            v[layout.A1[S]], v[layout.b1[S]] = model.A1[S] @ A, model.b1[S] @ A
            v[layout.A2[:, S]] = model.A2[:, S] @ A
            rows.append(v)
    return rows


def symmetry_tangents(model: MultiNoiseDAE, layout: Layout, zero_columns, zero_units, u_range, lam):
    """Tangent vectors (rows) of the symmetries, with plain-language labels (λ = 0: all; else mixing)."""
    rows, labels = [], []
    always_on, dead, groups = unit_groups(model, zero_units, u_range)
    mixing = mixing_tangents(model, layout, groups)
    if mixing:
        rows.extend(mixing)
        labels.append(f"orthogonal mixing of gain units that switch together (groups of sizes "
                      f"{sorted((len(S) for S in groups), reverse=True)})")
    if lam > 0:
        return (np.array(rows) if rows else np.zeros((0, layout.size))), labels
    for j in np.flatnonzero(~zero_columns):
        v = np.zeros(layout.size)
        v[layout.W[:, j]] = model.W[:, j]
        v[layout.b2[j]] = -2.0
        rows.append(v)
    if (~zero_columns).any():
        labels.append(f"{int((~zero_columns).sum())} gain rescalings w_j → c w_j, g_j → g_j/c²")
    for k in np.flatnonzero(~zero_units & ~dead & ~always_on):
        v = np.zeros(layout.size)
        v[layout.A1[k]], v[layout.b1[k]] = model.A1[k], model.b1[k]
        v[layout.A2[:, k]] = -model.A2[:, k]
        rows.append(v)
    if (~zero_units & ~dead & ~always_on).any():
        labels.append(f"ReLU homogeneity of {int((~zero_units & ~dead & ~always_on).sum())} switching gain units")
    S = np.flatnonzero(always_on)
    if S.size:
        # (δA1_S, δb1_S, δA2[:, S], δb2) ↦ (δ(A2_S A1_S), δ(A2_S b1_S + b2)): its kernel is flat.
        p = layout.p
        columns = np.concatenate([layout.A1[S], layout.b1[S], layout.A2[:, S].ravel(), layout.b2])
        J = np.zeros((2 * p, columns.size))
        q = S.size
        J[:p, :q] = model.A2[:, S]
        J[p:, q:2 * q] = model.A2[:, S]
        for position, (i, k) in enumerate(np.ndindex(p, q)):
            J[i, 2 * q + position] = model.A1[S[k]]
            J[p + i, 2 * q + position] = model.b1[S[k]]
        J[p:, 2 * q + p * q:] = np.eye(p)
        _, singular, Vt = np.linalg.svd(J)
        rank = int(np.sum(singular > 1e-10 * max(singular.max(), 1e-300)))
        for direction in Vt[rank:]:
            v = np.zeros(layout.size)
            v[columns] = direction
            rows.append(v)
        labels.append(f"{Vt.shape[0] - rank} directions keeping the affine gain map of the {q} always-on units")
    for k in np.flatnonzero(dead):
        for index in np.concatenate([[layout.A1[k], layout.b1[k]], layout.A2[:, k]]):
            v = np.zeros(layout.size)
            v[index] = 1.0
            rows.append(v)
    if dead.any():
        labels.append(f"weights of {int(dead.sum())} gain units off over the whole σ range")
    for j in np.flatnonzero(zero_columns):
        for index in np.concatenate([layout.A2[j], [layout.b2[j]]]):
            v = np.zeros(layout.size)
            v[index] = 1.0
            rows.append(v)
    if zero_columns.any():
        labels.append(f"gain rows of {int(zero_columns.sum())} zero columns")
    return (np.array(rows) if rows else np.zeros((0, layout.size))), labels
