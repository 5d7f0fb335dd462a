"""``mlp search``: the options of a hyper-parameter search and its run (the search itself: :mod:`mlp.search`).

Its options are ``mlp train``'s, read with the same grammar (:mod:`mlp.cli.grammar`), and
each may also be a search axis: candidates joined by commas, a distribution for a random
search, or the option repeated. What is not searched keeps the value of ``mlp train``
(``mlp.defaults.MAIN_JOB``, else the library's default: sgd, relu). The options that
came later (every one outside ``ALWAYS_NAMED``) enter the space only when given, so that
the journals of earlier searches keep resuming. Exit status: 0 done; 1 incomplete (a
worker died, or no Dask worker came for --worker-timeout seconds; rerun the same command
to finish); 2 bad arguments or data, an output directory that another search holds (the
message names it) or that cannot be written, or a Dask scheduler that cannot be reached;
130 interrupted (finished trials are journalled). Every one of these is a message, not a
traceback.
"""
import itertools
import json
import sys
import warnings

from ..defaults import SEARCH
from ..progress import progress_bar
from ..search import JOURNAL_NAME, METHODS, DirectoryLocked, LogUniform, SearchIncomplete, Uniform, search
from ..search.space import check_space, configurations
from . import grammar, options
from .options import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError, recipe_default, say

DESCRIPTION = (
    "Grid or random search of hyper-parameters, each trial trained on the training split and "
    "scored on a validation split of the training data; only the best configuration is "
    "evaluated on the test set. Finished trials are journalled in OUT/journal.jsonl: rerun "
    "the same command to resume. Writes trials.csv, trials.json, search.png, best_model.npz, "
    "then best.json.")

#: The parameters every search names, with the main job's value unless searched: the space of the
#: first searches, whose journals keep resuming; the others enter the space only when given.
ALWAYS_NAMED = ("hidden", "l2", "l1", "keep_prob_input", "keep_prob_hidden", "learning_rate", "momentum",
                "lr_schedule", "lr_decay", "epochs", "batch_size")
#: The files of ``mlp train``: a search is not written over a training run.
TRAIN_FILES = ("model.npz", "summary.json")


def _default_text(option):
    if option.name == "keep_prob":
        return "those of --keep-prob-input and --keep-prob-hidden"
    return grammar.shown(recipe_default(option.name))


def add_search_arguments(parser):
    """Add the options of ``mlp search`` to ``parser`` (an ``argparse.ArgumentParser``)."""
    parser.description = DESCRIPTION
    parser.epilog = grammar.EPILOG + "\n\n" + grammar.AXES_EPILOG
    data = parser.add_argument_group("data")
    options.add_data_arguments(data)
    data.add_argument("--validation-fraction", type=options.real(0, 1, low_open=True, high_open=True),
                      default=SEARCH["validation_fraction"], metavar="F",
                      help="part of the training data used for scoring (default: %(default)s)")
    grammar.add_arguments(parser, _default_text)

    how = parser.add_argument_group("search")
    how.add_argument("--method", choices=METHODS, default=SEARCH["method"],
                     help="grid: every combination; random: --n-trials draws (default: %(default)s)")
    how.add_argument("--n-trials", type=options.positive_int, default=None, metavar="N",
                     help="number of trials of a random search")
    how.add_argument("--jobs", type=options.positive_int, default=SEARCH["n_jobs"], metavar="N",
                     help="worker processes on this machine (default: %(default)s)")
    how.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="run the trials on this Dask scheduler's cluster instead")
    how.add_argument("--worker-timeout", type=options.real(0, low_open=True), default=SEARCH["worker_timeout"],
                     metavar="S", help="with --scheduler: seconds to wait for a worker whenever the cluster has "
                                       "none, before stopping (rerun to resume) (default: %(default)g)")
    how.add_argument("--threads-per-trial", type=options.positive_int, default=None, metavar="N",
                     help="BLAS threads of each trial (default: all cores with --jobs 1, cores/N with "
                          "--jobs N, 1 on Dask); the same N everywhere gives bit-identical scores")
    how.add_argument("--backend", choices=options.BACKEND_CHOICES, default=SEARCH["backend"],
                     help="kernels of every trial (default: %(default)s)")
    how.add_argument("--dtype", choices=options.DTYPE_CHOICES, default=recipe_default("dtype"),
                     help="floating-point type (default: %(default)s)")
    how.add_argument("--seed", type=options.seed, default=SEARCH["seed"],
                     help="seeds the split, the random draws and every trial (default: 0)")
    options.add_output_arguments(how, "runs/search-<dataset>-<timestamp>; rerunning with the same DIR resumes",
                                 overwrite=False)


def _distribution(draw):
    return (LogUniform if draw.kind == "log" else Uniform)(draw.low, draw.high)


def _space(args):
    """The search space of the options: the main job's value where an ``ALWAYS_NAMED`` option is not given."""
    given = grammar.given(args)
    always = [name for name in ALWAYS_NAMED
              if not ("keep_prob" in given and name in ("keep_prob_input", "keep_prob_hidden"))]
    space = {}
    for name in always + [name for name in given if name not in always]:
        option = grammar.BY_NAME[name]
        if name in given:
            found = grammar.candidates(option, given[name])
            space[name] = _distribution(found) if isinstance(found, grammar.Draw) else found
        else:
            space[name] = [recipe_default(name)]
    if "keep_prob" in given and {"keep_prob_input", "keep_prob_hidden"} & set(given):
        raise UsageError("give --keep-prob, or --keep-prob-input and --keep-prob-hidden, not both")
    _check_layer_counts(space)
    return space


def _check_layer_counts(space):
    """Each per-layer candidate has one value per layer of every network of the space."""
    for name in ("l2", "l1", "keep_prob"):
        candidates = space.get(name)
        per_layer = [c for c in candidates if isinstance(c, list)] if isinstance(candidates, list) else []
        for candidate, hidden in itertools.product(per_layer, space["hidden"]):
            if len(candidate) != len(hidden) + 1:
                option = grammar.BY_NAME[name]
                raise UsageError(f"{option.flag} {' '.join(map(str, candidate))}: {len(candidate)} values, but "
                                 f"--hidden {' '.join(map(str, hidden)) or 'none'} needs one value or "
                                 f"{len(hidden) + 1} ({option.per_layer})")


def _n_trials(space, args):
    """How many trials the search runs, what its progress bar counts to; a bad space fails here, at once."""
    checked = check_space(space, args.method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # too many random trials for the grid: search() says it, once
        return len(configurations(checked, args.method, args.n_trials, args.seed))


def _report(result, out):
    best = result.best
    print(f"{options.count(len(result.trials), 'trial')} ({result.n_trained} trained now, {result.n_resumed} "
          f"from the journal) in {result.seconds:.1f} s")
    print(f"best: {json.dumps(result.best_params)}")
    print(f"validation accuracy: {best['val_accuracy']:.4f}")
    if result.test_accuracy is not None:
        print(f"test accuracy (best configuration only): {result.test_accuracy:.4f}")
    print(f"wrote {out}/trials.csv, trials.json, search.png, best_model.npz, best.json")


def run_search(args):
    """Run ``mlp search`` with the parsed ``args``; returns the exit status (see the module docstring)."""
    try:
        space = _space(args)
        n_trials = _n_trials(space, args)
        options.checked_backend(args.backend)
        options.check_out(args.out, TRAIN_FILES, what="an mlp train run")
        dataset, notice = options.load_data(args)
    except (UsageError, ValueError, TypeError) as exc:  # ValueError, TypeError: the space, as search() checks it
        print(f"mlp search: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if notice:
        print(notice, file=sys.stderr)
    out = args.out if args.out is not None else options.default_out(f"search-{dataset.name}")
    say(args, options.describe_data(dataset, f"{len(dataset.y_train)} training samples, "
                                             f"{args.validation_fraction:g} of them held out for validation"))
    say(args, f"writing to {out} (rerun with --out {out} to resume)")

    bar = None if args.quiet else progress_bar("`mlp search`", total=n_trials, unit="trial", desc="search")

    def progress(row):
        bar.set_postfix({"val_acc": f"{row['val_accuracy']:.4f}"}, refresh=False)
        bar.update(1)

    try:
        result = search(dataset, space, method=args.method, n_trials=args.n_trials, seed=args.seed,
                        validation_fraction=args.validation_fraction, n_jobs=args.jobs,
                        scheduler=args.scheduler, threads_per_trial=args.threads_per_trial, out_dir=out,
                        backend=args.backend, dtype=args.dtype, callback=progress if bar is not None else None,
                        worker_timeout=args.worker_timeout)
    except SearchIncomplete as exc:
        print(f"mlp search: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        print(f"mlp search: interrupted; finished trials are in {out / JOURNAL_NAME}: rerun the "
              "same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, ImportError, DirectoryLocked, OSError) as exc:
        # OSError: --out or a file in it cannot be used (named in the message, found before any trial
        # runs), or the scheduler cannot be reached (its address in the message).
        print(f"mlp search: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if bar is not None:
            bar.close()
    _report(result, out)
    return EXIT_OK
