"""Learning curves of a training run, drawn with matplotlib's file-only Agg backend.

matplotlib is an optional dependency (``pip install 'numba-mlp[cli]'``): it is
imported only when a figure is drawn, so ``import mlp`` works without it.
"""
import math
from pathlib import Path

from .files import atomic_write


def pyplot():
    """matplotlib.pyplot on the Agg backend; an ImportError that says how to install matplotlib."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plotting learning curves needs matplotlib: "
                          "pip install 'numba-mlp[cli]' (or pip install matplotlib)") from None
    # Agg draws into files only: no display is needed, and none is opened.
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


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
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    try:
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
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
    return path
