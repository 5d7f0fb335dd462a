"""Learning curves of a training run and confusion matrices, drawn with matplotlib's file-only Agg backend.

matplotlib is an optional dependency (``pip install 'numba-mlp[cli]'``): it is
imported only when a figure is drawn, so ``import mlp`` works without it.
"""
import contextlib
import math
from pathlib import Path

import numpy as np

from .files import atomic_write


def pyplot():
    """matplotlib.pyplot on the Agg backend; an ImportError that says how to install matplotlib."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting needs matplotlib: "
                          "pip install 'numba-mlp[cli]' (or pip install matplotlib)") from None
    # Agg draws into files only: no display is needed, and none is opened.
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


@contextlib.contextmanager
def png_figure(path, dpi=100, **subplots):
    """``(fig, axes)`` of ``plt.subplots(**subplots)``, written to ``path`` as a PNG (atomically) when the
    block ends without an error, and closed in any case: a failed drawing leaves no file and no open figure."""
    plt = pyplot()
    fig, axes = plt.subplots(**subplots)
    try:
        yield fig, axes
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    finally:
        plt.close(fig)


def _series(records, key):
    """Epochs and values of ``key`` in ``records``, skipping epochs where it is missing or NaN."""
    epochs, values = [], []
    for r in records:
        value = r.get(key)
        if value is None:
            continue
        value = float(value)
        if math.isfinite(value):
            epochs.append(r["epoch"])
            values.append(value)
    return epochs, values


def plot_history(records, path, *, title=None, kept_epoch=None):
    """Draw training/validation loss and validation accuracy per epoch into a PNG file.

    Without validation records (a run on all the training data), the second panel shows
    the learning rate of each epoch instead.

    Parameters
    ----------
    records : sequence of dict
        One per epoch, as in ``History.records``: ``"epoch"`` and any of
        ``"train_loss"``, ``"val_loss"``, ``"val_accuracy"``, ``"learning_rate"`` (None or NaN
        entries are left out of the curve).
    path : str or os.PathLike
        The PNG file, written atomically (``mlp.files.atomic_write``).
    title : str, optional
        Figure title.
    kept_epoch : int, optional
        The epoch whose parameters the model holds, marked with a dashed line.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    records = list(records)
    for i, r in enumerate(records):
        if not isinstance(r, dict) or "epoch" not in r:
            raise ValueError(f"records[{i}] must be a dict with an 'epoch' key; got {r!r}")
    path = Path(path)
    with png_figure(path, ncols=2, figsize=(10, 4), constrained_layout=True) as (fig, (ax_loss, ax_acc)):
        for key, label in (("train_loss", "training loss"), ("val_loss", "validation loss")):
            epochs, values = _series(records, key)
            if values:
                ax_loss.plot(epochs, values, marker=".", label=label)
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("loss")
        ax_loss.set_title("loss")
        epochs, values = _series(records, "val_accuracy")
        if values or not _series(records, "learning_rate")[1]:
            ax_acc.plot(epochs, values, marker=".", color="tab:green", label="validation accuracy")
            ax_acc.set_ylabel("accuracy")
            ax_acc.set_title("validation accuracy")
        else:  # trained without a validation set (the recipes train on all the data): the schedule instead
            epochs, values = _series(records, "learning_rate")
            ax_acc.plot(epochs, values, marker=".", color="tab:orange", label="learning rate")
            ax_acc.set_ylabel("learning rate")
            ax_acc.set_title("learning rate (no validation set)")
        ax_acc.set_xlabel("epoch")
        for ax in (ax_loss, ax_acc):
            if kept_epoch is not None:
                ax.axvline(kept_epoch, color="grey", linestyle="--", linewidth=1, label="kept epoch")
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
        if title:
            fig.suptitle(title)
    return path


def plot_confusion(confusion, class_names, path, *, title=None):
    """Draw a confusion matrix into a PNG file: class names on the axes, the count in every cell.

    Parameters
    ----------
    confusion : int array (n_classes, n_classes)
        ``confusion[i, j]``: the examples of true class i predicted as j (``mlp.metrics.confusion_matrix``).
    class_names : sequence of n_classes str
        Label order.
    path : str or os.PathLike
        The PNG file, written atomically (``mlp.files.atomic_write``).
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    counts = np.asarray(confusion)
    names = [str(name) for name in class_names]
    if counts.ndim != 2 or counts.shape != (len(names), len(names)):
        raise ValueError(f"confusion must be ({len(names)}, {len(names)}), one row and column per class name; "
                         f"got shape {counts.shape}")
    path = Path(path)
    n = len(names)
    side = max(4.0, 0.6 * n + 2.5)  # room for the names of ten classes, and their counts, at a readable size
    with png_figure(path, figsize=(side + 1, side), constrained_layout=True) as (fig, ax):
        image = ax.imshow(counts, cmap="Blues", vmin=0)
        fig.colorbar(image, ax=ax, shrink=0.8, label="examples")
        ticks = np.arange(n)
        ax.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(ticks, names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        # Dark cells get white text so that every count stays readable.
        dark = counts.max() / 2 if counts.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if counts[i, j] > dark else "black")
        if title:
            ax.set_title(title)
    return path
