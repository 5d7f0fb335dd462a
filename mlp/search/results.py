"""What a search found: ``SearchResult``, the ranking of trials, and the files that show them.

``trials.csv`` and ``trials.json`` hold one row per trial (its parameters,
then :data:`METRICS`); ``search.png`` plots validation accuracy against each
varied hyper-parameter. Every file is written atomically.
"""
import csv
import dataclasses
import io
import json
import math

from ..checks import is_real
from ..files import write_text
from ..plotting import png_figure

#: Metric columns of the results table, after the parameters.
METRICS = ("val_accuracy", "val_loss", "train_loss", "epochs_run", "best_epoch", "stop_reason",
           "seconds", "threads", "worker", "resumed")
# Parameters plotted on a log axis (symlog when 0 is among the values).
_LOG_SCALE = ("l2", "l1", "learning_rate", "lr_decay", "epsilon")


@dataclasses.dataclass
class SearchResult:
    """What :func:`mlp.search.search` found.

    Attributes
    ----------
    trials : list of dict
        One row per trial, in the order of the search: ``trial`` (its index),
        ``key`` (journal key), the parameters, then ``val_accuracy``,
        ``val_loss``, ``train_loss``, ``epochs_run``, ``best_epoch``,
        ``stop_reason``, ``seconds`` (training time), ``threads`` (BLAS threads,
        None: not limited), ``worker`` (host:pid) and ``resumed`` (True when
        taken from the journal of an earlier run).
    best : dict
        The best trial's row.
    best_params : dict
        Its parameters.
    test_accuracy : float or None
        Accuracy on the test set of the best configuration retrained on the
        training split (None when no test set was given).
    refit_val_accuracy : float
        Validation accuracy of that retrained network (equals the trial's).
    best_model : mlp.MLP
        The retrained best network.
    n_trained, n_resumed : int
        Trials trained by this call, and taken from the journal.
    seconds : float
        Wall time of this call, retraining and files included.
    out_dir : pathlib.Path or None
    """

    trials: list
    best: dict
    best_params: dict
    test_accuracy: object
    refit_val_accuracy: float
    best_model: object
    n_trained: int
    n_resumed: int
    seconds: float
    out_dir: object


def trial_row(index, key, record):
    """The table row of trial ``index``: its index and key, parameters, then the metrics."""
    row = {"trial": index, "key": key}
    row.update(record["params"])
    row.update({m: record.get(m) for m in METRICS})
    return row


def rank_key(row):
    """Sorts the best trial first: highest validation accuracy, then lowest loss, then the earlier trial."""
    loss = row["val_loss"]
    return (-row["val_accuracy"], math.inf if loss is None else loss, row["trial"])


def _cell(value):
    if isinstance(value, list):
        return json.dumps(value)
    return "" if value is None else value


def write_tables(out_dir, rows, names):
    """``trials.csv`` and ``trials.json``: one row per trial, the parameters ``names`` then the metrics."""
    columns = ["trial", "key", *names, *METRICS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    write_text(out_dir / "trials.csv", buffer.getvalue())
    write_text(out_dir / "trials.json", json.dumps(rows, indent=1, allow_nan=False) + "\n")


def _axis_values(rows, name):
    """x positions, tick labels (None for a numeric axis) and whether to use a log scale."""
    values = [row.get(name) for row in rows]
    if all(is_real(x) for x in values):
        return [float(x) for x in values], None, name in _LOG_SCALE
    labels = [json.dumps(x) if isinstance(x, list) else str(x) for x in values]
    order = sorted(set(labels), key=labels.index)
    return [order.index(s) for s in labels], order, False


def plot_trials(path, rows, names, best_row):
    """``search.png``: validation accuracy against each varied parameter of ``names``, the best starred."""
    varied = [n for n in names if len({json.dumps(row.get(n)) for row in rows}) > 1] or list(names[:1])
    ncols = min(3, len(varied))
    nrows = -(-len(varied) // ncols)
    accuracy = [row["val_accuracy"] for row in rows]
    with png_figure(path, dpi=110, nrows=nrows, ncols=ncols, figsize=(4.2 * ncols, 3.4 * nrows),
                    squeeze=False) as (fig, axes):
        for ax, name in zip(axes.flat, varied):
            x, labels, log = _axis_values(rows, name)
            ax.scatter(x, accuracy, s=22, alpha=0.7, label="trials")
            bx = x[rows.index(best_row)]
            ax.scatter([bx], [best_row["val_accuracy"]], marker="*", s=160, color="C3", label="best")
            if labels is not None:
                ax.set_xticks(range(len(labels)))
                ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
            elif log:
                positive = [p for p in x if p > 0]
                if positive and min(x) > 0:
                    ax.set_xscale("log")
                elif positive:
                    # 0 (no regularisation) beside positive strengths: linear near 0, log beyond.
                    ax.set_xscale("symlog", linthresh=min(positive))
            ax.set_xlabel(name)
            ax.set_ylabel("validation accuracy")
            ax.grid(True, alpha=0.3)
        for ax in list(axes.flat)[len(varied):]:
            ax.set_visible(False)
        axes.flat[0].legend(fontsize=8)
        fig.suptitle(f"{len(rows)} trials; best validation accuracy {best_row['val_accuracy']:.4f}")
        fig.tight_layout()
