"""``mlp search``: the options of a hyper-parameter search and its run (the search itself: :mod:`mlp.search`).

Each option of the space takes one or more candidates; one candidate fixes
the value. What is not searched keeps the value of ``mlp train``
(``mlp.defaults.MAIN_JOB``, else the library's default: sgd, relu). The
options that came with the optimizers and activations (``--activation``,
``--optimizer``, ``--nesterov``, ``--beta-1``, ``--beta-2``, ``--epsilon``,
``--power-t``) enter the space only when
given, so that the journals of earlier searches keep resuming. Exit status: 0 done; 1 incomplete (a worker
died; rerun the same command to finish); 2 bad arguments or data; 130
interrupted (finished trials are journalled).
"""
import argparse
import json
import sys
from pathlib import Path

from ..defaults import MAIN_JOB, SEARCH
from ..search import JOURNAL_NAME, METHODS, LogUniform, SearchIncomplete, Uniform, search
from ..search.space import DISTRIBUTIONS
from . import options
from .options import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError, recipe_default, say

DESCRIPTION = (
    "Grid or random search of hyper-parameters, each trial trained on the training split and "
    "scored on a validation split of the training data; only the best configuration is "
    "evaluated on the test set. Finished trials are journalled in OUT/journal.jsonl: rerun "
    "the same command to resume. Writes trials.csv, trials.json, best.json, best_model.npz, "
    "search.png.")


# --------------------------------------------------------------------------- #
# argument types of the space
# --------------------------------------------------------------------------- #
def candidate(text):
    """'1e-4' (one value), '1e-4,0' (one per layer), 'log:1e-6:1e-2' or 'uniform:0.5:1' (random search)."""
    kind, _, rest = text.partition(":")
    if rest:
        bounds = rest.split(":")
        if kind not in ("log", "uniform") or len(bounds) != 2:
            raise argparse.ArgumentTypeError(
                f"expected a number, numbers joined by commas (one per layer), log:LOW:HIGH or "
                f"uniform:LOW:HIGH; got {text!r}")
        low, high = (options.number(b) for b in bounds)
        try:
            return (LogUniform if kind == "log" else Uniform)(low, high)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if "," in text:
        return tuple(options.number(t) for t in text.split(","))
    return options.number(text)


def boolean(text):
    """'true'/'false' (also yes/no, 1/0, on/off, any case)."""
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false; got {text!r}")


def hidden_sizes(text):
    """'256', '512-256' or '512,256' (two hidden layers), 'none' (no hidden layer)."""
    if text.strip().lower() == "none":
        return ()
    return tuple(options.positive_int(t) for t in text.replace(",", "-").split("-"))


def add_search_arguments(parser):
    """Add the options of ``mlp search`` to ``parser`` (an ``argparse.ArgumentParser``)."""
    parser.description = DESCRIPTION
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=options.DATASET_CHOICES, default="auto",
                      help="data set (default: auto = fashion-mnist when installed, else digits)")
    data.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                      help="directory of the IDX files of fashion-mnist or mnist")
    data.add_argument("--validation-fraction", type=options.real(0, 1, low_open=True, high_open=True),
                      default=SEARCH["validation_fraction"], metavar="F",
                      help="part of the training data used for scoring (default: %(default)s)")

    space = parser.add_argument_group(
        "search space (one or more candidates each; 'A,B' = one value per layer; "
        "'log:LOW:HIGH' / 'uniform:LOW:HIGH' = a distribution, for --method random)")
    space.add_argument("--hidden", type=hidden_sizes, nargs="+", default=[tuple(MAIN_JOB["hidden"])],
                       metavar="SIZES", help="hidden layers of one network, e.g. 256 512-256 none "
                                             f"(default: {'-'.join(map(str, MAIN_JOB['hidden']))})")
    space.add_argument("--activation", choices=options.ACTIVATION_CHOICES, nargs="+", default=None, metavar="F",
                       help=f"activations of the hidden layers: {', '.join(options.ACTIVATION_CHOICES)} "
                            f"(default: {recipe_default('activation')})")
    space.add_argument("--l2", type=candidate, nargs="+", default=[MAIN_JOB["l2"]], metavar="A",
                       help="L2 strengths alpha(j) (default: %(default)s)")
    space.add_argument("--l1", type=candidate, nargs="+", default=[MAIN_JOB["l1"]], metavar="B",
                       help="L1 strengths beta(j) (default: %(default)s)")
    space.add_argument("--keep-prob-input", type=candidate, nargs="+", default=[MAIN_JOB["keep_prob_input"]],
                       metavar="P", help="keep probability of the input layer (default: %(default)s)")
    space.add_argument("--keep-prob-hidden", type=candidate, nargs="+",
                       default=[MAIN_JOB["keep_prob_hidden"]], metavar="P",
                       help="keep probability of every hidden layer (default: %(default)s)")
    space.add_argument("--lr", type=candidate, nargs="+", default=[MAIN_JOB["learning_rate"]],
                       metavar="LR", help="learning rates (default: %(default)s)")
    space.add_argument("--optimizer", choices=options.OPTIMIZER_CHOICES, nargs="+", default=None, metavar="OPT",
                       help=f"optimizers: sgd (--momentum, --nesterov), adam (--beta-1, --beta-2, --epsilon) "
                            f"(default: {recipe_default('optimizer')})")
    space.add_argument("--momentum", type=candidate, nargs="+", default=[MAIN_JOB["momentum"]],
                       metavar="M", help="momentum values of sgd (default: %(default)s)")
    space.add_argument("--nesterov", type=boolean, nargs="*", default=None, metavar="BOOL",
                       help="Nesterov's momentum: alone it means true; 'false true' searches both "
                            f"(default: {str(recipe_default('nesterov')).lower()})")
    space.add_argument("--beta-1", type=candidate, nargs="+", default=None, metavar="B1",
                       help=f"Adam's beta_1 values (default: {recipe_default('beta_1')})")
    space.add_argument("--beta-2", type=candidate, nargs="+", default=None, metavar="B2",
                       help=f"Adam's beta_2 values (default: {recipe_default('beta_2')})")
    space.add_argument("--epsilon", type=candidate, nargs="+", default=None, metavar="EPS",
                       help=f"Adam's epsilon values (default: {recipe_default('epsilon')})")
    space.add_argument("--lr-schedule", choices=options.LR_SCHEDULE_CHOICES, nargs="+",
                       default=[recipe_default("lr_schedule")], metavar="S",
                       help=f"learning-rate schedules, as in mlp train: {', '.join(options.LR_SCHEDULE_CHOICES)} "
                            "(default: %(default)s)")
    space.add_argument("--lr-decay", type=candidate, nargs="+", default=[MAIN_JOB["lr_decay"]],
                       metavar="D", help="learning-rate decays of the decay schedule (default: %(default)s)")
    space.add_argument("--power-t", type=candidate, nargs="+", default=None, metavar="T",
                       help=f"exponents of the invscaling schedule (default: {recipe_default('power_t')})")
    space.add_argument("--epochs", type=options.positive_int, nargs="+", default=[MAIN_JOB["epochs"]],
                       metavar="N", help="epochs per trial (default: %(default)s)")
    space.add_argument("--batch-size", type=options.positive_int, nargs="+", default=[MAIN_JOB["batch_size"]],
                       metavar="N", help="mini-batch sizes (default: %(default)s)")

    how = parser.add_argument_group("search")
    how.add_argument("--method", choices=METHODS, default=SEARCH["method"],
                     help="grid: every combination; random: --n-trials draws (default: %(default)s)")
    how.add_argument("--n-trials", type=options.positive_int, default=None, metavar="N",
                     help="number of trials of a random search")
    how.add_argument("--jobs", type=options.positive_int, default=SEARCH["n_jobs"], metavar="N",
                     help="worker processes on this machine (default: %(default)s)")
    how.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="run the trials on this Dask scheduler's cluster instead")
    how.add_argument("--threads-per-trial", type=options.positive_int, default=None, metavar="N",
                     help="BLAS threads of each trial (default: all cores with --jobs 1, cores/N with "
                          "--jobs N, 1 on Dask); the same N everywhere gives bit-identical scores")
    how.add_argument("--backend", choices=options.BACKEND_CHOICES, default=SEARCH["backend"],
                     help="kernels of every trial (default: %(default)s)")
    how.add_argument("--dtype", choices=options.DTYPE_CHOICES, default=MAIN_JOB["dtype"],
                     help="floating-point type (default: %(default)s)")
    how.add_argument("--seed", type=options.seed, default=SEARCH["seed"],
                     help="seeds the split, the random draws and every trial (default: 0)")
    how.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="output directory; rerunning with the same DIR resumes "
                          "(default: runs/search-<dataset>-<timestamp>)")
    how.add_argument("--quiet", action="store_true", help="no progress bar or notices")


#: Search parameter -> its option, where the names differ.
_OPTION_OF = {"learning_rate": "--lr"}
#: Parameters that enter the space only when their option is given (None when not): a search
#: that does not name them trains what it did before they existed, under the same journal keys.
_OPTIONAL = ("activation", "optimizer", "nesterov", "beta_1", "beta_2", "epsilon", "power_t")


def _space(args):
    """The search space of the options; argparse gives lists, a lone distribution stands for itself."""
    space = {
        "hidden": args.hidden, "l2": args.l2, "l1": args.l1,
        "keep_prob_input": args.keep_prob_input, "keep_prob_hidden": args.keep_prob_hidden,
        "learning_rate": args.lr, "momentum": args.momentum, "lr_schedule": args.lr_schedule, "lr_decay": args.lr_decay,
        "epochs": args.epochs, "batch_size": args.batch_size,
    }
    for name in _OPTIONAL:
        candidates = getattr(args, name)
        if name == "nesterov" and candidates == []:  # the bare flag
            candidates = [True]
        if candidates is not None:
            space[name] = candidates
    for name, candidates in space.items():
        if any(isinstance(c, DISTRIBUTIONS) for c in candidates):
            if len(candidates) != 1:
                option = _OPTION_OF.get(name, f"--{name.replace('_', '-')}")
                raise UsageError(f"{option}: give one distribution or a list of numbers, not both")
            space[name] = candidates[0]
    return space


def _report(result, out):
    best = result.best
    print(f"{len(result.trials)} trials ({result.n_trained} trained now, {result.n_resumed} from the journal) "
          f"in {result.seconds:.1f} s")
    print(f"best: {json.dumps(result.best_params)}")
    print(f"validation accuracy: {best['val_accuracy']:.4f}")
    if result.test_accuracy is not None:
        print(f"test accuracy (best configuration only): {result.test_accuracy:.4f}")
    print(f"wrote {out}/trials.csv, trials.json, best.json, best_model.npz, search.png")


def run_search(args):
    """Run ``mlp search`` with the parsed ``args``; returns the exit status (see the module docstring)."""
    try:
        dataset, notice = options.load_data(args)
        space = _space(args)
    except (UsageError, ValueError) as exc:  # ValueError: malformed data files
        print(f"mlp search: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if notice:
        print(notice, file=sys.stderr)
    out = args.out if args.out is not None else options.default_out(f"search-{dataset.name}")
    say(args, f"data: {dataset!r}")
    say(args, f"writing to {out} (rerun with --out {out} to resume)")

    bar = None if args.quiet else options.progress_bar("search", unit="trial", desc="search")

    def progress(row):
        bar.set_postfix({"val_acc": f"{row['val_accuracy']:.4f}"}, refresh=False)
        bar.update(1)

    try:
        result = search(dataset, space, method=args.method, n_trials=args.n_trials, seed=args.seed,
                        validation_fraction=args.validation_fraction, n_jobs=args.jobs,
                        scheduler=args.scheduler, threads_per_trial=args.threads_per_trial, out_dir=out,
                        backend=args.backend, dtype=args.dtype, callback=progress if bar is not None else None)
    except SearchIncomplete as exc:
        print(f"mlp search: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        print(f"mlp search: interrupted; finished trials are in {out / JOURNAL_NAME}: rerun the "
              "same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, ImportError) as exc:
        print(f"mlp search: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        if args.scheduler is None:
            raise
        print(f"mlp search: error: cannot use the Dask scheduler at {args.scheduler}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if bar is not None:
            bar.close()
    _report(result, out)
    return EXIT_OK
