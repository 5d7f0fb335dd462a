"""The ``mlp`` command line: ``mlp train``, ``mlp search``, ``mlp evaluate`` and ``mlp predict``.

``mlp train`` (:mod:`mlp.cli.train`) trains one network and evaluates it on
the test set once; ``mlp search`` (:mod:`mlp.cli.search`) searches
hyper-parameters on a validation split with :func:`mlp.search.search`;
``mlp evaluate`` (:mod:`mlp.cli.evaluate`) scores a saved model on the test
set, per class, with its confusion matrix; ``mlp predict``
(:mod:`mlp.cli.predict`) classifies new examples with a saved model. What
they share (argument types, choices, data loading, the usage error, exit
codes) is in :mod:`mlp.cli.options`. Only ``mlp search`` imports the search
package.

Exit status: 0 on success; 1 when training diverged (NaN, a loss far above
its start, a network become constant) or a search is incomplete; 2 for bad
arguments, a missing or malformed data set, model or input file, a model that
does not fit its data, an output path that cannot be written (found before
training), or an unavailable backend; 3 when ``mlp train`` could not write
its files into --out at the end (they are in the temporary directory the
message names); 130 when interrupted with Ctrl-C, 143 with SIGTERM (``mlp
train`` handles it as Ctrl-C: its files are written first).
"""
import argparse
import sys

from .._version import __version__
from . import evaluate, predict, train
from .options import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, Terminated, UsageError


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
    train_parser = sub.add_parser(
        "train", help="train a network, evaluate it on the test set once, save model and curves",
        description=train.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_train_arguments(train_parser)
    search_parser = sub.add_parser("search", help="hyper-parameter search on a validation split")
    evaluate_parser = sub.add_parser(
        "evaluate", help="score a saved model on the test set: accuracy, loss, per-class table, confusion matrix",
        description=evaluate.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_evaluate_arguments(evaluate_parser)
    predict_parser = sub.add_parser(
        "predict", help="classify the examples of a file (.npy, .npz, IDX, image) with a saved model",
        description=predict.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    predict.add_predict_arguments(predict_parser)
    if list(argv)[:1] == ["search"]:
        # main checked that mlp.search imports.
        from . import search

        search.add_search_arguments(search_parser)
    return parser


def _search_import_error():
    """None when mlp.search imports, else why it does not."""
    try:
        from .. import search  # noqa: F401
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

            return search.run_search(args)
        if args.command == "evaluate":
            return evaluate.run_evaluate(args)
        if args.command == "predict":
            return predict.run_predict(args)
        return train.run_train(args, argv)
    except UsageError as exc:
        print(f"mlp {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:  # one that the command did not handle itself
        terminated = isinstance(exc, Terminated)
        print(f"{'terminated' if terminated else 'interrupted'} before the run finished: its output may be "
              "incomplete", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
