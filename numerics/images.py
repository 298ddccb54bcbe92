"""Small offline image sets as data matrices, and the selections that bring real data close to the theory.

Every loader returns an :class:`Images` record: ``X`` of shape ``(d, n)`` (images flattened
row-major into the columns, scaled to [−1, 1]), ``labels`` (one integer class per column, or
``None`` when the set has no classes) and ``shape``, the image shape (rows, columns), so
``images.X[:, i].reshape(images.shape)`` is image i. Nothing is downloaded: the files ship
inside scikit-image and scikit-learn.

* ``faces``: ``skimage.data.lfw_subset()`` (the first 100 of its 200 images are faces, 25 × 25);
* ``digits``: ``sklearn.datasets.load_digits()`` (1797 images, 8 × 8, 10 classes);
* ``camera_patches``: random patches of ``skimage.data.camera()``;
* ``resize_columns``: resize images stored as columns (32 × 32 gives the paper's d = 1024).

**Real data against the assumptions.** Corollary 3.2 needs the training samples pairwise
negatively correlated (β1 < 0) and Theorem 3.1 needs cluster means that are (β < 0). Raw
images in [−1, 1] are far from it: they share the mean image, so every pair has a large
positive cosine (β1 ≈ 0.996 over all digits, β ≈ 0.90 between digit class means). Three
helpers move real data towards the theory's regime, and each says how far it gets:

* :func:`centred` subtracts the mean image (the origin a bias-free network cannot learn);
* :func:`least_correlated` picks n samples whose largest pairwise cosine is small
  (memorisation sets, Cor. 3.2);
* :func:`most_obtuse_classes` picks the k classes whose means are the most obtuse
  (generalisation, Theorem 3.1).

>>> digits_ = digits()
>>> digits_.X.shape, digits_.labels.shape, digits_.shape
((64, 1797), (1797,), (8, 8))
>>> most_obtuse_classes(centred(digits_.X), digits_.labels, 3)
(2, 4, 9)
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from numerics.validation import as_matrix, as_rng, labels_for, positive_int

__all__ = ["Images", "faces", "digits", "camera_patches", "resize_columns", "centred", "least_correlated",
           "most_obtuse_classes", "largest_cosine"]


@dataclass(frozen=True, eq=False)
class Images:
    """An image set as a data matrix: what every loader of this module returns.

    ``X`` (d, n): the images flattened row-major into columns, in [−1, 1]; ``labels`` (n,)
    integer classes, or ``None`` when the set has none (faces, camera patches); ``shape``
    (rows, columns) of one image, ``rows · columns = d``; ``source``: where the pixels come from.

    >>> patches = camera_patches(size=4, n=3)
    >>> patches.X.shape, patches.labels, patches.shape, patches.image(0).shape
    ((16, 3), None, (4, 4), (4, 4))
    """
    X: np.ndarray
    labels: np.ndarray | None
    shape: tuple[int, int]
    source: str

    @property
    def d(self) -> int:
        """Pixels per image (the rows of X)."""
        return self.X.shape[0]

    @property
    def n(self) -> int:
        """Number of images (the columns of X)."""
        return self.X.shape[1]

    def image(self, i: int) -> np.ndarray:
        """Image i as a 2-D array of ``shape``."""
        return self.X[:, i].reshape(self.shape)


def _rng(seed) -> np.random.Generator:
    return as_rng("seed", seed)


def _shape(name: str, value) -> tuple:
    """A 2-D image shape: two positive integers."""
    if isinstance(value, (str, bytes)) or np.ndim(value) != 1 or len(value) != 2:
        raise ValueError(f"{name} must be an image shape (rows, columns); got {value!r:.60}")
    return tuple(positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))


def _subset(total: int, n, seed) -> np.ndarray:
    """All indices (n=None) or n sorted distinct random indices out of ``total``."""
    rng = _rng(seed)
    if n is None:
        return np.arange(total)
    n = positive_int("n", n)
    if n > total:
        raise ValueError(f"n must be <= {total} (the number of available images); got {n}")
    return np.sort(rng.choice(total, size=n, replace=False))


def resize_columns(X, shape, new_shape) -> np.ndarray:
    """Resize images stored as columns (row-major ``shape``) to ``new_shape``.

    Uses ``skimage.transform.resize`` (bilinear, anti-aliased when shrinking); the result
    is clipped to the range of X, so data in [−1, 1] stay in [−1, 1].

    >>> resize_columns(np.zeros((4, 3)), (2, 2), (3, 3)).shape
    (9, 3)
    """
    from skimage.transform import resize

    shape, new_shape = _shape("shape", shape), _shape("new_shape", new_shape)
    X = as_matrix("X", X, rows=int(np.prod(shape)), cols_name="n")
    shrink = any(b < a for a, b in zip(shape, new_shape))
    columns = [resize(X[:, i].reshape(shape), new_shape, order=1, mode="edge",
                      anti_aliasing=shrink, preserve_range=True).ravel() for i in range(X.shape[1])]
    return np.clip(np.stack(columns, axis=1), X.min(initial=0.0), X.max(initial=0.0))


def faces(n=None, seed=0, size=25) -> Images:
    """Face images from ``skimage.data.lfw_subset()`` in [−1, 1]: `Images` with X (size², n), no labels.

    Only the first 100 images of the subset are faces, so n ≤ 100 (n=None: all 100 in
    order; otherwise n distinct random faces, sorted). ``size=32`` resizes the 25 × 25
    images to 32 × 32 (d = 1024, the paper's size). Offline: the file ships with scikit-image.

    >>> faces(n=5, size=32).X.shape
    (1024, 5)
    """
    from skimage.data import lfw_subset

    size = positive_int("size", size)
    images = lfw_subset()[:100][_subset(100, n, seed)]          # (n, 25, 25) in [0, 1]
    X = 2.0 * images.reshape(images.shape[0], -1).T.astype(np.float64) - 1.0
    X = X if size == 25 else resize_columns(X, (25, 25), (size, size))
    return Images(X, None, (size, size), "skimage.data.lfw_subset (the first 100 images are faces), in [-1, 1]")


def digits(n=None, classes=None, seed=0) -> Images:
    """Handwritten digits from ``sklearn.datasets.load_digits()``: `Images` with X (64, n), labels 0 … 9.

    Pixel values 0 … 16 are mapped to [−1, 1] (x/8 − 1). ``classes`` keeps only those
    digits; n=None keeps every image in dataset order, otherwise n random ones (sorted).
    Offline: the data ship with scikit-learn.

    >>> data = digits(n=10, classes=[0, 1])
    >>> data.X.shape, sorted(set(data.labels.tolist())) <= [0, 1], data.shape
    ((64, 10), True, (8, 8))
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, targets = bunch.data, bunch.target.astype(np.int64)
    if classes is not None:
        classes = np.atleast_1d(np.asarray(classes))
        if classes.dtype.kind not in "iuf" or classes.size == 0 or not np.all(np.isin(classes, np.arange(10))):
            raise ValueError(f"classes must be digits in 0 … 9; got {classes!r}")
        keep = np.isin(targets, classes)
        images, targets = images[keep], targets[keep]
    index = _subset(images.shape[0], n, seed)
    return Images(images[index].T / 8.0 - 1.0, targets[index], (8, 8),
                  "sklearn.datasets.load_digits, x/8 - 1 in [-1, 1]")


def camera_patches(size=8, n=1000, seed=0) -> Images:
    """n random size × size patches of ``skimage.data.camera()`` in [−1, 1]: `Images`, X (size², n), no labels.

    Patch corners are uniform over the 512 × 512 image; patches are flattened row-major.
    Offline: the image ships with scikit-image.

    >>> camera_patches(size=4, n=3).X.shape
    (16, 3)
    """
    from skimage.data import camera

    size, n = positive_int("size", size), positive_int("n", n)
    image = camera().astype(np.float64) / 127.5 - 1.0
    if size > min(image.shape):
        raise ValueError(f"size must be <= {min(image.shape)}; got {size}")
    rng = _rng(seed)
    rows = rng.integers(0, image.shape[0] - size + 1, size=n)
    cols = rng.integers(0, image.shape[1] - size + 1, size=n)
    X = np.stack([image[r:r + size, c:c + size].ravel() for r, c in zip(rows, cols)], axis=1)
    return Images(X, None, (size, size), "patches of skimage.data.camera, x/127.5 - 1 in [-1, 1]")


# ----------------------------------------------------------------------------- selections


def centred(X, origin=None) -> np.ndarray:
    """``X − o``: every column of X (d, n) minus the origin o, by default the mean column.

    A bias-free ReLU network is positively homogeneous about 0, so the theory sees images
    through their directions from 0. Raw images in [−1, 1] all point roughly along the mean
    image; centring removes it, after which the images of different classes can be pairwise
    obtuse (β < 0), as Theorem 3.1 asks. To draw a centred image, add the origin back
    (``X.mean(axis=1, keepdims=True)`` for the default).

    >>> X = np.array([[1.0, 3.0], [2.0, 2.0]])
    >>> centred(X).tolist()
    [[-1.0, 1.0], [0.0, 0.0]]
    """
    X = as_matrix("X", X, cols_name="n")
    if origin is None:
        return X - X.mean(axis=1, keepdims=True)
    origin = as_matrix("origin", np.reshape(origin, (-1, 1)) if np.ndim(origin) == 1 else origin,
                       rows=X.shape[0], cols=1, cols_name="1")
    return X - origin


def _unit_columns(name: str, X) -> np.ndarray:
    norms = np.linalg.norm(X, axis=0)
    if np.any(norms == 0):
        raise ValueError(f"{name} has {int(np.sum(norms == 0))} zero column(s); cosines need nonzero columns")
    return X / norms


def largest_cosine(X) -> float:
    """β1: the largest cosine between two distinct columns of X (d, n); Cor. 3.2 needs β1 < 0.

    ``-inf`` for a single column (no pair).

    >>> largest_cosine(np.array([[1.0, -1.0, 0.0], [0.0, 0.1, -1.0]]))
    0.0
    """
    X = as_matrix("X", X, cols_name="n")
    if X.shape[1] < 2:
        return -np.inf
    unit = _unit_columns("X", X)
    cosine = unit.T @ unit
    np.fill_diagonal(cosine, -np.inf)
    return float(cosine.max())


def least_correlated(X, n: int) -> np.ndarray:
    """Indices (sorted) of n columns of X (d, N) chosen greedily to make β1, their largest pairwise cosine, small.

    Corollary 3.2 needs β1 < 0, and images are positively correlated (lfw faces: mean cosine
    ≈ 0.3 raw); this picks the subset closest to the assumption — centre the images first
    (:func:`centred`) to reach β1 < 0 at all. Greedy from every start: add the column whose
    largest cosine to those already chosen is smallest (lowest index on ties), keep the start
    whose set has the smallest β1. Deterministic; O(N²·n) in vectorised steps.

    >>> X = np.array([[1.0, 0.9, -1.0, 0.0], [0.0, 0.1, 0.0, 1.0]])
    >>> least_correlated(X, 2).tolist()          # columns 0 and 2 are antipodal
    [0, 2]
    """
    X = as_matrix("X", X, cols_name="N")
    n = positive_int("n", n)
    total = X.shape[1]
    if n > total:
        raise ValueError(f"n must be <= {total} (the columns of X); got {n}")
    unit = _unit_columns("X", X)
    cosine = unit.T @ unit
    best_worst, best_set = np.inf, None
    for start in range(total):
        chosen = [start]
        worst = cosine[start].copy()               # largest cosine of each column to the chosen set
        worst[start] = np.inf
        while len(chosen) < n:
            j = int(np.argmin(worst))
            chosen.append(j)
            worst = np.maximum(worst, cosine[j])
            worst[chosen] = np.inf
        value = float(np.max(cosine[np.ix_(chosen, chosen)] - 3.0 * np.eye(n))) if n > 1 else -np.inf
        if best_set is None or value < best_worst:
            best_worst, best_set = value, sorted(chosen)
    return np.array(best_set)


def most_obtuse_classes(X, labels, k: int, max_combinations: int = 1_000_000) -> tuple[int, ...]:
    """The k classes whose means are the most obtuse: the smallest largest cosine β between their means.

    Theorem 3.1 needs β < 0 (pairwise obtuse cluster means), which allows at most d + 1
    clusters; on centred digits the best triple is (2, 4, 9) with β = −0.18, and no 5 classes
    reach β < 0. Exhaustive over the ``C(K, k)`` subsets of the K classes (refused above
    ``max_combinations``); ties go to the first subset in increasing label order. Returns
    the labels in increasing order; measure β with ``numerics.data.separability``.

    >>> X = np.array([[1.0, 1.1, -1.0, 0.0], [0.0, 0.0, 0.1, 1.0]])
    >>> most_obtuse_classes(X, [0, 0, 1, 2], 2)
    (0, 1)
    """
    X = as_matrix("X", X, cols_name="n")
    labels = labels_for("labels", labels, X.shape[1], d=X.shape[0])
    classes = np.unique(labels)
    k = positive_int("k", k, minimum=2)
    if k > classes.size:
        raise ValueError(f"k must be <= {classes.size} (the number of classes in labels); got {k}")
    count = int(np.prod([classes.size - i for i in range(k)]) // np.prod(np.arange(1, k + 1)))
    if count > positive_int("max_combinations", max_combinations):
        raise ValueError(f"choosing k = {k} of {classes.size} classes has {count} subsets, more than "
                         f"max_combinations = {max_combinations}")
    means = np.stack([X[:, labels == c].mean(axis=1) for c in classes], axis=1)
    unit = _unit_columns("the class means", means)
    cosine = unit.T @ unit
    best, best_value = None, np.inf
    for subset in itertools.combinations(range(classes.size), k):
        value = max(cosine[a, b] for a, b in itertools.combinations(subset, 2))
        if value < best_value:
            best, best_value = subset, value
    return tuple(int(classes[i]) for i in best)
