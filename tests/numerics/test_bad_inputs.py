"""Every public function of numerics/ and theory.predict, fed malformed inputs, raises a named error.

`CASES` lists each public function with a small valid call and the kind of each argument.
One argument at a time is replaced by a malformed value of its kind — wrong shapes, a
transposed data matrix, NaN/inf, huge values, complex numbers, strings, negative σ/λ, bad
seeds, non-bool flags, empty arrays. The only acceptable outcome is a ``ValueError`` or
``TypeError`` whose message names that argument (a transposed X must also say that samples
are columns). "Large" values — big but representable — may instead be accepted, and then
every number returned must be finite (no silent overflow to inf or NaN).

`test_every_malformation_is_named` tries every malformation of every argument once, with
fixed details; `test_random_malformations_are_named` lets hypothesis choose the argument, the
malformation and its details (which entry, which string, how large).
`test_every_public_function_is_covered` keeps `CASES` complete: a new public function (a name
in a module's ``__all__``) must be added here, or excluded below with the reason.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numerics import (certify, checkpoint, compare, convex, data, denoisers, diagnostics, escape, executors,
                      gaussian, geometry, hessian, images, initialization, model, multistart, newton, objective,
                      protocol, solvers, spectrum, sweep, sweep_cache, symmetry, threads, training, zero_column)
from numerics.data import memorization_set, separable_clusters
from theory import predict
from theory.errors import AssumptionError

MODULES = ("threads", "checkpoint", "executors", "sweep_cache", "sweep", "geometry", "objective", "gaussian", "hessian",
           "newton", "model", "compare", "data",
           "images", "denoisers", "convex", "diagnostics", "initialization", "protocol", "training",
           "multistart", "symmetry", "spectrum", "zero_column", "certify", "escape", "solvers")

# Public names that are not functions taking inputs, or whose inputs are anything at all.
EXCLUDED = {
    "numerics.checkpoint.jsonable": "converts any value; nothing is malformed for it",
    "numerics.checkpoint.CorruptFileError": "an exception class",
    "numerics.geometry.NonFiniteStep": "an exception class",
    "numerics.hessian.ParallelColumnsError": "an exception class",
    "numerics.geometry.ZERO_TOL": "a constant", "numerics.geometry.HVP_STEP": "a constant",
    "numerics.threads.THREAD_VARIABLES": "a constant",
    "numerics.executors.DASK_EXTRA": "a constant",
    "numerics.executors.connect": "a valid call starts a LocalCluster or needs a scheduler; its bad executors, "
                                  "workers and timeouts are tested in tests/numerics/test_sweep.py",
    "numerics.sweep_cache.encode": "converts any cacheable value; an uncacheable one is a TypeError naming where "
                                   "it sits (tests/numerics/test_sweep.py)",
    "numerics.sweep_cache.decode": "reads back what encode wrote",
    "numerics.threads.single_thread_environment": "takes no arguments",
    "numerics.checkpoint.in_notebook": "takes no arguments",
    "numerics.threads.single_thread_worker": "takes no arguments",
    "numerics.objective.DETERMINISTIC_Z": "a constant", "numerics.objective.PAIR_METHODS": "a constant",
    "numerics.certify.VERDICTS": "a constant", "numerics.certify.MINIMUM_VERDICTS": "a constant",
    "numerics.certify.FD_RESOLUTION": "a constant", "numerics.certify.HVP_STEP": "a constant",
    "numerics.compare.CLUSTER_MAP_RULES": "a constant", "numerics.compare.ZERO": "a constant",
    "numerics.compare.IDLE": "a constant", "numerics.compare.MIXED": "a constant",
    "numerics.symmetry.FAMILIES": "a constant",
    "numerics.spectrum.difference_range": "a context manager without arguments",
    "numerics.training.WARMUP": "a constant", "numerics.training.LBFGS": "a constant",
    "numerics.training.POLISH": "a constant",
}
RESULT_CLASSES = "result dataclasses are built by the functions that return them"

# ----------------------------------------------------------------------------- valid inputs

RNG = np.random.default_rng(0)
D, N, P = 4, 6, 3                                  # all different: a transpose is never square
X = RNG.normal(size=(D, N))
W1 = 0.5 * RNG.normal(size=(D, P))
W2 = 0.5 * RNG.normal(size=(D, P))
LABELS = np.array([0, 0, 0, 1, 1, 1])
CLUSTERS = separable_clusters(D, [3, 3], alpha=0.05, beta=-0.5, norm=2.0, seed=0)
XC, LC = CLUSTERS.X, CLUSTERS.labels
WC = predict.partition_weights(XC, LC, [1, 1], 0.1, 0.0)          # eq. (8): (4, 2)
XM = memorization_set(D, 3, norm=2.0, seed=0)                       # (4, 3), pairwise cosine −1/2
WZ = np.hstack([predict.memorization_weights(XM, 3, 0.1, 0.01), np.zeros((D, 1))])   # a zero column
PROJECTOR = symmetry.SymmetryProjector(W1, W1, [np.array([0, 1])], tied=True, family="rotation")
H_SMALL = np.diag(np.arange(1.0, D * P + 1))                       # on the projector's D·P coordinates


def _hvp(v):
    return H_SMALL @ v


@dataclasses.dataclass
class Case:
    """``call(**valid)`` works; ``kinds`` {argument: kind} says how to break each argument."""
    function: Callable
    valid: dict
    kinds: dict
    call: Callable | None = None          # default: function(**arguments)
    name: str = ""
    infinite_ok: bool = False             # ``inf`` is a documented result (e.g. "no alignment")

    def run(self, arguments):
        return (self.call or self.function)(**arguments)


def enter(manager):
    with manager:
        return None


# Kinds: "M" matrix; "Md" matrix whose rows another argument fixes (so an extra row is wrong);
# "MdT" data matrix (d, n) whose transpose another argument exposes; "V" vector; "R" real;
# "N" real >= 0; "P" real > 0; "I" integer; "S" seed (int or Generator); "F" bool; "O" bool or
# None; "C" one of a few strings; "L" cluster labels; "path" a folder or file name.
CASES = {
    # threads
    "numerics.threads.single_thread": Case(threads.single_thread, dict(numba=True, user_api=None),
                                           dict(numba="F", user_api="C"), call=lambda **a: enter(threads.single_thread(**a))),
    "numerics.threads.numba_threads": Case(threads.numba_threads, dict(count=1), dict(count="I"),
                                           call=lambda **a: enter(threads.numba_threads(**a))),
    # checkpoint
    "numerics.checkpoint.atomic_write": Case(checkpoint.atomic_write, dict(path="TMP/a.bin", write=lambda s: s.write(b"x")),
                                             dict(path="path", write="callable")),
    "numerics.checkpoint.atomic_write_text": Case(checkpoint.atomic_write_text, dict(path="TMP/a.txt", text="x"),
                                                  dict(path="path", text="text")),
    "numerics.checkpoint.save_checkpoint": Case(checkpoint.save_checkpoint, dict(folder="TMP", name="c", arrays={"W": W1},
                                                                                 meta={"a": 1}),
                                                dict(folder="path", name="path", arrays="dict", meta="dict")),
    "numerics.checkpoint.load_checkpoint": Case(checkpoint.load_checkpoint, dict(folder="TMP", name="none"),
                                                dict(folder="path", name="path")),
    "numerics.checkpoint.fingerprint": Case(checkpoint.fingerprint, dict(array=X), dict(array="A"),
                                            call=lambda array: checkpoint.fingerprint(array), name="arrays[0]"),
    # sweeps
    "numerics.executors.runner": Case(executors.runner, dict(executor=None, workers=2, n_tasks=3),
                                      dict(executor="C?", workers="I", n_tasks="I?")),
    "numerics.executors.describe": Case(executors.describe, dict(executor=None, workers=2),
                                        dict(executor="C?", workers="I")),
    "numerics.executors.connection_problem": Case(executors.connection_problem, dict(executor="dask:nowhere", workers=2),
                                                  dict(workers="I")),
    "numerics.executors.disconnect": Case(executors.disconnect, dict(executor=None), dict(executor="text?")),
    "numerics.sweep_cache.save_entry": Case(sweep_cache.save_entry, dict(folder="TMP", name="e", value={"a": 1.0},
                                                                         task={"key": "k"}),
                                            dict(folder="path", name="path", task="dict")),
    "numerics.sweep_cache.load_entry": Case(sweep_cache.load_entry, dict(folder="TMP", name="none", key="k", strict=True),
                                            dict(folder="path", name="path", key="text", strict="F")),
    "numerics.sweep.sweep": Case(sweep.sweep, dict(function=objective.expected_loss, tasks=[dict(sigma=0.1)],
                                                   shared=dict(X=X, W1=W1, W2=W2), unkeyed=None, seed=None, executor=None,
                                                   workers=1, cache_dir="TMP/cache", progress=False, desc="losses"),
                                 dict(function="callable", tasks="tasks", shared="dict", unkeyed="dict", seed="I?",
                                      executor="C?", workers="I", cache_dir="path?", progress="O", desc="text?")),
    "numerics.sweep.task_seeds": Case(sweep.task_seeds, dict(seed=0, n_tasks=3), dict(seed="I", n_tasks="I")),
    "numerics.sweep.task_keys": Case(sweep.task_keys, dict(function=objective.expected_loss, tasks=[dict(sigma=0.1)],
                                                           shared=dict(X=X), seed=0),
                                     dict(function="callable", tasks="tasks", shared="dict", seed="I?")),
    "numerics.checkpoint.progress_enabled": Case(checkpoint.progress_enabled, dict(progress=False), dict(progress="O")),
    "numerics.checkpoint.progress_bar": Case(checkpoint.progress_bar, dict(progress=False), dict(progress="O"),
                                             call=lambda **a: checkpoint.progress_bar(**a).close()),
    # geometry
    "numerics.geometry.loss_scale": Case(geometry.loss_scale, dict(X=X), dict(X="M")),
    "numerics.geometry.column_sizes": Case(geometry.column_sizes, dict(W1=W1, W2=W2), dict(W1="Md", W2="Md")),
    "numerics.geometry.zero_columns": Case(geometry.zero_columns, dict(W1=W1, W2=W2, zero_tol=1e-6),
                                           dict(W1="Md", W2="Md", zero_tol="N")),
    "numerics.geometry.orthonormal_span": Case(geometry.orthonormal_span, dict(A=X, tol=1e-10), dict(A="Mfull", tol="N")),
    "numerics.geometry.invariant_basis": Case(geometry.invariant_basis, dict(X=X, W=W1, extra=1, tol=1e-10),
                                              dict(X="M", extra="I", tol="N"),
                                              call=lambda X, W, extra, tol: geometry.invariant_basis(X, W, extra=extra, tol=tol)),
    "numerics.geometry.Packing": Case(geometry.Packing, dict(d=D, p=P, tied=True, live=np.array([True, False, True])),
                                      dict(d="I", p="I", tied="F", live="mask")),
    "numerics.geometry.ExactGradient": Case(geometry.ExactGradient, dict(X=X, sigma=0.2, lam=0.01,
                                                                         packing=geometry.Packing(D, P, True)),
                                            dict(X="Md", sigma="N", lam="N", packing="object")),
    # objective, model, gaussian
    **{f"numerics.objective.{f}": Case(getattr(objective, f), dict(W1=W1, W2=W2, X=X, sigma=0.3, lam=0.01),
                                       dict(W1="Md", W2="Md", X="MdT", sigma="N", lam="N"))
       for f in ("expected_loss", "expected_loss_and_grad")},
    "numerics.objective.monte_carlo_loss": Case(objective.monte_carlo_loss,
                                                dict(W1=W1, W2=W2, X=X, sigma=0.3, lam=0.01, n_draws=4, rng=0),
                                                dict(W1="Md", W2="Md", X="MdT", sigma="N", lam="N", n_draws="I", rng="S")),
    "numerics.objective.monte_carlo_loss_and_grad": Case(objective.monte_carlo_loss_and_grad,
                                                         dict(W1=W1, W2=W2, X=X, sigma=0.3, lam=0.01, rng=0),
                                                         dict(W1="Md", W2="Md", X="MdT", sigma="N", lam="N", rng="S")),
    "numerics.gaussian.bivariate_normal_cdf": Case(gaussian.bivariate_normal_cdf, dict(h=0.1, k=-0.2, rho=0.3),
                                                   dict(h="R*", k="R*", rho="R*")),
    "numerics.gaussian.relu_mean": Case(gaussian.relu_mean, dict(m=0.3, s=1.0), dict(m="R*", s="N*")),
    "numerics.gaussian.relu_second_moment": Case(gaussian.relu_second_moment, dict(m=0.3, s=1.0), dict(m="R*", s="N*")),
    "numerics.gaussian.relu_cross_moment": Case(gaussian.relu_cross_moment, dict(m_j=0.3, s_j=1.0, m_k=-0.2, s_k=0.5, rho=0.1),
                                                dict(m_j="R*", s_j="P*", m_k="R*", s_k="P*", rho="R*")),
    "numerics.gaussian.mehler_terms": Case(gaussian.mehler_terms, dict(abs_rho=np.array([0.1, 0.5])), dict(abs_rho="Arho")),
    "numerics.model.representation": Case(model.representation, dict(W1=W1, Y=X), dict(W1="M", Y="MdT")),
    "numerics.model.forward": Case(model.forward, dict(W1=W1, W2=W2, Y=X), dict(W1="Md", W2="Md", Y="MdT")),
    # compare
    **{f"numerics.compare.{f}": Case(getattr(compare, f), dict(H=np.abs(W1)), dict(H="M"))
       for f in ("representation_std", "norm_ratio", "participation_ratio", "top_share")},
    "numerics.compare.column_structure": Case(compare.column_structure, dict(W1=W1, W2=W2, X=X, labels=LABELS,
                                                                             cos_threshold=0.99, zero_tol=1e-6),
                                              dict(W1="Md", W2="Md", X="MdT", labels="L", cos_threshold="R", zero_tol="N")),
    "numerics.compare.all_on_mask": Case(compare.all_on_mask, dict(W1=W1, X_k=X), dict(W1="M", X_k="Md")),
    "numerics.compare.cluster_maps": Case(compare.cluster_maps, dict(W1=W1, W2=W2, X=X, labels=LABELS, rule="owner"),
                                          dict(W1="Md", W2="Md", X="MdT", labels="L", rule="C")),
    "numerics.compare.map_residual": Case(compare.map_residual, dict(W1=WC, W2=WC, X=XC, labels=LC,
                                                                     predicted_maps={0: np.eye(D), 1: np.eye(D)}),
                                          dict(W1="Md", W2="Md", X="MdT", labels="L", predicted_maps="dict")),
    "numerics.compare.aligned_distance": Case(compare.aligned_distance, dict(W=WC, W_pred=WC, X=XC, labels=LC),
                                              dict(W="M", W_pred="Md", X="MdT", labels="L"), infinite_ok=True),
    "numerics.compare.align_prediction": Case(compare.align_prediction, dict(W=WC, W_pred=WC, X=XC, labels=LC),
                                              dict(W="M", W_pred="Md", X="MdT", labels="L")),
    "numerics.compare.compare_to_prediction": Case(compare.compare_to_prediction,
                                                   dict(W1=WC, W2=WC, predicted=WC, X=XC, labels=LC),
                                                   dict(W1="M", W2="Md", predicted="Md", X="MdT", labels="L"),
                                                   infinite_ok=True),
    # data, images
    "numerics.data.separability": Case(data.separability, dict(X=XC, labels=LC), dict(X="MT", labels="L")),
    "numerics.data.equiangular_means": Case(data.equiangular_means, dict(d=4, M=3, beta=-0.3, norm=1.0, seed=0),
                                            dict(d="I", M="I", beta="R?", norm="P*", seed="S")),
    "numerics.data.separable_clusters": Case(data.separable_clusters, dict(d=4, sizes=[2, 2], alpha=0.1, beta=-0.5,
                                                                           norm=1.0, seed=0),
                                             dict(d="I", sizes="counts", alpha="N", beta="R?", norm="P*", seed="S")),
    "numerics.data.memorization_set": Case(data.memorization_set, dict(d=4, n=3, norm=1.0, beta=-0.4, seed=0),
                                           dict(d="I", n="I", norm="P*", beta="R?", seed="S")),
    "numerics.data.gaussian_mixture": Case(data.gaussian_mixture, dict(d=4, K=2, rank=1, n=10, mean_norm=1.0, spread=0.1,
                                                                       decay=0.0, counts="round", seed=0),
                                           dict(d="I", K="I", rank="I", n="I", mean_norm="P*", spread="N", decay="N",
                                                counts="C", seed="S")),
    "numerics.data.duplicated_samples": Case(data.duplicated_samples, dict(data=XC, labels=LC, n_copies=2, sources=[0],
                                                                           seed=0),
                                             dict(data="MT", labels="L", n_copies="I", seed="S")),
    "numerics.data.hybrid_mixture": Case(data.hybrid_mixture, dict(d=6, K=2, m=1, rank=1, n=10, n_copies=2, mean_norm=1.0,
                                                                   spread=0.1, seed=0),
                                         dict(d="I", K="I", m="I", rank="I", n="I", n_copies="I", mean_norm="P*",
                                              spread="N", seed="S")),
    "numerics.images.faces": Case(images.faces, dict(n=3, seed=0, size=10), dict(n="I?", seed="S", size="I")),
    "numerics.images.digits": Case(images.digits, dict(n=3, seed=0), dict(n="I?", seed="S")),
    "numerics.images.camera_patches": Case(images.camera_patches, dict(size=4, n=3, seed=0), dict(size="I", n="I", seed="S")),
    "numerics.images.resize_columns": Case(images.resize_columns, dict(X=np.zeros((4, 2)), shape=(2, 2), new_shape=(3, 3)),
                                           dict(X="Md", shape="shape", new_shape="shape")),
    "numerics.images.centred": Case(images.centred, dict(X=X, origin=np.zeros(D)), dict(X="M", origin="V")),
    "numerics.images.largest_cosine": Case(images.largest_cosine, dict(X=X), dict(X="M")),
    "numerics.images.least_correlated": Case(images.least_correlated, dict(X=X, n=2), dict(X="M", n="I")),
    "numerics.images.most_obtuse_classes": Case(images.most_obtuse_classes, dict(X=X, labels=LABELS, k=2),
                                                dict(X="MT", labels="L", k="I")),
    # denoisers
    "numerics.denoisers.squared_distances": Case(denoisers.squared_distances, dict(X=X, Y=X[:, :2]), dict(X="M", Y="MdT")),
    "numerics.denoisers.f_emp": Case(denoisers.f_emp, dict(Y=X[:, :2], X=X, sigma=0.3), dict(Y="MdT", X="Md", sigma="N")),
    "numerics.denoisers.f_gt": Case(denoisers.f_gt, dict(Y=X[:, :2], means=CLUSTERS.means, covariances=np.zeros((2, D, 1)),
                                                         weights=[0.5, 0.5], sigma=0.3, factored=True),
                                    dict(Y="MdT", means="M", covariances="tensor", weights="Vprob", sigma="P", factored="F")),
    "numerics.denoisers.second_moment": Case(denoisers.second_moment, dict(X=X), dict(X="M")),
    "numerics.denoisers.wiener_matrix": Case(denoisers.wiener_matrix, dict(S=np.eye(D), p=2, sigma=0.3),
                                             dict(S="Msquare", p="I", sigma="N")),
    "numerics.denoisers.wiener_denoiser": Case(denoisers.wiener_denoiser, dict(Y=X[:, :2], S=np.eye(D), p=2, sigma=0.3),
                                               dict(Y="MdT", S="Msquare", p="I", sigma="N")),
    # convex
    "numerics.convex.lemma_d1_optimum": Case(convex.lemma_d1_optimum, dict(X=X, sigma=0.3, lam_prime=0.1, p=2),
                                             dict(X="M", sigma="N", lam_prime="N", p="I?")),
    "numerics.convex.block_loss": Case(convex.block_loss, dict(W1=W1, W2=W2, X=X, sigma=0.3, lam_prime=0.1),
                                       dict(W1="Md", W2="Md", X="MdT", sigma="N", lam_prime="N")),
    "numerics.convex.linear_block_certificate": Case(convex.linear_block_certificate, dict(X=X[:2, :3], sigma=0.3,
                                                                                           lam_prime=0.1, p=2),
                                                     dict(X="M", sigma="N", lam_prime="N", p="I?")),
    "numerics.convex.noisy_inputs": Case(convex.noisy_inputs, dict(X=X, sigma=0.3, draws=2, seed=0),
                                         dict(X="M", sigma="N", draws="I", seed="S")),
    "numerics.convex.activation_patterns": Case(convex.activation_patterns, dict(Y=X[:2, :4]), dict(Y="M")),
    "numerics.convex.sampled_patterns": Case(convex.sampled_patterns, dict(Y=X, count=5, seed=0), dict(Y="M", count="I", seed="S")),
    "numerics.convex.sampled_loss_and_grad": Case(convex.sampled_loss_and_grad, dict(W1=W1, W2=W2, Y=X, T=X, lam=0.1),
                                                  dict(W1="Md", W2="Md", Y="MdT", T="Md", lam="N")),
    "numerics.convex.minimize_sampled": Case(convex.minimize_sampled, dict(Y=X, T=X, p=2, lam=0.1, tied=True, seed=0,
                                                                           max_iter=3),
                                             dict(Y="M", T="Md", p="I", lam="N", tied="F", seed="S", max_iter="I")),
    "numerics.convex.relu_lower_bound": Case(convex.relu_lower_bound, dict(X=X[:1, :2], sigma=0.3, lam=0.1, p=2, draws=1,
                                                                           seed=0, tied=False, n_random_starts=0),
                                             dict(X="M", sigma="N", lam="N", p="I", draws="I", seed="I", tied="F",
                                                  n_random_starts="I")),
    # diagnostics, initialization
    "numerics.diagnostics.taylor_remainder_slope": Case(diagnostics.taylor_remainder_slope,
                                                        dict(f=lambda x: float(np.sum(np.sin(x))), x=np.array([0.3, 1.2]),
                                                             gradient=np.cos([0.3, 1.2]), direction=np.array([1.0, -2.0])),
                                                        dict(f="callable", x="V", gradient="V", direction="V")),
    "numerics.initialization.random_init": Case(initialization.random_init, dict(d=D, p=P, tied=True, seed=0, scale=0.5),
                                                dict(d="I", p="I", tied="F", seed="S", scale="N?")),
    "numerics.initialization.given_weights": Case(initialization.given_weights, dict(init=W1, d=D, p=P, tied=True),
                                                  dict(init="Md", d="I", p="I", tied="F")),
    # protocol
    "numerics.protocol.lambda_from_weight_decay": Case(protocol.lambda_from_weight_decay, dict(weight_decay=1e-2, d=8, tied=True),
                                                       dict(weight_decay="N", d="I", tied="F")),
    "numerics.protocol.weight_decay_from_lambda": Case(protocol.weight_decay_from_lambda, dict(lam=0.02, d=8, tied=True),
                                                       dict(lam="N", d="I", tied="F")),
    "numerics.protocol.torch_default_init": Case(protocol.torch_default_init, dict(d=D, p=P, tied=False, seed=0),
                                                 dict(d="I", p="I", tied="F", seed="S")),
    "numerics.protocol.Adam": Case(protocol.Adam, dict(lr=1e-3, eps=1e-8, weight_decay=0.0), dict(lr="P", eps="N", weight_decay="N")),
    "numerics.protocol.RMSprop": Case(protocol.RMSprop, dict(lr=1e-3, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0),
                                      dict(lr="P", alpha="N", eps="N", weight_decay="N", momentum="N")),
    "numerics.protocol.make_optimizer": Case(protocol.make_optimizer, dict(optimizer="adam", lr=1e-3, weight_decay=0.0),
                                             dict(optimizer="C", lr="P", weight_decay="N")),
    "numerics.protocol.minibatch_mse_and_grad": Case(protocol.minibatch_mse_and_grad,
                                                     dict(W1=W1, W2=W2, X_batch=X, noise=X, sigma=0.2, tied=False),
                                                     dict(W1="Md", W2="Md", X_batch="MdT", noise="Md", sigma="N", tied="F")),
    "numerics.protocol.train_protocol": Case(protocol.train_protocol, dict(X=X, p=P, sigma=0.2, lr=1e-3, weight_decay=1e-3,
                                                                           batch_size=2, steps=3, seed=0, tied=True,
                                                                           record_every=1, exact_loss=True, progress=False),
                                             dict(X="M", p="I", sigma="N", lr="P", weight_decay="N", batch_size="I?",
                                                  steps="I", seed="I", tied="F", record_every="I", exact_loss="F",
                                                  progress="O")),
    # solvers
    **{f"numerics.{module}.train": Case(function, dict(X=X, p=P, sigma=0.2, lam=0.01, seed=0, tied=True, perturb=0.0,
                                                      gtol=1e-8, max_iter=3, polish=False, progress=False),
                                       dict(X="M", p="I", sigma="N", lam="N", seed="I", tied="F", perturb="N",
                                            gtol="N", max_iter="I", polish="F", progress="O"))
       for module, function in (("training", training.train), ("solvers", solvers.train))},
    **{f"numerics.{module}.multistart": Case(function, dict(X=X, p=P, sigma=0.2, lam=0.01, n_starts=1, seed=0,
                                                           labels=LABELS, workers=1, progress=False, max_iter=3, polish=False),
                                            dict(X="MT", p="I", sigma="N", lam="N", n_starts="I", seed="I",
                                                 labels="L", workers="I", progress="O"))
       for module, function in (("multistart", multistart.multistart), ("solvers", solvers.multistart))},
    **{f"numerics.{module}.train_to_minimum": Case(function, dict(X=XM, p=3, sigma=0.1, lam=0.01, seed=0, max_escapes=0,
                                                                 tied=True, max_iter=3),
                                                  dict(X="M", p="I", sigma="N", lam="N", seed="I", max_escapes="I",
                                                       tied="F"))
       for module, function in (("escape", escape.train_to_minimum), ("solvers", solvers.train_to_minimum))},
    "numerics.symmetry.activation_blocks": Case(symmetry.activation_blocks, dict(W1=W1, X=X), dict(W1="M", X="Md")),
    "numerics.symmetry.SymmetryProjector": Case(symmetry.SymmetryProjector, dict(W1=W1, W2=W1, blocks=[np.array([0, 1])],
                                                                                tied=True, family="rotation"),
                                                dict(W1="Md", W2="Md", tied="F", family="C")),
    "numerics.spectrum.dense_spectrum": Case(spectrum.dense_spectrum, dict(hvp=_hvp, projector=PROJECTOR, m=D * P, n_eigs=2,
                                                                           rng=np.random.default_rng(0)),
                                             dict(hvp="callable", projector="object", m="I", n_eigs="I")),
    "numerics.spectrum.lanczos_spectrum": Case(spectrum.lanczos_spectrum, dict(hvp=_hvp, projector=PROJECTOR, m=D * P, n_eigs=1,
                                                                               lanczos_tol=1e-8, rng=np.random.default_rng(0)),
                                               dict(hvp="callable", projector="object", m="I", n_eigs="I", lanczos_tol="N")),
    "numerics.zero_column.zero_column_ratio": Case(zero_column.zero_column_ratio,
                                                   dict(W1=WZ, W2=WZ, X=XM, sigma=0.1, lam=0.01, tied=True,
                                                        zero=np.array([False, False, False, True]), rng=0, n_random=1,
                                                        ascent_iter=2),
                                                   dict(W1="Md", W2="Md", X="Md", sigma="N", lam="N", tied="F", zero="mask",
                                                        rng="S", n_random="I", ascent_iter="I")),
    "numerics.zero_column.zero_column_bound": Case(zero_column.zero_column_bound, dict(W1=WZ, W2=WZ, X=XM, sigma=0.1, lam=0.01),
                                                   dict(W1="Md", W2="Md", X="Md", sigma="N", lam="N")),
    **{f"numerics.{module}.certify": Case(function, dict(W1=WZ, W2=WZ, X=XM, sigma=0.1, lam=0.01, tied=True, gtol=1e-6,
                                                        n_eigs=2, seed=0, reduce=True),
                                         dict(W1="Md", W2="Md", X="Md", sigma="N", lam="N", tied="O", gtol="N",
                                              n_eigs="I", seed="S", reduce="F"))
       for module, function in (("certify", certify.certify), ("solvers", solvers.certify))},
    "numerics.spectrum.hessian_matrix": Case(spectrum.hessian_matrix, dict(W1=W1[:, :1], W2=W1[:, :1], X=X, sigma=0.2, lam=0.01),
                                            dict(W1="Md", W2="Md", X="MdT", sigma="N", lam="N")),
    "numerics.hessian.HessianVectorProduct": Case(hessian.HessianVectorProduct,
                                                  dict(W1=W1, W2=W2, X=X, sigma=0.3, lam=0.01, tied=False,
                                                       pair_table_bytes=2**20),
                                                  dict(W1="Md", W2="Md", X="MdT", sigma="N", lam="N", tied="F",
                                                       pair_table_bytes="N")),
    "numerics.hessian.expected_hessian_vector_product": Case(
        hessian.expected_hessian_vector_product, dict(W1=W1, W2=W2, X=X, sigma=0.3, lam=0.01, V1=W2, V2=W1),
        dict(W1="Md", W2="Md", X="MdT", sigma="N", lam="N", V1="Md", V2="Md")),
    "numerics.newton.exact_hessp": Case(newton.exact_hessp, dict(W1=W1, W2=W2, X=X, sigma=0.3, lam=0.01, tied=False),
                                        dict(W1="Md", W2="Md", X="MdT", sigma="N", lam="N", tied="F")),
    "numerics.newton.newton_polish": Case(newton.newton_polish,
                                          dict(X=X, W1=W1, W2=W2, sigma=0.3, lam=0.01, tied=False, gtol=1e-8, max_iter=3,
                                               max_time=10.0, method="trust-krylov", reduce=True, newton_steps=1),
                                          dict(X="MdT", W1="Md", W2="Md", sigma="N", lam="N", tied="F", gtol="N",
                                               max_iter="I", max_time="N?", method="C", reduce="F", newton_steps="I")),
    "numerics.newton.smallest_eigenpairs": Case(newton.smallest_eigenpairs,
                                                dict(W1=W1, W2=W2, X=X, sigma=0.3, lam=0.01, tied=False, k=2, tol=1e-8,
                                                     reduce=True, seed=0, maxiter=None, ncv=None),
                                                dict(W1="Md", W2="Md", X="MdT", sigma="N", lam="N", tied="F", k="I",
                                                     tol="N", reduce="F", seed="S", maxiter="I?", ncv="I?")),
    "numerics.certify.below_resolution": Case(certify.below_resolution, dict(W1=W1, W2=W2, tied=False, hvp_step=1e-5),
                                              dict(W1="Md", W2="Md", tied="F", hvp_step="N")),
    # theory.predict
    "theory.predict.uniform_first_orthogonal": Case(predict.uniform_first_orthogonal, dict(p_k=3), dict(p_k="I")),
    "theory.predict.block_weights": Case(predict.block_weights, dict(X_k=CLUSTERS.cluster(0), p_k=1, n=6, sigma=0.1, lam=0.0,
                                                                     check_assumptions=True),
                                         dict(X_k="M", p_k="I", n="I", sigma="N", lam="N", check_assumptions="F")),
    "theory.predict.block_linear_map": Case(predict.block_linear_map, dict(X_k=CLUSTERS.cluster(0), p_k=1, n=6, sigma=0.1,
                                                                           lam=0.0),
                                            dict(X_k="M", p_k="I", n="I", sigma="N", lam="N")),
    "theory.predict.memorization_weights": Case(predict.memorization_weights, dict(X=XM, p=3, sigma=0.1, lam=0.01),
                                                dict(X="M", p="I", sigma="N", lam="N")),
    "theory.predict.generalization_weights": Case(predict.generalization_weights,
                                                  dict(clusters=[CLUSTERS.cluster(0), CLUSTERS.cluster(1)],
                                                       p_per_cluster=[1, 1], sigma=0.1, lam=0.0),
                                                  dict(clusters="list", p_per_cluster="counts", sigma="N", lam="N")),
    "theory.predict.hybrid_weights": Case(predict.hybrid_weights, dict(duplicated=-CLUSTERS.means[:, [0]], copies=[2],
                                                                       clusters=[CLUSTERS.cluster(0)], p_per_cluster=[1],
                                                                       sigma=0.1, lam=0.0),
                                          dict(duplicated="M", copies="counts", clusters="list", p_per_cluster="counts",
                                               sigma="N", lam="N")),
    "theory.predict.partition_weights": Case(predict.partition_weights, dict(X=XC, labels=LC, p_per_cluster=[1, 1],
                                                                             sigma=0.1, lam=0.0),
                                             dict(X="MT", labels="L", p_per_cluster="counts", sigma="N", lam="N")),
    "theory.predict.predicted_loss": Case(predict.predicted_loss, dict(X=XC, labels=LC, p_per_cluster=[1, 1], sigma=0.1,
                                                                       lam=0.0),
                                          dict(X="MT", labels="L", p_per_cluster="counts", sigma="N", lam="N")),
    "theory.predict.expected_representation": Case(predict.expected_representation, dict(W=WC, Y=XC, sigma=0.1),
                                                   dict(W="M", Y="MdT", sigma="N")),
    "theory.predict.switching_margin": Case(predict.switching_margin, dict(W=WC, X=XC), dict(W="M", X="MdT")),
    "theory.predict.own_cluster_margin": Case(predict.own_cluster_margin, dict(W_k=WC[:, :1], X_k=CLUSTERS.cluster(0)),
                                              dict(W_k="M", X_k="Md")),
    "theory.predict.mask_margin": Case(predict.mask_margin, dict(W=WC, owners=[0, 1], X=XC, labels=LC),
                                       dict(W="M", owners="Lp", X="MdT", labels="L")),
    "theory.predict.predict": Case(predict.predict, dict(X=XC, labels=LC, p=2, sigma=0.1, lam=0.0),
                                   dict(X="MT", labels="L", p="I", sigma="N", lam="N")),
}

# ----------------------------------------------------------------------------- malformations


def _matrix(kind, value):
    """(label, malformed value, must raise) for an array argument."""
    value = np.asarray(value, dtype=float)
    out = [("nan", _set(value, np.nan), True), ("inf", _set(value, -np.inf), True),
           ("huge", value * 1e200 + 1e200, True), ("complex", value + 1j, True),
           ("strings", value.astype(str), True), ("3-D", value[None], True)]
    if kind.startswith("M"):
        out += [("1-D", value.ravel(), True), ("no rows", value[:0], True), ("no columns", value[:, :0], True)]
        out += [("large", value * 1e120 + 1e120, False)]
    if kind in ("Md", "MdT"):
        out.append(("extra row", np.vstack([value, value[:1]]), True))
    if kind in ("MdT", "MT"):
        out.append(("transposed", value.T, True))
    if kind == "Msquare":
        out.append(("not square", value[:, :-1], True))
    if kind.startswith("V"):
        out += [("2-D", value[None, :].repeat(2, 0), True), ("empty", value[:0], True)]
        if kind in ("Vpos", "Vprob"):
            out.append(("negative", -value - 1.0, True))
    if kind == "tensor":
        out = [item for item in out if item[0] != "3-D"] + [("2-D", value[0], True), ("wrong K", value[:1], True)]
    return out


def _set(value, entry):
    out = np.array(value, dtype=float)
    out.flat[out.size // 2] = entry
    return out


SCALARS = {
    "R": [("string", "0.2"), ("nan", float("nan")), ("inf", float("inf")), ("complex", 0.2 + 1j),
          ("bool", True), ("None", None), ("array", np.array([0.2, 0.3]))],
    "I": [("string", "3"), ("fraction", 2.5), ("negative", -1), ("nan", float("nan")), ("bool", True),
          ("None", None), ("complex", 2 + 0j)],
    "S": [("string", "a"), ("negative", -1), ("fraction", 1.5), ("object", object()), ("bool", True)],
    "F": [("string", "yes"), ("int", 1), ("None", None)],
    "O": [("string", "bar"), ("int", 1)],
    "C": [("unknown", "bogus"), ("number", 3)],
    "L": [("strings", np.array(["a"] * 6)), ("fractions", np.full(6, 0.5)), ("short", [0, 1]),
          ("2-D", np.zeros((2, 3), dtype=int)), ("string", "abc")],
    "Lp": [("strings", np.array(["a"] * 2)), ("fractions", np.full(2, 0.5)), ("short", [0]),
           ("2-D", np.zeros((2, 3), dtype=int)), ("string", "abc")],
    "path": [("number", 123), ("None", None)],
    "text": [("bytes", b"x"), ("number", 3)],
    "callable": [("number", 3), ("string", "f")],
    "dict": [("list", [1, 2]), ("string", "x")],
    "object": [("number", 3), ("string", "x")],
    "mask": [("ints", np.array([1, 0, 1])), ("short", np.array([True])), ("string", "yes")],
    "counts": [("string", "12"), ("scalar", 3), ("negative", [-1, 1]), ("fraction", [0.5, 1]), ("nan", [np.nan, 1])],
    "shape": [("string", "22"), ("short", (3,)), ("zero", (0, 2)), ("fraction", (1.5, 2))],
    "tasks": [("string", "X"), ("dict", {"sigma": 0.1}), ("not dicts", [0.1]), ("number keys", [{1: 0.1}])],
    "list": [("array", np.zeros((2, 2))), ("string", "X"), ("empty", []), ("nan", [np.full((4, 3), np.nan)])],
}
SCALARS["N"] = SCALARS["R"] + [("negative", -0.5)]
SCALARS["P"] = SCALARS["N"] + [("zero", 0.0)]


def malformations(kind, value):
    """All (label, value, must_raise) for one argument of this kind and valid value.

    A kind ending in ``?`` also accepts None, one ending in ``*`` also accepts arrays (a
    vectorised function, or one number per item): those malformations are left out.
    """
    if kind == "A":                          # any real array: only strings and complex are wrong
        value = np.asarray(value, dtype=float)
        return [("strings", value.astype(str), True), ("complex", value + 1j, True)]
    if kind == "Arho":                       # absolute correlations, any shape
        value = np.asarray(value, dtype=float)
        return [("nan", _set(value, np.nan), True), ("huge", value * 1e200, True), ("complex", value + 1j, True),
                ("strings", value.astype(str), True), ("negative", -value - 0.1, True), ("above 1", value + 1.0, True)]
    if kind.startswith(("M", "V")) or kind == "tensor":
        return _matrix(kind, value)
    base = kind.rstrip("?*")
    drop = ({"None"} if "?" in kind else set()) | ({"array"} if "*" in kind else set())
    return [(label, bad, True) for label, bad in SCALARS[base] if label not in drop]


def _with_tmp(arguments, folder):
    return {k: (v.replace("TMP", str(folder)) if isinstance(v, str) and "TMP" in v else v)
            for k, v in arguments.items()}


def check(name, case, argument, label, bad, must_raise, folder):
    """Call with one argument malformed; return a problem description, or None if handled well."""
    arguments = _with_tmp(dict(case.valid), folder)
    arguments[argument] = bad
    shown = case.name or argument
    try:
        result = case.run(arguments)
    except AssumptionError:                 # a named violation of a corollary's assumption on the data
        return None
    except (ValueError, TypeError) as error:
        message = str(error)
        if not re.search(rf"(?<![\w.]){re.escape(shown)}(?![\w])", message):
            return f"{name}({argument} = {label}): message does not name {shown!r}: {message}"
        if label == "transposed" and "amples" not in message:
            return f"{name}({argument} = {label}): message does not say samples are columns: {message}"
        return None
    except Exception as error:              # anything else is a bug
        return f"{name}({argument} = {label}): {type(error).__name__}: {error}"
    if must_raise:
        return f"{name}({argument} = {label}): accepted"
    if not case.infinite_ok and not _finite(result):
        return f"{name}({argument} = {label}): returned non-finite numbers"
    return None


MAIN_FIELDS = ("W", "W1", "W2", "best_W1", "best_W2", "loss", "X")   # what a result dataclass is for


def _finite(result) -> bool:
    if isinstance(result, (tuple, list)):
        return all(_finite(item) for item in result)
    if dataclasses.is_dataclass(result):      # other fields may be NaN by design (e.g. "not computed")
        return all(_finite(getattr(result, name)) for name in MAIN_FIELDS if hasattr(result, name))
    if isinstance(result, np.ndarray) and result.dtype.kind in "fc":
        return bool(np.all(np.isfinite(result)))
    if isinstance(result, float):
        return bool(np.isfinite(result))
    return True


PAIRS = [(name, argument) for name, case in CASES.items() for argument in case.kinds]

# ----------------------------------------------------------------------------- tests


def test_every_public_function_is_covered():
    listed = set()
    for module in [f"numerics.{m}" for m in MODULES] + ["theory.predict"]:
        for name in importlib.import_module(module).__all__:
            listed.add(f"{module}.{name}")
    classes = {name for name in listed if inspect.isclass(_resolve(name)) and name not in CASES
               and dataclasses.is_dataclass(_resolve(name))}
    missing = listed - set(CASES) - set(EXCLUDED) - classes
    assert not missing, f"public names without a bad-input case: {sorted(missing)}"
    # CASES may also cover names kept for compatibility outside __all__ (numerics.solvers' aliases).
    assert all(callable(_resolve(name)) for name in CASES)


def _resolve(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_valid_call_works(name, tmp_path):
    """The baseline: each case's valid arguments are accepted (else the sweep would prove nothing)."""
    case = CASES[name]
    case.run(_with_tmp(case.valid, tmp_path))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_malformation_is_named(name, tmp_path):
    case = CASES[name]
    problems = []
    for argument, kind in case.kinds.items():
        for label, bad, must_raise in malformations(kind, case.valid[argument]):
            problem = check(name, case, argument, label, bad, must_raise, tmp_path)
            if problem:
                problems.append(problem)
    assert not problems, "\n".join(problems)


@st.composite
def bad_calls(draw):
    name, argument = draw(st.sampled_from(PAIRS))
    case = CASES[name]
    kind = case.kinds[argument]
    value = case.valid[argument]
    if kind.startswith(("M", "V")) or kind == "tensor":
        value = np.asarray(value, dtype=float)
        choice = draw(st.sampled_from(["entry", "scale", "shape"]))
        if choice == "entry":                               # one bad entry anywhere
            bad = np.array(value, dtype=float)
            if bad.size:
                bad.flat[draw(st.integers(0, bad.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
                return name, argument, "bad entry", bad, True
        if choice == "scale":                               # huge (squares overflow) or large
            exponent = draw(st.floats(100.0, 300.0))
            return name, argument, f"×1e{exponent:.0f}", value * 10.0 ** exponent + 10.0 ** exponent, exponent > 155
    label, bad, must_raise = draw(st.sampled_from(malformations(kind, case.valid[argument])))
    return name, argument, label, bad, must_raise


@given(bad_calls())
def test_random_malformations_are_named(call):
    import tempfile

    name, argument, label, bad, must_raise = call
    with tempfile.TemporaryDirectory() as folder:
        problem = check(name, CASES[name], argument, label, bad, must_raise, folder)
    assert problem is None, problem
