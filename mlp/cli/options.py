"""What ``mlp train`` and ``mlp search`` share: argument types, choices, data loading, errors, exit codes, signals.

The argument types wrap the checks of :mod:`mlp.checks`, so a bad value reads
as it does everywhere in the library ("argument --lr: value must be > 0;
got -0.1"). Defaults come from ``mlp.defaults``' recipes (:func:`recipe_default`).
A data set that is missing or malformed is a usage error (:func:`load_data`),
found before any training. :class:`Interruptions` makes SIGTERM end a run as
Ctrl-C does, and holds both back while a run writes its files.
"""
import argparse
import contextlib
import datetime as _dt
import math
import os
import signal
import sys
import threading
import zlib
from pathlib import Path

import kernels

from .. import datasets, files
from ..checks import check_int, check_real, check_seed
from ..datasets.mnist import ENV_VAR as DATA_ENV_VAR
from ..defaults import NETWORK, RECIPES, TRAINING

DATASET_CHOICES = ("auto", "fashion-mnist", "mnist", "digits", "synthetic")
BACKEND_CHOICES = ("auto", "cpu", "numpy", "cuda")
DTYPE_CHOICES = ("float32", "float64")
EXIT_OK, EXIT_DIVERGED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: The run's files could not be written where asked (a full disk, a directory gone): they were written
#: to the directory the message names instead.
EXIT_SAVE_FAILED = 3
#: Ended by SIGTERM (128 + 15, a shell's status for it), after writing what the run had.
EXIT_TERMINATED = 128 + signal.SIGTERM
#: ``mlp search`` stopped before every trial finished: rerun it to finish.
EXIT_INCOMPLETE = 1


class UsageError(Exception):
    """Bad input found after parsing: reported like an argparse error, exit status 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, as Ctrl-C raises KeyboardInterrupt: every handler of an
    interrupt (the trainer keeps the best epoch, the search journals its trials) handles it too."""


class Interruptions:
    """A context in which SIGTERM ends the run as Ctrl-C does, and which remembers what ended it.

    Inside it the first SIGINT or SIGTERM raises KeyboardInterrupt or ``Terminated`` where the
    program is; a later one is only noted (the run is already stopping and writing what it has),
    and so is every one received inside ``deferred()``, the block that writes the run's files:
    they are written whole. ``received`` is the first signal's number, or None; ``exit_status``
    the status it calls for. The previous handlers come back on leaving. Outside the main thread
    (where Python cannot handle signals) it changes nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received = None
        self._deferring = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous = None

    def _handle(self, signum, frame):
        if self.received is not None or self._deferring:
            self.received = self.received or signum
            return
        self.received = signum
        raise Terminated("terminated by SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self):
        """A block that a signal does not cut short: it is noted, and acted on by the caller after the block."""
        self._deferring = True
        try:
            yield self
        finally:
            self._deferring = False

    def exit_status(self, default):
        """143 after SIGTERM, 130 after SIGINT, else ``default``."""
        if self.received == signal.SIGTERM:
            return EXIT_TERMINATED
        if self.received == signal.SIGINT:
            return EXIT_INTERRUPTED
        return default


RECIPE_CHOICES = tuple(RECIPES)


def recipe_default(name, recipe="main"):
    """``recipe``'s value of ``name`` (``mlp.defaults.RECIPES``), else the library's default (``TRAINING``, ``NETWORK``).

    What a recipe does not name (the optimizer, the activation...) is the
    library's own default: sgd, relu.
    """
    for defaults in (RECIPES[recipe], TRAINING, NETWORK):
        if name in defaults:
            return defaults[name]
    raise KeyError(f"no default for {name!r}")


# --------------------------------------------------------------------------- #
# argument types: argparse shows the message after "argument --option:"
# --------------------------------------------------------------------------- #
def _parsed(text, kind, check):
    """``check(kind(text))``, its ValueError or TypeError turned into argparse's error."""
    try:
        try:
            value = kind(text)
        except ValueError:
            raise TypeError(f"value must be {'an integer' if kind is int else 'a number'}; "
                            f"got {text!r}") from None
        return check(value)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def integer(minimum):
    """An argparse type: an integer >= ``minimum``."""
    def integer_argument(text):
        return _parsed(text, int, lambda value: check_int("value", value, minimum))
    return integer_argument


def real(low=-math.inf, high=math.inf, *, low_open=False, high_open=False):
    """An argparse type: a finite number between ``low`` and ``high`` (each bound open or closed)."""
    def real_argument(text):
        return _parsed(text, float, lambda value: check_real("value", value, low, high,
                                                             low_open=low_open, high_open=high_open))
    return real_argument


def seed(text):
    """An argparse type: a seed, an integer in [0, 2**63)."""
    return _parsed(text, int, lambda value: check_seed("value", value))


def threads(text):
    """An argparse type: ``auto`` or a thread count >= 1 (``mlp.threads``)."""
    if text == "auto":
        return text
    return _parsed(text, int, lambda value: check_int("value", value, 1))


positive_int = integer(1)
non_negative_int = integer(0)
positive_number = real(0, low_open=True)
non_negative_number = real(0)
momentum = real(0, 1, high_open=True)
decay_rate = real(0, 1, high_open=True)  # Adam's beta_1, beta_2
keep_probability = real(0, 1, low_open=True)


def help_text(docstring):
    """A command's ``--help`` description: paragraphs 2-4 of its module's docstring, without RST markup."""
    return "\n\n".join(docstring.split("\n\n")[1:4]).replace("``", "")


# --------------------------------------------------------------------------- #
# running a subcommand
# --------------------------------------------------------------------------- #
def say(args, message):
    """Print a notice to stderr unless ``--quiet``."""
    if not args.quiet:
        print(message, file=sys.stderr)


_DATA_DIR_HINT = "(`path` is --data-dir DIR on the command line.)"


def add_data_arguments(group):
    """``--dataset`` and ``--data-dir``, the same in every command."""
    group.add_argument(
        "--dataset", choices=DATASET_CHOICES, default="auto",
        help="data set (default: auto = fashion-mnist when installed, else digits with a notice)")
    group.add_argument(
        "--data-dir", type=Path, default=None, metavar="DIR",
        help="directory of the IDX files of fashion-mnist or mnist (default: $MLP_DATA, then "
             "/usr/share/datasets/fashion-mnist, from apt-get install dataset-fashion-mnist); "
             "with --dataset auto it means fashion-mnist from DIR, without the fallback")


def check_data_dir(args):
    """``--data-dir`` given with a data set that is not read from a directory is a usage error."""
    if args.data_dir is not None and args.dataset in ("digits", "synthetic"):
        raise UsageError(f"--data-dir applies to fashion-mnist and mnist only, not {args.dataset}")


#: What reading a malformed data file raises: a bad header, size or label (ValueError), a truncated or
#: corrupt gzip stream (EOFError, zlib.error, gzip.BadGzipFile: an OSError), an unreadable file.
MALFORMED_DATA = (ValueError, TypeError, EOFError, zlib.error, OSError)


def load_data(args):
    """(Dataset, notice or None) for ``--dataset``; a missing or malformed data set is a usage error.

    ``--dataset auto`` falls back to scikit-learn's digits when Fashion-MNIST is not installed,
    with a notice that the caller shows even with ``--quiet``: the numbers are about another data
    set than asked. A place the user named (``--data-dir`` or ``$MLP_DATA``) that lacks the data
    is an error instead: the user meant that data set. A data file that is there but cannot be
    read whole (truncated, corrupt, labels outside the classes) is an error naming it, raised
    here, before a command trains anything.
    """
    check_data_dir(args)
    try:
        return _load_data(args)
    except FileNotFoundError as exc:
        raise UsageError(f"{exc} {_DATA_DIR_HINT}") from None
    except MALFORMED_DATA as exc:
        what = args.dataset if args.dataset != "auto" else "fashion-mnist"
        text = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        raise UsageError(f"the {what} data set cannot be read: {text}") from None


def _load_data(args):
    name = args.dataset
    if name == "auto":
        try:
            return datasets.load_fashion_mnist(args.data_dir), None
        except FileNotFoundError as exc:
            if args.data_dir is not None:
                raise UsageError(f"{exc} {_DATA_DIR_HINT}") from None
            if os.environ.get(DATA_ENV_VAR):
                raise UsageError(f"${DATA_ENV_VAR} is set but does not hold the data set: {exc}") from None
            notice = ("notice: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); "
                      "training on scikit-learn's digits instead")
            return datasets.load_dataset("digits", seed=args.seed), notice
    if name in ("digits", "synthetic"):
        return datasets.load_dataset(name, seed=args.seed), None
    return datasets.load_dataset(name, path=args.data_dir), None


def describe_data(dataset, parts):
    """One line saying which data a command uses: ``data: fashion-mnist (PARTS, 10000 test samples) from DIR``."""
    return f"data: {dataset.name} ({parts}, {dataset.n_test} test samples) from {dataset.source}"


def count(n, noun):
    """``1 epoch``, ``2 epochs``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def checked_backend(name):
    """The backend ``--backend name`` resolves to; one that cannot run here is a usage error."""
    try:
        backend = kernels.resolve_backend_name(name)
        kernels.get_backend(backend)
    except kernels.BackendUnavailableError as exc:
        raise UsageError(f"--backend {name}: {exc}") from None
    return backend


def add_output_arguments(group, default_out, overwrite=True):
    """``--out``, ``--overwrite`` (unless ``overwrite`` is False) and ``--quiet``."""
    group.add_argument("--out", type=Path, default=None, metavar="DIR",
                       help=f"output directory, created if missing (default: {default_out})")
    if overwrite:
        group.add_argument("--overwrite", action="store_true",
                           help="replace the files of an earlier run in --out (without it, a run is never "
                                "written over another)")
    group.add_argument("--quiet", action="store_true", help="no progress bar or notices; only the final results")


def check_out(out, earlier_files, overwrite=False, what="an earlier run"):
    """``--out``: a directory (or none yet) without ``earlier_files`` unless ``overwrite``; a usage error otherwise."""
    if out is None:
        return
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a directory (it is created when missing)")
    found = [name for name in earlier_files if (out / name).exists()]
    if found and not overwrite:
        raise UsageError(f"--out {out} already holds {what} ({', '.join(found)}): give --overwrite to "
                         "replace it, or another directory")


def check_writable(path, what):
    """``mlp.files.check_writable(path, what)``, its OSError a usage error."""
    try:
        files.check_writable(path, what)
    except OSError as exc:
        raise UsageError(str(exc)) from None


def prepare_out(out, names):
    """Create the directory ``out`` and check that each of the files ``names`` can be written there:
    before the work that makes them, so that its result is not refused at the end (a usage error)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out} cannot be created: {exc.strerror or exc}") from None
    for name in names:
        check_writable(out / name, "--out")


def default_out(name):
    """``runs/<name>-<timestamp>``, with ``-1``, ``-2``... appended when it exists."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{name}-{stamp}"
    out, i = base, 1
    while out.exists():
        out = base.with_name(f"{base.name}-{i}")
        i += 1
    return out
