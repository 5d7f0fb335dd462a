"""The ``mlp`` command line: ``mlp train`` (and ``mlp search``, from ``mlp.search``).

``mlp train`` trains a multilayer perceptron on a data set, holds out a
validation part of the *training* data for monitoring and early stopping, and
evaluates the test set once, at the end. It writes into its output directory:

``model.npz``     the trained network (``mlp.load``), with the hyper-parameters as metadata
``history.json``  one record per epoch (losses, validation accuracy, seconds)
``curves.png``    training/validation loss and validation accuracy per epoch
``summary.json``  data set, backend, layer sizes, hyper-parameters, timings, accuracies

Exit status: 0 on success; 1 when training diverged (the files are still
written, with the last good parameters); 2 for bad arguments, a missing data
set or an unavailable backend; 130 when interrupted with Ctrl-C (the files
are written with the best parameters seen so far).

The defaults of ``mlp train`` (what ``make train`` runs) were chosen on a
validation split of Fashion-MNIST's training data, never on its test set.
"""
import argparse
import datetime as _dt
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ._version import __version__

# Defaults of `mlp train` (what `make train` runs), chosen by validation accuracy
# on a stratified 10% of Fashion-MNIST's training data, never its test set.
# Measured (seed 0, 784-256-10, momentum 0.9, batch 128 unless said; "last5" is
# the mean validation accuracy of the last five epochs, less noisy than one):
#   lr 0.05, decay 0.05, keep (0.9, 0.7), l2 5e-5, 80 epochs: last5 0.902  <- chosen
#     the same at 60 epochs: 0.899; at 50: 0.896
#   lr 0.05, decay 0.05, keep (0.9, 0.8), l2 5e-5, 50 epochs: last5 0.898
#   lr 0.05, decay 0.05, keep (0.9, 0.7), l2 1e-5, 40 epochs: last5 0.895
#   lr 0.05, decay 0.05, no dropout, l2 1e-4, 40 epochs: 0.8975 at epoch 40
#   lr 0.05, decay 0.1, keep (0.8, 0.5), l2 1e-5, 40 epochs: 0.885 (too much dropout)
#   lr 0.1, decay 0.1, keep (1, 0.7), l2 1e-5, 50 epochs: last5 0.894
#   batch 64, lr 0.02, decay 0.02, keep (1, 0.7): 0.899 at 40, twice the time per epoch
DEFAULT_HIDDEN = (256,)
DEFAULT_EPOCHS = 80
DEFAULT_BATCH_SIZE = 128
DEFAULT_LEARNING_RATE = 0.05
DEFAULT_MOMENTUM = 0.9
DEFAULT_LR_DECAY = 0.05
DEFAULT_L2 = 5e-5
DEFAULT_KEEP_INPUT = 0.9
DEFAULT_KEEP_HIDDEN = 0.7
DEFAULT_VALIDATION_FRACTION = 0.1

DATASET_CHOICES = ("auto", "fashion-mnist", "mnist", "digits", "synthetic")
BACKEND_CHOICES = ("auto", "cpu", "numpy", "cuda")
EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# --------------------------------------------------------------------------- #
# argument types: each error message is shown by argparse next to the option
# --------------------------------------------------------------------------- #
def _int_at_least(text, minimum, expected):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}; got {value}")
    return value


def _positive_int(text):
    return _int_at_least(text, 1, "a positive integer")


def _non_negative_int(text):
    return _int_at_least(text, 0, "an integer >= 0")


def _float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
    return value


def _positive_float(text):
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got {value}")
    return value


def _non_negative_float(text):
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0; got {value}")
    return value


def _momentum(text):
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a momentum in [0, 1); got {value}")
    return value


def _keep_probability(text):
    value = _float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a keep probability in (0, 1]; got {value}")
    return value


def _open_fraction(text):
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1); got {value}")
    return value


# --------------------------------------------------------------------------- #
# parser
# --------------------------------------------------------------------------- #
def _add_train_arguments(p):
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset", choices=DATASET_CHOICES, default="auto",
        help="data set (default: auto = fashion-mnist when installed, else digits with a notice)")
    data.add_argument(
        "--data-dir", type=Path, default=None, metavar="DIR",
        help="directory of the IDX files of fashion-mnist or mnist (default: $MLP_DATA, then "
             "/usr/share/datasets/fashion-mnist from `apt-get install dataset-fashion-mnist`); "
             "with --dataset auto it means fashion-mnist from DIR, without the fallback")
    data.add_argument(
        "--validation-fraction", type=_open_fraction, default=DEFAULT_VALIDATION_FRACTION,
        metavar="F",
        help="fraction of the training data held out for validation, stratified "
             f"(default: {DEFAULT_VALIDATION_FRACTION}; 0 = no validation set)")

    net = p.add_argument_group("network")
    net.add_argument(
        "--hidden", type=_positive_int, nargs="*", default=list(DEFAULT_HIDDEN), metavar="N",
        help="sizes of the ReLU hidden layers (default: %(default)s; none = softmax regression)")
    net.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                     help="floating-point type of parameters and data (default: %(default)s)")
    net.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                     help="kernels (default: auto = cuda when a GPU is usable, else cpu)")

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=_positive_int, default=DEFAULT_EPOCHS,
                     help="maximum number of epochs (default: %(default)s)")
    opt.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE,
                     help="mini-batch size (default: %(default)s)")
    opt.add_argument("--lr", type=_positive_float, default=DEFAULT_LEARNING_RATE,
                     help="learning rate (default: %(default)s)")
    opt.add_argument("--momentum", type=_momentum, default=DEFAULT_MOMENTUM,
                     help="momentum in [0, 1) (default: %(default)s)")
    opt.add_argument("--lr-decay", type=_non_negative_float, default=DEFAULT_LR_DECAY,
                     help="learning rate of epoch e = lr / (1 + lr_decay * e) (default: %(default)s)")
    opt.add_argument("--early-stopping", action="store_true",
                     help="stop when the validation loss has not improved for --patience "
                          "epochs, keeping the best parameters (needs a validation set)")
    opt.add_argument("--patience", type=_positive_int, default=5,
                     help="epochs without improvement before early stopping (default: %(default)s)")

    reg = p.add_argument_group("regularisation")
    reg.add_argument("--l2", type=_non_negative_float, nargs="+", default=[DEFAULT_L2], metavar="A",
                     help="L2 penalty: one value, or one per weight matrix (default: %(default)s)")
    reg.add_argument("--l1", type=_non_negative_float, nargs="+", default=[0.0], metavar="B",
                     help="L1 penalty: one value, or one per weight matrix (default: %(default)s)")
    reg.add_argument(
        "--keep-prob", type=_keep_probability, nargs="+", default=None, metavar="P",
        help="dropout keep probability: one value, or the input's then each hidden layer's "
             f"(default: {DEFAULT_KEEP_INPUT} for the input, {DEFAULT_KEEP_HIDDEN} for hidden layers)")
    reg.add_argument("--dropout-mode", choices=("per_sample", "per_batch"), default="per_sample",
                     help="a fresh mask for every sample, or one per mini-batch as in the lecture's "
                          "reduced network (default: %(default)s)")

    run = p.add_argument_group("run")
    run.add_argument("--seed", type=_non_negative_int, default=0,
                     help="seeds the split, the initial weights, shuffling and dropout (default: 0)")
    run.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="output directory (default: runs/<dataset>-<timestamp>)")
    run.add_argument("--quiet", action="store_true",
                     help="no progress bar or notices; only the final results")


def build_parser(argv=()):
    """The argument parser of the ``mlp`` command.

    ``argv`` is looked at only to decide whether the ``search`` subcommand's
    options are needed: ``mlp.search`` is imported for ``mlp search`` alone.
    """
    parser = argparse.ArgumentParser(
        prog="mlp", description="Multilayer perceptrons trained from scratch (numba-mlp).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    train = sub.add_parser(
        "train", help="train a network, evaluate it on the test set once, save model and curves",
        description="\n\n".join(__doc__.split("\n\n")[1:4]), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_train_arguments(train)
    search = sub.add_parser("search", help="hyper-parameter search on a validation split")
    if list(argv)[:1] == ["search"]:
        # Only `mlp search` pays for importing mlp.search (main checked that it imports).
        from . import search as search_module

        search_module.add_cli_arguments(search)
    return parser


# --------------------------------------------------------------------------- #
# files: every one written atomically (mlp.persistence.atomic_write), so a
# reader never sees half a file and an interrupted write leaves no debris
# --------------------------------------------------------------------------- #
def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _nan_to_none(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path``, atomically; NaN and inf become null."""
    from .files import atomic_write

    text = json.dumps(_nan_to_none(obj), indent=2, default=_json_default, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# --------------------------------------------------------------------------- #
# mlp train
# --------------------------------------------------------------------------- #
class _UsageError(Exception):
    """Bad input found after parsing: reported like an argparse error, exit status 2."""


def _say(args, message):
    if not args.quiet:
        print(message, file=sys.stderr)


_DATA_DIR_HINT = "(`path` is --data-dir DIR on the command line.)"


def _load_data(args):
    """(Dataset, notice or None) for ``--dataset``; a missing explicit data set is a usage error."""
    from . import datasets

    name = args.dataset
    if name == "auto":
        try:
            return datasets.load_fashion_mnist(args.data_dir), None
        except FileNotFoundError as exc:
            if args.data_dir is not None:
                raise _UsageError(f"{exc} {_DATA_DIR_HINT}") from None
            notice = ("notice: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); "
                      "training on scikit-learn's digits instead")
            return datasets.load_dataset("digits", seed=args.seed), notice
    try:
        if name == "digits":
            return datasets.load_dataset("digits", seed=args.seed), None
        if name == "synthetic":
            return datasets.load_dataset("synthetic", seed=args.seed), None
        return datasets.load_dataset(name, path=args.data_dir), None
    except FileNotFoundError as exc:
        raise _UsageError(f"{exc} {_DATA_DIR_HINT}") from None


def _per_layer_option(option, values, n, what):
    if len(values) == 1:
        return float(values[0])
    if len(values) != n:
        raise _UsageError(f"{option} takes one value or {n} ({what}); got {len(values)}")
    return [float(v) for v in values]


def _regularisation(args):
    """(l2, l1, keep_prob) from the options, their counts checked against --hidden."""
    n_weight_matrices = len(args.hidden) + 1
    if args.keep_prob is None:
        keep_prob = [DEFAULT_KEEP_INPUT] + [DEFAULT_KEEP_HIDDEN] * len(args.hidden)
    else:
        keep_prob = _per_layer_option("--keep-prob", args.keep_prob, n_weight_matrices,
                                      "the input's, then one per hidden layer")
    l2 = _per_layer_option("--l2", args.l2, n_weight_matrices, "one per weight matrix")
    l1 = _per_layer_option("--l1", args.l1, n_weight_matrices, "one per weight matrix")
    return l2, l1, keep_prob


def _check_train_args(args):
    """Usage errors that argparse cannot see, found before any data is loaded."""
    if args.early_stopping and args.validation_fraction == 0:
        raise _UsageError("--early-stopping needs a validation set: --validation-fraction > 0")
    if args.data_dir is not None and args.dataset in ("digits", "synthetic"):
        raise _UsageError(f"--data-dir applies to fashion-mnist and mnist only, not {args.dataset}")
    _regularisation(args)


def _train_config(args):
    from .config import TrainConfig

    l2, l1, keep_prob = _regularisation(args)
    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        momentum=args.momentum, lr_decay=args.lr_decay, l2=l2, l1=l1,
        keep_prob=keep_prob, dropout_mode=args.dropout_mode,
        early_stopping=args.early_stopping, patience=args.patience, seed=args.seed,
    )


def _accuracy(net, X, y):
    return float(np.mean(net.predict(X) == y))


def _progress(args, total):
    """A tqdm bar over epochs and the trainer callback that advances it."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError("the progress bar of `mlp train` needs tqdm: "
                          "pip install 'numba-mlp[cli]' (or pip install tqdm)") from None

    bar = tqdm(total=total, unit="epoch", desc="training", disable=args.quiet,
               file=sys.stderr, dynamic_ncols=True)

    def callback(record):
        postfix = {"loss": f"{record['train_loss']:.4f}"}
        if record.get("val_accuracy") is not None:
            postfix["val_acc"] = f"{record['val_accuracy']:.4f}"
        bar.set_postfix(postfix, refresh=False)
        bar.update(1)
        return False

    return bar, callback


def _default_out(dataset_name):
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{dataset_name}-{stamp}"
    out, i = base, 1
    while out.exists():
        out = base.with_name(f"{base.name}-{i}")
        i += 1
    return out


def run_train(args, argv):
    """Run ``mlp train`` with parsed ``args``; returns the exit status."""
    import kernels

    from .model import MLP
    from .persistence import save_model

    _check_train_args(args)
    try:
        backend = kernels.resolve_backend_name(args.backend)
        kernels.get_backend(backend)
    except kernels.BackendUnavailableError as exc:
        raise _UsageError(f"--backend {args.backend}: {exc}") from None
    dataset, notice = _load_data(args)
    if notice:
        # A fallback is shown even with --quiet: the numbers are about another data set.
        print(notice, file=sys.stderr)
    layer_sizes = [dataset.n_features, *args.hidden, dataset.n_classes]
    config = _train_config(args)
    dtype = np.dtype(args.dtype).type

    from .datasets import train_validation_split

    if args.validation_fraction > 0:
        X_tr, y_tr, X_val, y_val = train_validation_split(
            dataset.X_train, dataset.y_train, args.validation_fraction, seed=args.seed)
    else:
        X_tr, y_tr, X_val, y_val = dataset.X_train, dataset.y_train, None, None
    out = args.out if args.out is not None else _default_out(dataset.name)
    out.mkdir(parents=True, exist_ok=True)

    net = MLP(layer_sizes, output="softmax", seed=args.seed, dtype=dtype, backend=backend)
    _say(args, f"data: {dataset.name} ({len(y_tr)} training, "
               f"{0 if y_val is None else len(y_val)} validation, {dataset.n_test} test samples) "
               f"from {dataset.source}")
    _say(args, f"model: {net!r}")

    from .trainer import Trainer

    try:
        trainer = Trainer(net, config)
    except (TypeError, ValueError) as exc:  # combinations the trainer refuses, e.g. per_batch on cuda
        raise _UsageError(str(exc)) from None
    bar, callback = _progress(args, config.epochs)
    start = time.perf_counter()
    try:
        history = trainer.fit(X_tr, y_tr, X_val=X_val, y_val=y_val, callback=callback)
    finally:
        bar.close()
    training_seconds = time.perf_counter() - start

    records = list(history.records)
    # The trainer hands back the best epoch's parameters with early stopping or
    # after an interrupt, else the last epoch's.
    if records and (config.early_stopping or history.stop_reason == "interrupted") \
            and history.best_epoch is not None:
        kept_epoch = history.best_epoch
    else:
        kept_epoch = records[-1]["epoch"] if records else None
    epoch_seconds = [r["seconds"] for r in records if r.get("seconds") is not None]
    median_epoch = statistics.median(epoch_seconds) if epoch_seconds else None
    val_accuracy = _accuracy(net, X_val, y_val) if X_val is not None else None
    # The test set is used here, once, after every choice has been made.
    test_accuracy = _accuracy(net, dataset.X_test, dataset.y_test)

    hyper = config.to_dict()
    hyper["validation_fraction"] = args.validation_fraction
    summary = {
        "dataset": dataset.name,
        "data_source": dataset.source,
        "dataset_notice": notice,
        "n_train": int(len(y_tr)),
        "n_validation": 0 if y_val is None else int(len(y_val)),
        "n_test": int(dataset.n_test),
        "backend": net.backend,
        "dtype": np.dtype(dtype).name,
        "layer_sizes": list(net.layer_sizes),
        "hyperparameters": hyper,
        "epochs_run": len(records),
        "best_epoch": history.best_epoch,
        "kept_epoch": kept_epoch,
        "stop_reason": history.stop_reason,
        "seconds_per_epoch_median": median_epoch,
        "training_seconds": training_seconds,
        "validation_accuracy": val_accuracy,
        "test_accuracy": test_accuracy,
        "mlp_version": __version__,
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": ["mlp", *argv],
    }
    # The trainer's own record of the run (net.metadata) plus what only the CLI knows.
    metadata = dict(getattr(net, "metadata", None) or {})
    metadata.update({k: summary[k] for k in ("dataset", "layer_sizes", "dtype", "hyperparameters",
                                             "kept_epoch", "validation_accuracy", "test_accuracy")})
    save_model(net, out / "model.npz", metadata=metadata)
    write_json(out / "history.json", history.to_dict())
    from .plotting import plot_history

    plot_history(records, out / "curves.png", title=f"{dataset.name}: {net.layer_sizes}",
                 kept_epoch=kept_epoch)
    write_json(out / "summary.json", summary)

    if val_accuracy is not None:
        print(f"validation accuracy: {val_accuracy:.4f}")
    print(f"test accuracy: {test_accuracy:.4f}")
    if median_epoch is not None:
        shown = f"{median_epoch:.2f} s" if median_epoch >= 0.1 else f"{median_epoch * 1e3:.1f} ms"
        print(f"median time per epoch: {shown} ({len(records)} epochs, "
              f"{training_seconds:.1f} s in all, {net.backend} backend)")
    print(f"wrote {out}/model.npz, history.json, curves.png, summary.json")
    if history.stop_reason == "interrupted":
        print("interrupted: kept the best parameters seen so far", file=sys.stderr)
        return EXIT_INTERRUPTED
    if history.stop_reason == "diverged":
        print("training diverged (loss became NaN or inf): kept the last good parameters; "
              "try a smaller --lr", file=sys.stderr)
        return EXIT_DIVERGED
    return EXIT_OK


def _search_import_error():
    """None when mlp.search imports, else why it does not."""
    try:
        from . import search  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def main(argv=None):
    """Entry point of the ``mlp`` command; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["search"]:
        reason = _search_import_error()
        if reason is not None:
            print(f"mlp search: error: the search subcommand is unavailable: mlp.search could not "
                  f"be imported ({reason})", file=sys.stderr)
            return EXIT_USAGE
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if args.command == "search":
            from . import search

            return search.run_cli(args)
        return run_train(args, argv)
    except _UsageError as exc:
        print(f"mlp {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted before the run finished: its output may be incomplete", file=sys.stderr)
        return EXIT_INTERRUPTED
