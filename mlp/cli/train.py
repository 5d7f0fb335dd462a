"""``mlp train``: train one network, evaluate it on the test set once, save the model and its curves.

``mlp train`` trains a multilayer perceptron on a data set with a recipe's
defaults (``--recipe``), on the whole training part or, with
``--validation-fraction``, holding out a validation part of it for monitoring
and early stopping, and evaluates the test set once, at the end. With
``--checkpoint`` a checkpoint is written after every epoch, from which
``--resume`` continues a run that was stopped or killed: with the same options
and ``--threads N`` its model is bit for bit that of a run never stopped. It
writes into its output directory:

``model.npz``       the trained network (``mlp.load``), with the hyper-parameters as metadata
``history.json``    one record per epoch (losses, validation accuracy, seconds)
``curves.png``      training/validation loss and validation accuracy (else the learning rate) per epoch
``summary.json``    data set, backend, layer sizes, hyper-parameters, timings (in seconds and in
                    GEMM floors of this machine, ``mlp.gemm_floor``), accuracies
``checkpoint.npz``  with ``--checkpoint`` (or ``--resume``) without a path: the trainer's state

Exit status: 0 on success; 1 when training diverged (NaN, a loss far above its
start, or a network become constant: the files are written with the last good
parameters); 2 for bad arguments, a missing or malformed data set, an --out or
--checkpoint that cannot be written, or an unavailable backend, all found
before training; 3 when the files could not be written into --out at the end
(a full disk): they are written into a new directory of the system's
temporary directory, which the message names; 130 when interrupted with Ctrl-C,
143 with SIGTERM (the files are written with the best parameters seen so far,
and the checkpoint is up to date).

The recipes (``mlp.defaults.RECIPES``; "main", what ``make train`` runs) were
chosen on a validation split of Fashion-MNIST's training data, never on its
test set (``benchmarks/ablation.py``).
"""
import datetime as _dt
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from .. import progress
from .._version import __version__
from ..config import TrainConfig
from ..datasets import train_validation_split
from ..defaults import THREADS, TRAINING
from ..files import write_json
from ..gemm_floor import FLOOR_BATCH, FLOOR_NET, epoch_floor_seconds
from ..model import MLP
from ..persistence import save_model
from ..plotting import plot_history
from ..trainer import Trainer
from . import grammar, options
from .options import (EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_OK, EXIT_SAVE_FAILED, Interruptions, UsageError,
                      recipe_default, say)

#: The help text of ``mlp train``: this module's description of the command, its files and exit status.
DESCRIPTION = options.help_text(__doc__)
#: The files ``mlp train`` writes into its output directory.
RUN_FILES = ("model.npz", "history.json", "curves.png", "summary.json")
#: The checkpoint's name in --out, when --checkpoint (or --resume) names no path.
DEFAULT_CHECKPOINT = "checkpoint.npz"


def _both(name):
    """The default of ``name`` in the two recipes, for the help text."""
    main, best = (grammar.shown(recipe_default(name, r)) for r in options.RECIPE_CHOICES)
    return main if main == best else f"{main}; --recipe best: {best}"


def _default_text(option):
    if option.name == "keep_prob":
        return "those of --keep-prob-input and --keep-prob-hidden"
    return _both(option.name)


def add_train_arguments(p):
    """Add the options of ``mlp train`` to the parser ``p``.

    The options of the configuration (``mlp.cli.grammar``) default to None here: ``apply_recipe``
    fills in the recipe's value after parsing, so that an option the user gave always wins.
    """
    p.epilog = grammar.EPILOG + "\nAn axis (commas, a distribution, an option repeated) is for mlp search."
    p.add_argument(
        "--recipe", choices=options.RECIPE_CHOICES, default="main",
        help="the defaults of every option below that says so: main = one hidden layer, what `make train` "
             "runs; best = a wider network for a longer budget. Both were chosen on a validation split "
             "and train on the whole training set (mlp.defaults.RECIPES; default: %(default)s)")
    data = p.add_argument_group("data")
    options.add_data_arguments(data)
    data.add_argument(
        "--validation-fraction", type=options.real(0, 1, high_open=True), default=None, metavar="F",
        help="fraction of the training data held out for validation, stratified; 0 = train on all of it "
             f"(default: {_both('validation_fraction')}: the recipes were chosen on 0.1, and train on all)")
    grammar.add_arguments(p, _default_text)
    run = p.add_argument_group("run")
    run.add_argument("--dtype", choices=options.DTYPE_CHOICES, default=recipe_default("dtype"),
                     help="floating-point type of parameters and data (default: %(default)s)")
    run.add_argument("--backend", choices=options.BACKEND_CHOICES, default="auto",
                     help="kernels (default: auto = cuda when a GPU is usable, else cpu)")
    run.add_argument("--seed", type=options.seed, default=recipe_default("seed"),
                     help="seeds the split, the initial weights, shuffling and dropout (default: 0)")
    run.add_argument("--threads", type=options.threads, default=THREADS, metavar="{auto,N}",
                     help="threads of BLAS and numba: auto times a few steps on 1 and on every core, at the "
                          "start and when an epoch runs far slower than the last, and keeps the faster; N "
                          "fixes the count, which reproduces a run to the bit (default: %(default)s)")
    options.add_output_arguments(run, "runs/<dataset>-<timestamp>, a fresh directory")
    run.add_argument("--checkpoint", type=Path, nargs="?", const=True, default=None, metavar="PATH",
                     help=f"write the trainer's state to PATH after every epoch, atomically, for --resume "
                          f"(PATH left out: --out's {DEFAULT_CHECKPOINT})")
    run.add_argument("--resume", action="store_true",
                     help="continue the run of the checkpoint (--checkpoint PATH, else --out's "
                          f"{DEFAULT_CHECKPOINT}) with the same options; start from the first epoch when "
                          "there is none yet")


# --------------------------------------------------------------------------- #
# the options, checked before any data is loaded
# --------------------------------------------------------------------------- #
#: Options that only one optimizer or schedule reads: (option, its name, the field, what reads it).
_OPTIMISATION_OPTIONS = (
    ("--momentum", "momentum", "optimizer", "sgd"),
    ("--beta-1", "beta_1", "optimizer", "adam"),
    ("--beta-2", "beta_2", "optimizer", "adam"),
    ("--epsilon", "epsilon", "optimizer", "adam"),
    ("--lr-decay", "lr_decay", "lr_schedule", "decay"),
    ("--warmup-epochs", "warmup_epochs", "lr_schedule", ("decay", "cosine")),
    ("--power-t", "power_t", "lr_schedule", "invscaling"),
)
#: Options filled after ``apply_recipe``, by ``_optimisation`` and ``_regularisation``, which must see
#: whether they were given.
_FILLED_LATER = tuple(name for _, name, _, _ in _OPTIMISATION_OPTIONS) + (
    "keep_prob", "keep_prob_input", "keep_prob_hidden")


def apply_recipe(args):
    """Each option of the configuration as its one value (in place): given, else ``--recipe``'s; returns ``args``.

    An axis (``mlp.cli.grammar``) is a usage error: mlp train trains one configuration. The options
    of ``_FILLED_LATER`` that were not given stay None.
    """
    if args.validation_fraction is None:
        args.validation_fraction = recipe_default("validation_fraction", args.recipe)
    for option in grammar.OPTIONS:
        occurrences = getattr(args, option.name)
        if occurrences is not None:
            value = grammar.one_value(option, occurrences)
        elif option.name in _FILLED_LATER:
            value = None
        else:
            value = recipe_default(option.name, args.recipe)
        if option.per_layer and not isinstance(value, (list, tuple)) and value is not None:
            value = [value]  # one value for every layer
        setattr(args, option.name, list(value) if isinstance(value, tuple) else value)
    return args


def _one_or_per_layer(option, values, n, what):
    if len(values) == 1:
        return float(values[0])
    if len(values) != n:
        raise UsageError(f"{option} takes one value or {n} ({what}); got {len(values)}")
    return [float(v) for v in values]


def _regularisation(args):
    """(l2, l1, keep_prob) from the options, their counts checked against --hidden."""
    n_weight_matrices = len(args.hidden) + 1
    if args.keep_prob is None:
        keep_input, keep_hidden = (recipe_default(name, args.recipe) if getattr(args, name) is None
                                   else getattr(args, name) for name in ("keep_prob_input", "keep_prob_hidden"))
        keep_prob = [keep_input] + [keep_hidden] * len(args.hidden)
    elif args.keep_prob_input is not None or args.keep_prob_hidden is not None:
        raise UsageError("give --keep-prob, or --keep-prob-input and --keep-prob-hidden, not both")
    else:
        keep_prob = _one_or_per_layer("--keep-prob", args.keep_prob, n_weight_matrices,
                                      "the input's, then one per hidden layer")
    l2 = _one_or_per_layer("--l2", args.l2, n_weight_matrices, "one per weight matrix")
    l1 = _one_or_per_layer("--l1", args.l1, n_weight_matrices, "one per weight matrix")
    return l2, l1, keep_prob


def _optimisation(args):
    """TrainConfig's optimizer and schedule fields; an option that the choice would ignore is a usage error."""
    fields = {"optimizer": args.optimizer, "lr_schedule": args.lr_schedule, "nesterov": args.nesterov}
    for option, name, chooser, readers in _OPTIMISATION_OPTIONS:
        value = getattr(args, name)
        readers = (readers,) if isinstance(readers, str) else readers
        if value is not None and fields[chooser] not in readers:
            raise UsageError(f"{option} applies to --{chooser.replace('_', '-')} {' or '.join(readers)} only, "
                             f"not {fields[chooser]}")
        if value is None:  # the recipe's value where the choice reads it, else the library's neutral one
            value = recipe_default(name, args.recipe) if fields[chooser] in readers else TRAINING[name]
        fields[name] = value
    if args.nesterov and args.optimizer != "sgd":
        raise UsageError(f"--nesterov applies to --optimizer sgd only, not {args.optimizer}")
    if args.nesterov and fields["momentum"] == 0:
        raise UsageError("--nesterov needs --momentum > 0")
    if fields["warmup_epochs"] >= args.epochs:
        raise UsageError(f"--warmup-epochs must be less than --epochs ({args.epochs}); got {fields['warmup_epochs']}")
    return fields


def _checked_backend(args):
    """The backend's name, after the usage errors that argparse cannot see; an unusable backend is one.

    ``args`` has had ``apply_recipe``."""
    if args.early_stopping and args.validation_fraction == 0:
        raise UsageError("--early-stopping needs a validation set: --validation-fraction > 0")
    options.check_data_dir(args)
    _regularisation(args)
    _optimisation(args)
    return options.checked_backend(args.backend)


def _train_config(args):
    l2, l1, keep_prob = _regularisation(args)
    return TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        **_optimisation(args), l2=l2, l1=l1,
        keep_prob=keep_prob, dropout_mode=args.dropout_mode,
        early_stopping=args.early_stopping, patience=args.patience, seed=args.seed,
    )


# --------------------------------------------------------------------------- #
# the run
# --------------------------------------------------------------------------- #
def epoch_progress(args, total):
    """A progress bar over epochs and the trainer callback that advances it (``mlp.progress``)."""
    return progress.epoch_progress(total, "`mlp train`", disable=args.quiet)


def _split(args, dataset):
    """(X_tr, y_tr, X_val, y_val): the validation part carved out of the training data, or None."""
    if args.validation_fraction > 0:
        return train_validation_split(dataset.X_train, dataset.y_train, args.validation_fraction,
                                      seed=args.seed)
    return dataset.X_train, dataset.y_train, None, None


def _compile(args, net, config, split):
    """Seconds spent compiling: one epoch of a throwaway copy of ``net`` on one minibatch of the data.

    The compiled epoch is specialised on the types of what it is given, the same here as in the real
    fit, so the real fit finds it compiled (or loaded from numba's disk cache): its epochs are timed
    without the compilation, which the summary reports on its own."""
    X_tr, y_tr, X_val, y_val = split
    rows = min(config.batch_size, len(y_tr))
    copy = MLP(net.layer_sizes, output=net.output, activation=net.activation, seed=0, dtype=net.dtype,
               backend=net.backend)
    say(args, "compiling the training kernels (fast after the first run: numba caches them on disk)...")
    start = time.perf_counter()
    validation = {} if X_val is None else {"X_val": X_val[:rows], "y_val": y_val[:rows]}
    with warnings.catch_warnings():
        # a divergence of the throwaway fit (a learning rate too large) is the real fit's to report, once
        warnings.simplefilter("ignore", RuntimeWarning)
        # One thread: the throwaway fit compiles, it need not time thread counts.
        Trainer(copy, config.with_overrides({"epochs": 1, "warmup_epochs": 0}), threads=1).fit(
            X_tr[:rows], y_tr[:rows], **validation)
    return time.perf_counter() - start


def _fit(args, net, config, split, checkpoint):
    """(history, compile seconds, training seconds): ``net`` trained on the split with a progress bar,
    writing ``checkpoint`` (a path or None) after every epoch and resuming from it with ``--resume``."""
    X_tr, y_tr, X_val, y_val = split
    try:
        trainer = Trainer(net, config, threads=args.threads)
    except (TypeError, ValueError) as exc:  # combinations the trainer refuses, e.g. per_batch on cuda
        raise UsageError(str(exc)) from None
    compile_seconds = _compile(args, net, config, split)
    bar, callback = epoch_progress(args, config.epochs)
    start = time.perf_counter()
    try:
        history = trainer.fit(X_tr, y_tr, X_val=X_val, y_val=y_val, callback=callback,
                              checkpoint_path=checkpoint, resume=args.resume)
    except (ValueError, OSError) as exc:
        if trainer.history is not None:  # raised after training began: no fault of the input
            raise
        # What fit checks before its first epoch: the checkpoint's path, the checkpoint to resume from.
        raise UsageError(str(exc)) from None
    finally:
        bar.close()
    return history, compile_seconds, time.perf_counter() - start


def _accuracy(net, X, y):
    return float(np.mean(net.predict(X) == y))


def _summary(args, argv, dataset, notice, net, config, split, history, compile_seconds, training_seconds,
             floor_seconds):
    """summary.json's dict; the test set is evaluated here, once, after every choice has been made."""
    _, y_tr, X_val, y_val = split
    records = history.records
    # The trainer hands back the best epoch's parameters with early stopping or
    # after an interrupt, else the last epoch's.
    if records and (config.early_stopping or history.stop_reason == "interrupted") \
            and history.best_epoch is not None:
        kept_epoch = history.best_epoch
    else:
        kept_epoch = records[-1]["epoch"] if records else None
    epoch_seconds = [r["seconds"] for r in records if r.get("seconds") is not None]
    hyper = config.to_dict()
    hyper["validation_fraction"] = args.validation_fraction
    return {
        "recipe": args.recipe,
        "dataset": dataset.name,
        "class_names": list(dataset.class_names),
        "data_source": dataset.source,
        "dataset_notice": notice,
        "n_train": int(len(y_tr)),
        "n_validation": 0 if y_val is None else int(len(y_val)),
        "n_test": int(dataset.n_test),
        "backend": net.backend,
        "dtype": np.dtype(args.dtype).name,
        "layer_sizes": list(net.layer_sizes),
        "activation": net.activation,
        "hyperparameters": hyper,
        "epochs_run": len(records),
        "best_epoch": history.best_epoch,
        "kept_epoch": kept_epoch,
        "stop_reason": history.stop_reason,
        "seconds_per_epoch_median": statistics.median(epoch_seconds) if epoch_seconds else None,
        "threads": net.metadata.get("threads"),
        "compile_seconds": compile_seconds,
        "training_seconds": training_seconds,
        "gemm_floor_seconds": floor_seconds,
        "training_floors": training_seconds / floor_seconds,
        "validation_accuracy": _accuracy(net, X_val, y_val) if X_val is not None else None,
        "test_accuracy": _accuracy(net, dataset.X_test, dataset.y_test),
        "mlp_version": __version__,
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": ["mlp", *argv],
    }


def _write_outputs(out, net, history, summary):
    """model.npz, history.json, curves.png and summary.json, each written atomically, the model first."""
    # The trainer's own record of the run (net.metadata) plus what only the CLI knows.
    metadata = dict(getattr(net, "metadata", None) or {})
    metadata.update({k: summary[k] for k in ("dataset", "class_names", "layer_sizes", "activation", "dtype",
                                             "hyperparameters", "kept_epoch", "validation_accuracy",
                                             "test_accuracy")})
    save_model(net, out / "model.npz", metadata=metadata)
    write_json(out / "history.json", history.to_dict())
    plot_history(history.records, out / "curves.png", title=f"{summary['dataset']}: {net.layer_sizes}",
                 kept_epoch=summary["kept_epoch"])
    write_json(out / "summary.json", summary)


def _save(out, net, history, summary):
    """Write the run's files into ``out``: (the directory they are in or None, the error message or None).

    When ``out`` cannot take them (a full disk, a directory removed during the run) they go into a
    new directory of the system's temporary directory, which the message names: a trained model
    is not dropped."""
    try:
        _write_outputs(out, net, history, summary)
        return out, None
    except OSError as exc:
        error = f"the run's files could not be written into {out} ({exc})"
    try:
        rescue = Path(tempfile.mkdtemp(prefix="mlp-train-rescue-"))
        _write_outputs(rescue, net, history, summary)
    except OSError as exc:
        return None, f"{error}, nor into the system's temporary directory ({exc})"
    return rescue, f"{error}; they are in {rescue} instead: move them where they belong"


def _report(out, summary, interruptions):
    """Print the results (``out``: where the files are, or None); returns the exit status of how training
    stopped (``interruptions``: the signals received)."""
    if summary["validation_accuracy"] is not None:
        print(f"validation accuracy: {summary['validation_accuracy']:.4f}")
    print(f"test accuracy: {summary['test_accuracy']:.4f}")
    median_epoch = summary["seconds_per_epoch_median"]
    if median_epoch is not None:
        shown = f"{median_epoch:.2f} s" if median_epoch >= 0.1 else f"{median_epoch * 1e3:.1f} ms"
        print(f"median time per epoch: {shown} ({options.count(summary['epochs_run'], 'epoch')}, "
              f"{summary['training_seconds']:.1f} s in all, {summary['backend']} backend; "
              f"compiling before them: {summary['compile_seconds']:.1f} s)")
        print(f"training time: {summary['training_floors']:.1f} GEMM floors (one floor, the products of an "
              f"epoch of {'-'.join(map(str, FLOOR_NET))} at batch {FLOOR_BATCH}: "
              f"{summary['gemm_floor_seconds']:.3f} s on this machine)")
    threads = summary["threads"]
    if threads and threads.get("counts"):
        print(f"threads: {threads['setting']}, ran on {' then '.join(map(str, threads['counts']))} "
              f"({options.count(len(threads.get('probes', [])), 'timing')} of 1 against more)")
    if out is not None:
        print(f"wrote {out}/model.npz, history.json, curves.png, summary.json")
    if summary["stop_reason"] == "interrupted" or interruptions.received is not None:
        status = interruptions.exit_status(EXIT_INTERRUPTED)
        print(f"{'terminated (SIGTERM)' if status == options.EXIT_TERMINATED else 'interrupted'}: kept the "
              f"{'best parameters seen so far' if summary['stop_reason'] == 'interrupted' else 'trained network'}",
              file=sys.stderr)
        return status
    if summary["stop_reason"] == "diverged":
        print("training diverged (see the warning above): kept the last good parameters; "
              "try a smaller --lr", file=sys.stderr)
        return EXIT_DIVERGED
    return EXIT_OK


# --------------------------------------------------------------------------- #
# the files: checked before training
# --------------------------------------------------------------------------- #
def _checkpoint_path(args, out):
    """The checkpoint's path: --checkpoint's, else ``out``'s checkpoint.npz with --checkpoint or --resume
    alone; None without either, or while ``out`` is None (a default --out, created new)."""
    if isinstance(args.checkpoint, Path):
        return args.checkpoint
    if args.checkpoint is None and not args.resume:
        return None
    return None if out is None else out / DEFAULT_CHECKPOINT


def _check_paths(args):
    """--out, --checkpoint and --resume's usage errors, before the data is loaded.

    An existing checkpoint is another run's, not to be written over without --overwrite; with
    --resume it is the run to continue, whose files in --out are replaced."""
    if args.resume and not isinstance(args.checkpoint, Path) and args.out is None:
        raise UsageError("--resume continues the run of --out DIR: give --out, or --checkpoint PATH")
    checkpoint = _checkpoint_path(args, args.out)
    if isinstance(args.checkpoint, Path):
        options.check_writable(checkpoint, "--checkpoint")
    continued = args.resume and checkpoint is not None and checkpoint.is_file()
    if checkpoint is not None and checkpoint.exists() and not (continued or args.overwrite):
        raise UsageError(f"--checkpoint {checkpoint} holds an earlier run's checkpoint: give --resume to continue "
                         "that run, or --overwrite to start again")
    options.check_out(args.out, RUN_FILES, args.overwrite or continued)


# --------------------------------------------------------------------------- #
# the command
# --------------------------------------------------------------------------- #
def run_train(args, argv):
    """Run ``mlp train`` with parsed ``args`` (``argv``: the command line, for the summary); the exit status.

    From the data's loading on, SIGTERM ends the run as Ctrl-C does (``options.Interruptions``): the
    trainer keeps the best epoch, the files are written, then the status is 143 (130 for Ctrl-C).
    Neither cuts the writing of the files short."""
    backend = _checked_backend(apply_recipe(args))
    _check_paths(args)
    with Interruptions() as interruptions:
        dataset, notice = options.load_data(args)
        if notice:
            # A fallback is shown even with --quiet: the numbers are about another data set.
            print(notice, file=sys.stderr)
        config = _train_config(args)
        split = _split(args, dataset)
        out = args.out if args.out is not None else options.default_out(dataset.name)
        checkpoint = _checkpoint_path(args, out)
        # Before training: a run is not trained for its files to be refused at the end.
        options.prepare_out(out, RUN_FILES)
        if checkpoint is not None:
            options.check_writable(checkpoint, "--checkpoint")
        if args.resume and not checkpoint.exists():
            # Shown even with --quiet: a mistyped path would otherwise start again unnoticed.
            print(f"no checkpoint at {checkpoint} yet: training from the first epoch", file=sys.stderr)

        net = MLP([dataset.n_features, *args.hidden, dataset.n_classes], output="softmax",
                  activation=args.activation, seed=args.seed, dtype=np.dtype(args.dtype).type, backend=backend)
        say(args, options.describe_data(dataset, f"{len(split[1])} training, "
                                                 f"{0 if split[3] is None else len(split[3])} validation"))
        say(args, f"model: {net!r}")
        history, compile_seconds, training_seconds = _fit(args, net, config, split, checkpoint)
        with interruptions.deferred():
            summary = _summary(args, argv, dataset, notice, net, config, split, history, compile_seconds,
                               training_seconds, epoch_floor_seconds())
            written, error = _save(out, net, history, summary)
    status = _report(written, summary, interruptions)
    if error is not None:
        print(f"mlp train: error: {error}", file=sys.stderr)
        return EXIT_SAVE_FAILED
    return status
