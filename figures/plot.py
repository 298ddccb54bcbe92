"""Drawing weights and representations: columns as images, a vector as an image, stem plots of h.

Public helpers for the figures and for anyone's own experiments (the tutorials use them).
They draw on an ``Axes`` you pass, or return a new ``matplotlib.figure.Figure``; nothing here
touches pyplot's global state, so they work the same in scripts, tests and notebooks (a
returned figure that ends a notebook cell is displayed, `NotebookFigure`;
``figure.savefig(path)`` writes it).

* :func:`show_vector` — one d-vector as an image of a given shape (a square one by default),
  on a grey scale symmetric about 0, or as a line when d is not an image;
* :func:`show_columns` — the columns of W (d, p) as images, sorted by norm, titled with their
  norm and, given the data, their largest cosine to a training sample (the paper's Fig. 3:
  a memorising column is a copy of one sample, cosine ≈ 1);
* :func:`stem` — a stem plot of a representation ``h = [W1ᵀy]_+`` (p,), with reference levels
  such as eq. (9)'s spike or eq. (8)'s balanced level (the paper's Fig. 4).

>>> import numpy as np
>>> figure = show_columns(np.eye(4), shape=(2, 2))        # 4 columns, each a 2 × 2 image
>>> len(figure.axes), isinstance(figure, Figure)
(4, True)
"""
from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from figures.common import column_cosines, image_side
from numerics.validation import as_matrix, as_vector, positive, positive_int

__all__ = ["show_vector", "show_columns", "stem", "NotebookFigure"]


class NotebookFigure(Figure):
    """A ``matplotlib.figure.Figure`` that Jupyter displays when it ends a cell (as a PNG).

    Figures made without pyplot have no display hook in IPython; ``_repr_png_`` is the hook
    IPython looks for. Everything else is a plain Figure (``savefig``, ``axes``, …).

    >>> NotebookFigure(figsize=(1, 1))._repr_png_()[1:4]
    b'PNG'
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()


def _image_shape(d: int, shape) -> tuple[int, int] | None:
    """``shape`` checked against d, or the square shape of d pixels, or None (not an image)."""
    if shape is None:
        side = image_side(d)
        return None if side is None else (side, side)
    if isinstance(shape, (str, bytes)) or np.ndim(shape) != 1 or len(shape) != 2:
        raise ValueError(f"shape must be an image shape (rows, columns); got {shape!r:.60}")
    rows, cols = (positive_int(f"shape[{i}]", v) for i, v in enumerate(shape))
    if rows * cols != d:
        raise ValueError(f"shape {(rows, cols)} has {rows * cols} pixels but the vector has d = {d} entries")
    return rows, cols


def show_vector(ax, vector, title=None, *, shape=None, fontsize=7, cmap="gray", limit=None):
    """Draw a d-vector on ``ax`` as an image of ``shape`` (default: square if d is a square), else as a line.

    The grey scale is symmetric about 0, ``±max|v|`` or ``±limit`` when given (a fixed scale
    makes contrast, i.e. norm, comparable between images, e.g. ``limit=1`` for pixels in
    [−1, 1]); the sign of a weight is its shade and a column that copies an image looks like
    that image. Returns what was drawn (an ``AxesImage`` or a ``Line2D``).

    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> type(show_vector(ax, np.arange(6.0), shape=(2, 3))).__name__, type(show_vector(ax, np.arange(5.0))).__name__
    ('AxesImage', 'Line2D')
    """
    vector = as_vector("vector", vector)
    image = _image_shape(vector.size, shape)
    if image is None:
        (drawn,) = ax.plot(vector, lw=0.6)
    else:
        bound = (float(np.abs(vector).max()) or 1.0) if limit is None else positive("limit", limit)
        drawn = ax.imshow(vector.reshape(image), cmap=cmap, vmin=-bound, vmax=bound)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)
    return drawn


def show_columns(W, X=None, *, shape=None, n=None, order="norm", ncols=10, title=None, axes=None,
                 size=1.25) -> Figure:
    """The columns of W (d, p) as images, titled ``norm | max cos`` (the paper's Fig. 3).

    ``order="norm"`` shows them by decreasing norm (zero columns last), ``None`` in their
    own order; ``n`` shows only the first n (default: all p). With the training data ``X``
    (d, n_samples) each title also gives the column's largest cosine to a sample — ≈ 1 for a
    column that memorises it (eq. (9)), well below 1 for a column mixing many samples (eq. (8)).
    ``shape`` is the image shape (default: square). Draws into ``axes`` (a sequence of at
    least n Axes) or a new Figure with ``ncols`` per row; returns the Figure.

    >>> W = np.array([[1.0, 0.0, 3.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    >>> figure = show_columns(W, X=W[:, :1], n=2)
    >>> [ax.get_title() for ax in figure.axes]
    ['3 | 0.707', '2 | 0.000']
    """
    W = as_matrix("W", W, cols_name="p")
    if X is not None:
        X = as_matrix("X", X, rows=W.shape[0], rows_name="d, the rows of W", cols_name="n")
    if order not in ("norm", None):
        raise ValueError(f"order must be 'norm' or None; got {order!r}")
    _image_shape(W.shape[0], shape)               # checked before drawing anything
    norms = np.linalg.norm(W, axis=0)
    index = np.argsort(-norms, kind="stable") if order == "norm" else np.arange(W.shape[1])
    count = W.shape[1] if n is None else min(positive_int("n", n), W.shape[1])
    index = index[:count]
    cosine = column_cosines(W[:, index], X).max(axis=1) if X is not None else None
    if axes is None:
        ncols = min(positive_int("ncols", ncols), count)
        rows = -(-count // ncols)
        figure = NotebookFigure(figsize=(size * ncols, (size + 0.3) * rows))
        axes = np.atleast_1d(figure.subplots(rows, ncols)).ravel()
        for ax in axes[count:]:
            ax.axis("off")
    else:
        axes = list(np.ravel(axes))
        if len(axes) < count:
            raise ValueError(f"axes must hold at least {count} Axes (one per column shown); got {len(axes)}")
        figure = axes[0].figure
    for k, j in enumerate(index):
        label = f"{norms[j]:.3g}" if cosine is None else f"{norms[j]:.3g} | {cosine[k]:.3f}"
        show_vector(axes[k], W[:, j], label, shape=shape)
    if title:
        figure.suptitle(title, fontsize=9)
    return figure


def stem(ax, h, *, order=None, title=None, lines=(), xlabel="neuron", fontsize=7):
    """A stem plot of one representation h (p,) on ``ax``, with horizontal reference ``lines``.

    ``order`` reorders the neurons (e.g. by column norm, or the own cluster's block first);
    ``lines`` is a sequence of ``(value, label)`` or ``(value, linestyle, label)``: predicted
    levels such as the memorised spike ``r_i‖x_i‖²`` (eq. (9)) or a balanced block's level
    (eq. (8)). A spiky h has one tall stem; a balanced one p_k stems of about equal height.

    >>> from matplotlib.figure import Figure
    >>> ax = Figure().subplots()
    >>> stem(ax, np.array([0.0, 2.0, 0.1]), lines=[(2.0, "predicted spike")])
    >>> ax.get_legend_handles_labels()[1]
    ['predicted spike']
    """
    h = as_vector("h", h)
    order = np.arange(h.size) if order is None else np.asarray(order)
    if order.shape != h.shape or not np.array_equal(np.sort(order), np.arange(h.size)):
        raise ValueError(f"order must be a permutation of the {h.size} neurons; got {order!r:.60}")
    ax.stem(np.arange(h.size), h[order], markerfmt=".", basefmt=" ")
    for k, line in enumerate(lines):
        if len(line) == 2:
            value, label = line
            style = "--"
        else:
            value, style, label = line
        ax.axhline(float(value), ls=style, color=f"C{3 + k % 4}", lw=1, label=label)
    if title:
        ax.set_title(title, fontsize=fontsize + 1)
    ax.set_xlabel(xlabel, fontsize=fontsize)
    ax.tick_params(labelsize=fontsize)
    if len(lines):
        ax.legend(fontsize=fontsize - 1, loc="upper right")
