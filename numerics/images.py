"""Small offline image sets as data matrices: faces, handwritten digits, natural-image patches.

Images are flattened row-major into the columns of ``X`` (shape ``(d, n)``) and scaled to
[−1, 1]. Nothing is downloaded: the files ship inside scikit-image and scikit-learn.

* ``faces``: ``skimage.data.lfw_subset()`` (the first 100 of its 200 images are faces, 25 × 25);
* ``digits``: ``sklearn.datasets.load_digits()`` (1797 images, 8 × 8, 10 classes);
* ``camera_patches``: random patches of ``skimage.data.camera()``;
* ``resize_columns``: resize images stored as columns (32 × 32 gives the paper's d = 1024).
"""
from __future__ import annotations

import numpy as np

from numerics.validation import as_matrix, as_rng, positive_int

__all__ = ["faces", "digits", "camera_patches", "resize_columns"]


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


def faces(n=None, seed=0, size=25) -> np.ndarray:
    """Face images from ``skimage.data.lfw_subset()`` as columns in [−1, 1], shape (size², n).

    Only the first 100 images of the subset are faces, so n ≤ 100 (n=None: all 100 in
    order; otherwise n distinct random faces, sorted). ``size=32`` resizes the 25 × 25
    images to 32 × 32 (d = 1024, the paper's size). Offline: the file ships with scikit-image.

    >>> faces(n=5, size=32).shape
    (1024, 5)
    """
    from skimage.data import lfw_subset

    size = positive_int("size", size)
    images = lfw_subset()[:100][_subset(100, n, seed)]          # (n, 25, 25) in [0, 1]
    X = 2.0 * images.reshape(images.shape[0], -1).T.astype(np.float64) - 1.0
    return X if size == 25 else resize_columns(X, (25, 25), (size, size))


def digits(n=None, classes=None, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Handwritten digits from ``sklearn.datasets.load_digits()``: ``(X (64, n), labels (n,))``.

    Pixel values 0 … 16 are mapped to [−1, 1] (x/8 − 1). ``classes`` keeps only those
    digits; n=None keeps every image in dataset order, otherwise n random ones (sorted).
    Offline: the data ship with scikit-learn.

    >>> X, y = digits(n=10, classes=[0, 1])
    >>> X.shape, sorted(set(y.tolist())) <= [0, 1]
    ((64, 10), True)
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
    return images[index].T / 8.0 - 1.0, targets[index]


def camera_patches(size=8, n=1000, seed=0) -> np.ndarray:
    """n random size × size patches of ``skimage.data.camera()`` in [−1, 1], shape (size², n).

    Patch corners are uniform over the 512 × 512 image; patches are flattened row-major.
    Offline: the image ships with scikit-image.

    >>> camera_patches(size=4, n=3).shape
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
    return np.stack([image[r:r + size, c:c + size].ravel() for r, c in zip(rows, cols)], axis=1)
