"""``mlp evaluate``: a saved model on the test part of its data set: accuracy, loss, per-class scores, confusion.

``mlp evaluate MODEL`` loads a classifier saved by ``mlp train`` (or
``net.save``), evaluates it on the test part of the data set it was trained on
(the model's metadata names it; ``--dataset`` chooses another), prints the
accuracy, the mean loss and a table of each class's precision, recall, F1 and
support, and writes into ``--out`` (default: the model's directory):

``confusion.png``    the confusion matrix: class names on the axes, counts in the cells
``evaluation.json``  the same numbers and the confusion matrix

Exit status: 0 on success; 2 for bad arguments, a missing or unreadable model
or data set, or a model whose input width or classes do not fit the data set.
"""
import argparse
import datetime as _dt
import sys
from pathlib import Path

import numpy as np

from .._version import __version__
from ..files import write_json
from ..metrics import averages, class_scores, confusion_matrix
from ..model import load_model
from ..plotting import plot_confusion
from . import options
from .options import EXIT_OK, UsageError

#: The help text of ``mlp evaluate``: this module's description of the command, its files and exit status.
DESCRIPTION = options.help_text(__doc__)


def add_model_arguments(p):
    """The arguments ``mlp evaluate`` and ``mlp predict`` share: the model file and the backend."""
    p.add_argument("model", type=Path, metavar="MODEL",
                   help="a model file (.npz) saved by `mlp train`, `mlp search` or net.save")
    p.add_argument("--backend", choices=options.BACKEND_CHOICES, default="auto",
                   help="kernels (default: auto = cuda when a GPU is usable, else cpu)")


def add_evaluate_arguments(p):
    """Add the options of ``mlp evaluate`` to the parser ``p``."""
    add_model_arguments(p)
    p.add_argument(
        "--dataset", choices=options.DATASET_CHOICES, default=None,
        help="data set whose test part is evaluated (default: the one the model's metadata names, else "
             "auto = fashion-mnist when installed, else digits with a notice)")
    p.add_argument(
        "--data-dir", type=Path, default=None, metavar="DIR",
        help="directory of the IDX files of fashion-mnist or mnist (as for `mlp train`)")
    p.add_argument(
        "--seed", type=options.seed, default=None,
        help="seed of the digits and synthetic data, whose test part it splits or draws (default: the "
             "training run's, from the model's metadata, else 0): evaluate with the seed the model was "
             "trained with, or its training examples may be among the test ones")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="directory of confusion.png and evaluation.json (default: the model file's)")
    p.add_argument("--quiet", action="store_true", help="no notices; only the results")


# --------------------------------------------------------------------------- #
# the model and the data
# --------------------------------------------------------------------------- #
def load_classifier(path, backend):
    """The classifier (softmax output) saved at ``path``, on ``backend``; a usage error says what is wrong."""
    if not path.exists() or path.is_dir():  # a FIFO or a device exists: load_model says what it is
        raise UsageError(f"no model file {path}" + (" (a directory)" if path.is_dir() else ""))
    backend = options.checked_backend(backend)
    try:
        net = load_model(path, backend=backend)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the model: {exc}") from None  # the message names the file
    if net.output != "softmax":
        raise UsageError(f"{path} is not a classifier: its output is {net.output!r}, not 'softmax'")
    return net


def _training_seed(metadata):
    """The seed of the run that trained the model, from ``mlp train``'s or the trainer's metadata, else 0."""
    for key in ("hyperparameters", "train_config"):
        seed = (metadata.get(key) or {}).get("seed")
        if isinstance(seed, int) and seed >= 0:
            return seed
    return 0


def data_options(args, metadata):
    """The ``options.load_data`` arguments: ``--dataset``, else the metadata's; ``--seed``, else the training run's."""
    name = args.dataset
    if name is None:
        name = metadata.get("dataset", "auto")
        if name not in options.DATASET_CHOICES:
            raise UsageError(f"the model was trained on {name!r}, which mlp evaluate cannot load: "
                             f"choose --dataset {{{','.join(options.DATASET_CHOICES)}}}")
    seed = args.seed if args.seed is not None else _training_seed(metadata)
    return argparse.Namespace(dataset=name, data_dir=args.data_dir, seed=seed)


def check_fits(net, dataset):
    """A usage error when the model's input width or class count differs from the data set's."""
    if net.n_features != dataset.n_features:
        raise UsageError(f"the model takes {net.n_features} input features but {dataset.name} has "
                         f"{dataset.n_features}: evaluate it on the data set it was trained on (--dataset)")
    if net.n_outputs != dataset.n_classes:
        raise UsageError(f"the model has {net.n_outputs} classes but {dataset.name} has {dataset.n_classes}")


# --------------------------------------------------------------------------- #
# the report
# --------------------------------------------------------------------------- #
def format_table(class_names, scores, averaged):
    """The per-class table: precision, recall, F1 and support of each class, then the two averages.

    Parameters
    ----------
    class_names : sequence of n_classes str
    scores : mlp.metrics.ClassScores
    averaged : dict, ``mlp.metrics.averages(scores)``

    Returns
    -------
    str, one line per row, columns aligned
    """
    total = int(scores.support.sum())
    rows = [(name, scores.precision[k], scores.recall[k], scores.f1[k], int(scores.support[k]))
            for k, name in enumerate(class_names)]
    rows += [(label, a["precision"], a["recall"], a["f1"], total) for label, a in averaged.items()]
    name_width = max(len("class"), *(len(row[0]) for row in rows))
    lines = [f"{'class':<{name_width}}  precision  recall      f1  support"]
    for k, (name, precision, recall, f1, support) in enumerate(rows):
        if k == len(class_names):
            lines.append("")  # the averages apart from the classes, as in scikit-learn's report
        lines.append(f"{name:<{name_width}}  {precision:9.4f}  {recall:6.4f}  {f1:6.4f}  {support:7d}")
    return "\n".join(lines)


def run_evaluate(args):
    """Run ``mlp evaluate`` with parsed ``args``; the exit status."""
    net = load_classifier(args.model, args.backend)
    data_args = data_options(args, net.metadata)
    dataset, notice = options.load_data(data_args)
    if notice:
        # Shown even with --quiet: the numbers are about another data set than asked.
        print("notice: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); "
              "evaluating on scikit-learn's digits instead", file=sys.stderr)
    check_fits(net, dataset)
    out = args.out if args.out is not None else args.model.parent
    out.mkdir(parents=True, exist_ok=True)
    # A model saved before the data sets named their classes has no names: the data set's then.
    class_names = net.class_names if "class_names" in net.metadata else dataset.class_names

    loss, accuracy = net.evaluate(dataset.X_test, dataset.y_test)
    confusion = confusion_matrix(dataset.y_test, net.predict(dataset.X_test), dataset.n_classes)
    scores = class_scores(confusion)
    averaged = averages(scores)
    options.say(args, f"model: {net!r} from {args.model}")
    print(f"data: the test part of {dataset.name} ({dataset.n_test} examples) from {dataset.source}")
    print(f"accuracy: {accuracy:.4f} ({int(np.trace(confusion))} of {dataset.n_test} correct)")
    print(f"mean loss: {loss:.4f} (cross-entropy, without the l1/l2 penalty)")
    print(format_table(class_names, scores, averaged))

    plot_confusion(confusion, class_names, out / "confusion.png",
                   title=f"{dataset.name} test: accuracy {accuracy:.4f}")
    write_json(out / "evaluation.json", {
        "model": str(args.model),
        "dataset": dataset.name,
        "data_source": dataset.source,
        "seed": data_args.seed,
        "n_test": dataset.n_test,
        "accuracy": accuracy,
        "loss": loss,
        "class_names": list(class_names),
        "per_class": [{"class": name, "label": k, "precision": float(scores.precision[k]),
                       "recall": float(scores.recall[k]), "f1": float(scores.f1[k]),
                       "support": int(scores.support[k])} for k, name in enumerate(class_names)],
        **averaged,
        "confusion": confusion.tolist(),
        "mlp_version": __version__,
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    })
    print(f"wrote {out}/confusion.png, evaluation.json")
    return EXIT_OK
