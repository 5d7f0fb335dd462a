"""Hyper-parameter search: grid or random, on a validation split, in parallel, resumable.

The lecture asks for the per-layer strengths alpha(j), beta(j) (``l2``, ``l1``)
and the dropout keep probabilities to be "optimized on a separate validation
set (not the test set)". :func:`search` does exactly that:

1. The *training* part of the data is split once, stratified, with
   :func:`mlp.datasets.train_validation_split` (``validation_fraction``,
   ``seed``): every trial sees the same training and validation samples.
2. Each trial trains a fresh network on the training split and is scored on
   the validation split: accuracy (the ranking score) and mean cross-entropy.
   Trials receive only those four arrays; the test set is not sent to them.
3. The best trial (highest validation accuracy; ties: lower validation loss,
   then the earlier trial) is trained again in this process on the same
   training split with the same seed and BLAS thread count, which reproduces
   the trial's network (so no trial's network need be stored or shipped
   back), and only that network is evaluated on the test set, once.

>>> from mlp.search import search
>>> result = search("digits", {"hidden": [32], "l2": [0, 1e-4], "keep_prob_hidden": [0.5, 1.0],
...                            "epochs": 3, "learning_rate": 0.1}, out_dir="runs/search")
>>> result.best_params, result.test_accuracy

The space
---------
A dict from parameter name to its candidates. A list (or tuple or array) is
a list of candidates; a scalar is one fixed value; :class:`LogUniform` /
:class:`Uniform` are distributions, for random search only. Names:

``hidden``            hidden layer sizes of one network: ``[(256,), (512, 256)]``
                      (an int means one hidden layer; ``()`` means none)
``l2``, ``l1``        one strength, or a tuple with one per weight matrix
``keep_prob``         one keep probability, or a tuple: the input's, then each hidden layer's
``keep_prob_input``, ``keep_prob_hidden``
                      the input's and every hidden layer's keep probability
                      (instead of ``keep_prob``; a missing one is 1.0)
``learning_rate``, ``momentum``, ``lr_decay``, ``epochs``, ``batch_size``,
``dropout_mode``, ``early_stopping``, ``patience``, ``tol``, ``monitor``
                      the :class:`mlp.trainer.TrainConfig` fields

Parameters not in the space keep the :class:`~mlp.trainer.TrainConfig`
defaults; ``hidden`` defaults to ``(256,)``, the lecture's 784-256-10 net.
Every trial uses the same ``seed`` for its initial weights, shuffling and
dropout masks, so differences between trials come from the hyper-parameters
and a trial's result does not depend on where or in which order it runs (to
the bit with the same BLAS thread count, see ``threads_per_trial``).

``method="grid"`` runs the full product of the candidate lists (the last name
varies fastest). ``method="random"`` draws ``n_trials`` configurations from
``numpy.random.default_rng(seed)``: without repetition when every entry is a
list (at most the grid's size), independently per trial when there is a
distribution.

Where trials run
----------------
``n_jobs=1``: one after another in this process. ``n_jobs=k > 1``: in ``k``
worker processes (joblib's loky backend); each worker runs numba's parallel
loops on one thread and limits BLAS to ``max(1, cores // k)`` threads, so
the machine is not oversubscribed (``threads_per_trial`` overrides the
count). ``client=`` (a ``dask.distributed.Client``) or
``scheduler="tcp://host:port"``: on a Dask cluster; the data are scattered
to every worker once, each trial is a task (numba and BLAS on one thread per
task: a worker runs as many trials at once as it has threads), and results are
collected as they complete. If a worker dies, the scheduler reruns its trials
elsewhere. Dask and joblib are optional (``pip install 'numba-mlp[dask]'``);
this module imports them only when asked to use them.

Nothing lost
------------
With ``out_dir``, each finished trial is appended to ``out_dir/journal.jsonl``
(JSON Lines, flushed and fsynced line by line) as soon as its result arrives,
keyed by a hash of its parameters, the data, the split and the seed. Running
the same search again skips the journalled trials: a crash, Ctrl-C or a killed
worker loses only the trials that were running. A last line cut short by a
crash is ignored with a warning. Under joblib a killed worker stops the search
with :class:`SearchIncomplete` (the journal keeps every finished trial; run
again to complete the rest). One search at a time per ``out_dir``.

Files written into ``out_dir`` (atomically, except the journal):
``trials.csv`` and ``trials.json`` (one row per trial: its parameters,
validation accuracy and loss, epochs run, seconds), ``best.json`` (best
parameters, validation and test accuracy), ``best_model.npz`` (the retrained
best network, ``mlp.persistence.load_model``), ``search.png`` (validation accuracy against each
varied hyper-parameter, log scale for l2, l1, learning rate) and the journal.

The scikit-learn route
----------------------
:class:`mlp.MLPClassifier` is a scikit-learn estimator, so scikit-learn's own
searches work too, with cross-validation instead of one split::

    from sklearn.model_selection import GridSearchCV
    gs = GridSearchCV(mlp.MLPClassifier(hidden_layer_sizes=(256,), max_iter=10),
                      {"l2": [0, 1e-4], "keep_prob": [1.0, (0.8, 0.5)]}, n_jobs=2)
    gs.fit(X_train, y_train)                       # joblib processes on this machine
    with joblib.parallel_backend("dask"):          # or the fits on a Dask cluster,
        gs.fit(X_train, y_train)                   # after dask.distributed.Client(...)

That route has no journal and does not limit numba's threads per worker.

Command line: ``mlp search`` (see :func:`add_cli_arguments`).
"""
import argparse
import contextlib
import csv
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import math
import numbers
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np

import kernels

from . import checks as v
from . import cli
from ._version import __version__
from .datasets import load_dataset, train_validation_split
from .model import MLP
from .config import TrainConfig
from .evaluation import evaluate
from .files import atomic_write
from .persistence import save_model
from .trainer import Trainer

__all__ = ["search", "SearchResult", "SearchIncomplete", "LogUniform", "Uniform", "run_trial",
           "read_journal", "trial_key", "add_cli_arguments", "run_cli", "METHODS", "PARAMETERS"]

METHODS = ("grid", "random")
DEFAULT_HIDDEN = (256,)
JOURNAL_NAME = "journal.jsonl"
_JOURNAL_FORMAT = "numba-mlp-search-trial/1"
_DASK_HINT = "pip install 'numba-mlp[dask]'"
# Metric columns of the results table, after the parameters.
_METRICS = ("val_accuracy", "val_loss", "train_loss", "epochs_run", "best_epoch", "stop_reason",
            "seconds", "threads", "worker", "resumed")
_LOG_SCALE = ("l2", "l1", "learning_rate", "lr_decay")


# --------------------------------------------------------------------------- #
# distributions (random search only)
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class LogUniform:
    """Uniform in log space on [low, high], 0 < low < high: for l2, l1, learning_rate."""

    low: float
    high: float

    def __post_init__(self):
        if not (_is_real(self.low) and _is_real(self.high)):
            raise TypeError(f"LogUniform bounds must be numbers; got {self.low!r}, {self.high!r}")
        if not (0 < self.low < self.high < math.inf):
            raise ValueError(f"LogUniform needs 0 < low < high < inf; got low={self.low}, high={self.high}")

    def sample(self, rng):
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Uniform on [low, high], low < high: for keep probabilities, momentum."""

    low: float
    high: float

    def __post_init__(self):
        if not (_is_real(self.low) and _is_real(self.high)):
            raise TypeError(f"Uniform bounds must be numbers; got {self.low!r}, {self.high!r}")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"Uniform needs finite low < high; got low={self.low}, high={self.high}")

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))


_DISTRIBUTIONS = (LogUniform, Uniform)


# --------------------------------------------------------------------------- #
# parameters: each candidate is checked and put in one canonical JSON form,
# so that equal configurations hash to the same journal key
# --------------------------------------------------------------------------- #
def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _is_real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, (bool, np.bool_))


def _real(name, x, low=-math.inf, high=math.inf, low_open=False, high_open=False):
    if not _is_real(x):
        raise TypeError(f"space[{name!r}]: expected a number; got {x!r}")
    x = float(x)
    bad_low = x <= low if low_open else x < low
    bad_high = x >= high if high_open else x > high
    if not math.isfinite(x) or bad_low or bad_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"space[{name!r}]: {x} is outside {interval}")
    return x


def _positive_int(name, x):
    if not _is_int(x):
        raise TypeError(f"space[{name!r}]: expected an integer; got {x!r}")
    if x < 1:
        raise ValueError(f"space[{name!r}]: expected an integer >= 1; got {x}")
    return int(x)


def _one_or_per_layer(name, x, check):
    """A number, or a non-empty sequence of numbers (one per layer) as a list."""
    if isinstance(x, (list, tuple, np.ndarray)):
        values = [check(name, e) for e in x]
        if not values:
            raise ValueError(f"space[{name!r}]: a per-layer candidate needs at least one value")
        return values
    return check(name, x)


def _hidden(name, x):
    if _is_int(x):
        x = (x,)
    if not isinstance(x, (list, tuple, np.ndarray)):
        raise TypeError(f"space['hidden']: a candidate is an int or a sequence of ints "
                        f"(the hidden layer sizes of one network); got {x!r}")
    return [_positive_int(name, s) for s in x]


def _choice(choices):
    def check(name, x):
        if x not in choices:
            raise ValueError(f"space[{name!r}]: expected one of {choices}; got {x!r}")
        return x
    return check


def _boolean(name, x):
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"space[{name!r}]: expected True or False; got {x!r}")
    return bool(x)


def _strength(name, x):
    return _real(name, x, low=0)


def _keep(name, x):
    return _real(name, x, low=0, high=1, low_open=True)


#: The names a search space may use, and how each candidate is checked.
PARAMETERS = {
    "hidden": _hidden,
    "l2": lambda n, x: _one_or_per_layer(n, x, _strength),
    "l1": lambda n, x: _one_or_per_layer(n, x, _strength),
    "keep_prob": lambda n, x: _one_or_per_layer(n, x, _keep),
    "keep_prob_input": _keep,
    "keep_prob_hidden": _keep,
    "learning_rate": lambda n, x: _real(n, x, low=0, low_open=True),
    "momentum": lambda n, x: _real(n, x, low=0, high=1, high_open=True),
    "lr_decay": _strength,
    "epochs": _positive_int,
    "batch_size": _positive_int,
    "patience": _positive_int,
    "tol": _strength,
    "dropout_mode": _choice(("per_sample", "per_batch")),
    "monitor": _choice(("val_loss", "val_accuracy")),
    "early_stopping": _boolean,
}
# Names passed to TrainConfig unchanged.
_CONFIG_NAMES = ("l2", "l1", "keep_prob", "learning_rate", "momentum", "lr_decay", "epochs", "batch_size",
                 "patience", "tol", "dropout_mode", "monitor", "early_stopping")


def _check_space(space, method):
    """{name: list of canonical candidates or a distribution}, in the space's order."""
    if not isinstance(space, dict) or not space:
        raise TypeError(f"space must be a non-empty dict of parameter name -> candidates; got {space!r}")
    unknown = [k for k in space if k not in PARAMETERS]
    if unknown:
        raise ValueError(f"unknown search parameter(s) {unknown}; known: {sorted(PARAMETERS)}")
    if "keep_prob" in space and ({"keep_prob_input", "keep_prob_hidden"} & set(space)):
        raise ValueError("give either keep_prob or keep_prob_input/keep_prob_hidden, not both")
    checked = {}
    for name, candidates in space.items():
        check = PARAMETERS[name]
        if isinstance(candidates, _DISTRIBUTIONS):
            if method != "random":
                raise ValueError(f"space[{name!r}] is a distribution ({candidates!r}): "
                                 "distributions need method='random'; give a list for a grid")
            if name in ("hidden", "dropout_mode", "monitor", "early_stopping", "epochs", "batch_size",
                        "patience"):
                raise ValueError(f"space[{name!r}]: a distribution draws real numbers; give a list of "
                                 "candidates for this parameter")
            check(name, candidates.low)
            check(name, candidates.high)
            checked[name] = candidates
            continue
        if isinstance(candidates, (list, tuple, np.ndarray)):
            if len(candidates) == 0:
                raise ValueError(f"space[{name!r}] has no candidates")
            values = [check(name, c) for c in candidates]
        else:
            values = [check(name, candidates)]
        unique = []
        for value in values:
            if value not in unique:
                unique.append(value)
        checked[name] = unique
    return checked


def _grid_size(space):
    return math.prod(len(c) for c in space.values())


def _grid_point(space, index):
    """The index-th point of the product (last name fastest), as a params dict."""
    params = {}
    for name in reversed(list(space)):
        index, i = divmod(index, len(space[name]))
        params[name] = space[name][i]
    return {name: params[name] for name in space}


def _configurations(space, method, n_trials, seed):
    """The trials' parameter dicts, in a reproducible order."""
    if method == "grid":
        if n_trials is not None:
            raise ValueError("n_trials is for method='random'; a grid runs every combination")
        return [_grid_point(space, i) for i in range(_grid_size(space))]
    if n_trials is None:
        raise ValueError("method='random' needs n_trials")
    if not _is_int(n_trials) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1; got {n_trials!r}")
    rng = np.random.default_rng(seed)
    if all(isinstance(c, list) for c in space.values()):
        size = _grid_size(space)
        if n_trials > size:
            warnings.warn(f"n_trials={n_trials} exceeds the {size} distinct configurations of the space; "
                          f"running all {size}", UserWarning, stacklevel=3)
        picks = rng.choice(size, size=min(n_trials, size), replace=False)
        return [_grid_point(space, int(i)) for i in picks]
    return [{name: (c.sample(rng) if isinstance(c, _DISTRIBUTIONS) else c[int(rng.integers(len(c)))])
             for name, c in space.items()} for _ in range(n_trials)]


def _network_and_config(params, n_features, n_classes, seed):
    """(layer sizes, TrainConfig) of one trial; per-layer lengths are checked here."""
    hidden = params.get("hidden", list(DEFAULT_HIDDEN))
    layer_sizes = [n_features, *hidden, n_classes]
    fields = {name: params[name] for name in _CONFIG_NAMES if name in params}
    if "keep_prob_input" in params or "keep_prob_hidden" in params:
        fields["keep_prob"] = ([params.get("keep_prob_input", 1.0)]
                               + [params.get("keep_prob_hidden", 1.0)] * len(hidden))
    config = TrainConfig(**fields, seed=seed)
    n_weights = len(layer_sizes) - 1
    try:
        config.validate()
        v.per_layer("l2", config.l2, n_weights)
        v.per_layer("l1", config.l1, n_weights)
        v.check_keep_probs(config.keep_prob, n_weights)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"trial {params}: {exc}") from None
    return layer_sizes, config


def trial_key(params, context):
    """A stable 16-hex-digit key of one trial: its parameters and the data, split and seed it ran with."""
    text = json.dumps({"params": params, "context": context}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- #
# one trial (runs in a worker: it gets the training and validation splits only)
# --------------------------------------------------------------------------- #
@contextlib.contextmanager
def _limited_threads(threads):
    """BLAS on at most ``threads`` threads and numba's own parallel loops on one, while the block runs.

    None leaves both as they are. numba's parallel loops (``prange``) are not
    on the default path, BLAS (``np.dot`` in the kernels) is; its thread count
    changes the order of floating-point sums, so a trial reproduces to the bit
    only with the same count.
    """
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ImportError(f"limiting the threads of a trial needs threadpoolctl: {_DASK_HINT}") from None
    # np.dot inside numba calls SciPy's OpenBLAS, which is loaded on first use; threadpoolctl
    # limits only libraries already loaded, so load it now or the first trial runs unlimited.
    import scipy.linalg.cython_blas  # noqa: F401

    numba_threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        numba.set_num_threads(numba_threads)


def _accuracy_and_loss(net, X, y):
    loss, accuracy = evaluate(net, v.check_X(X, net.n_features, net.dtype), np.asarray(y, dtype=np.int64))
    return float(accuracy), float(loss)


def _train(params, split, settings):
    """Train one configuration on split = (X_tr, y_tr, X_val, y_val); (net, result dict)."""
    X_tr, y_tr, X_val, y_val = split
    layer_sizes, config = _network_and_config(params, settings["n_features"], settings["n_classes"],
                                              settings["seed"])
    net = MLP(layer_sizes, output="softmax", seed=settings["seed"], dtype=settings["dtype"],
              backend=settings["backend"])
    start = time.perf_counter()
    with warnings.catch_warnings():
        # A diverged trial is a result (stop_reason "diverged"), not a reason to warn per trial.
        warnings.simplefilter("ignore", RuntimeWarning)
        history = Trainer(net, config).fit(X_tr, y_tr, X_val=X_val, y_val=y_val)
    if history.stop_reason == "interrupted":
        # The trainer absorbs Ctrl-C and returns a partly trained net: that is no result to journal.
        raise KeyboardInterrupt
    seconds = time.perf_counter() - start
    val_accuracy, val_loss = _accuracy_and_loss(net, X_val, y_val)
    records = history.records
    return net, {
        "val_accuracy": val_accuracy,
        "val_loss": val_loss if math.isfinite(val_loss) else None,
        "train_loss": records[-1]["train_loss"] if records else None,
        "epochs_run": len(records),
        "best_epoch": history.best_epoch,
        "stop_reason": history.stop_reason,
        "seconds": seconds,
        "worker": f"{platform.node()}:{os.getpid()}",
    }


def run_trial(params, split, settings, threads=None):
    """Train and score one trial; what the workers run. Returns the result dict.

    Parameters
    ----------
    params : dict
        Canonical parameters of the trial (see the module docstring).
    split : tuple
        ``(X_tr, y_tr, X_val, y_val)``: the training and validation splits.
    settings : dict
        ``n_features``, ``n_classes``, ``seed``, ``dtype``, ``backend``.
    threads : int or None
        BLAS threads while the trial runs (numba's own: 1); None: unchanged.
    """
    with _limited_threads(threads):
        result = _train(params, split, settings)[1]
    return dict(result, threads=threads)


# --------------------------------------------------------------------------- #
# the journal: append-only JSON Lines, one finished trial per line
# --------------------------------------------------------------------------- #
def read_journal(path):
    """{key: record} of the finished trials in a journal; unreadable lines are skipped with a warning.

    A line cut short by a crash mid-write (normally the last) is not valid
    JSON; it is reported with a ``RuntimeWarning`` and ignored, so that trial
    runs again.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return {}
    done = {}
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            valid = (isinstance(record, dict) and record.get("format") == _JOURNAL_FORMAT
                     and isinstance(record.get("key"), str) and "val_accuracy" in record)
        except (ValueError, UnicodeDecodeError):
            valid = False
        if not valid:
            warnings.warn(f"{path}: line {number} is not a complete trial record (a write cut short "
                          "by a crash?); ignoring it, that trial will run again", RuntimeWarning, stacklevel=2)
            continue
        done[record["key"]] = record
    return done


class _Journal:
    """Appends one JSON line per finished trial, flushed and fsynced before the next."""

    def __init__(self, path):
        self.path = Path(path)
        self._file = None

    def __enter__(self):
        self._file = open(self.path, "ab")
        # A torn last line has no newline: start on a fresh line so the next record stays whole.
        if self._file.tell() > 0:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    self._file.write(b"\n")
        return self

    def append(self, record):
        self._file.write(json.dumps(record, sort_keys=True, allow_nan=False).encode("utf-8") + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def __exit__(self, *exc):
        self._file.close()


# --------------------------------------------------------------------------- #
# running the trials
# --------------------------------------------------------------------------- #
class SearchIncomplete(RuntimeError):
    """The search stopped before every trial finished (a worker died); the journal keeps the finished ones.

    Attributes
    ----------
    n_done, n_total : int
        Trials finished (journalled) and trials in the search.
    """

    def __init__(self, message, n_done, n_total):
        super().__init__(message)
        self.n_done = n_done
        self.n_total = n_total


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return os.cpu_count() or 1


def _run_sequential(todo, split, settings, threads):
    for key, params in todo:
        yield key, run_trial(params, split, settings, threads)


def _run_joblib(todo, split, settings, n_jobs, threads):
    try:
        from joblib import Parallel, delayed
    except ImportError:
        raise ImportError(f"n_jobs > 1 needs joblib and threadpoolctl: {_DASK_HINT}") from None
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    keys = [key for key, _ in todo]
    tasks = (delayed(_keyed_trial)(key, params, split, settings, threads) for key, params in todo)
    try:
        yield from Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")(tasks)
    except TerminatedWorkerError as exc:
        raise _WorkerDied(f"a joblib worker process died ({exc.__class__.__name__})", keys) from exc


def _keyed_trial(key, params, split, settings, threads):
    return key, run_trial(params, split, settings, threads)


class _WorkerDied(Exception):
    def __init__(self, message, keys):
        super().__init__(message)
        self.keys = keys


def _dask_distributed():
    try:
        import dask.distributed
    except ImportError:
        raise ImportError(f"searching on a Dask cluster needs dask.distributed: {_DASK_HINT}") from None
    return dask.distributed


def _run_dask(todo, split, settings, client, threads):
    distributed = _dask_distributed()
    if not todo:
        return
    [split_future] = client.scatter([split], broadcast=True, hash=False)
    # Task names unique to this call: a rerun must not pick up an old search's (cancelled) futures.
    run_id = hashlib.sha256(f"{time.time_ns()}-{os.getpid()}".encode()).hexdigest()[:8]
    futures = [client.submit(_keyed_trial, key, params, split_future, settings, threads,
                             key=f"mlp-trial-{key}-{run_id}", pure=False)
               for key, params in todo]
    try:
        for future in distributed.as_completed(futures):
            try:
                yield future.result()
            except distributed.KilledWorker as exc:
                raise _WorkerDied(f"Dask gave up on a trial whose workers kept dying ({exc})",
                                  [key for key, _ in todo]) from exc
    finally:
        client.cancel(futures + [split_future])


# --------------------------------------------------------------------------- #
# the result
# --------------------------------------------------------------------------- #
@dataclasses.dataclass
class SearchResult:
    """What :func:`search` found.

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


def _as_split(data, validation_fraction, seed):
    """(train/val split, test part or None, name, n_classes, data fingerprint) of the input."""
    if isinstance(data, str):
        data = load_dataset(data)
    if isinstance(data, (tuple, list)):
        if len(data) not in (2, 4):
            raise ValueError("data must be a Dataset, a data set name, (X_train, y_train) or "
                             f"(X_train, y_train, X_test, y_test); got a sequence of {len(data)}")
        X, y = data[0], data[1]
        test = tuple(data[2:]) or None
        name = "arrays"
        y_arr = np.asarray(y)
        if y_arr.ndim != 1 or not np.issubdtype(y_arr.dtype, np.integer):
            raise TypeError(f"y_train must be 1-D integer class labels; got dtype {y_arr.dtype}, "
                            f"shape {y_arr.shape}")
        n_classes = int(y_arr.max()) + 1
        if test is not None:
            n_classes = max(n_classes, int(np.max(test[1])) + 1)
    elif all(hasattr(data, a) for a in ("X_train", "y_train", "n_classes")):
        X, y = data.X_train, data.y_train
        # The test arrays are looked up only at the end (``_test_part``).
        test = data
        name = getattr(data, "name", type(data).__name__)
        n_classes = int(data.n_classes)
    else:
        raise TypeError("data must be an mlp.datasets.Dataset, a data set name, (X_train, y_train) or "
                        f"(X_train, y_train, X_test, y_test); got {type(data).__name__}")
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X_train must be 2-D (n_samples, n_features); got shape {X.shape}")
    digest = hashlib.sha256()
    for array in (X, y):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).data)
    split = train_validation_split(X, y, validation_fraction, seed=seed)
    return split, test, name, n_classes, digest.hexdigest()[:16]


def _test_part(test):
    if test is None:
        return None
    if isinstance(test, tuple):
        return test
    return test.X_test, test.y_test


def _rank_key(row):
    loss = row["val_loss"]
    return (-row["val_accuracy"], math.inf if loss is None else loss, row["trial"])


# --------------------------------------------------------------------------- #
# files
# --------------------------------------------------------------------------- #
def _write_text(path, text):
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _cell(value):
    if isinstance(value, list):
        return json.dumps(value)
    return "" if value is None else value


def _write_tables(out_dir, rows, names):
    columns = ["trial", "key", *names, *_METRICS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    _write_text(out_dir / "trials.csv", buffer.getvalue())
    _write_text(out_dir / "trials.json", json.dumps(rows, indent=1, allow_nan=False) + "\n")


def _axis_values(rows, name):
    """x positions, tick labels (None for a numeric axis) and whether to use a log scale."""
    values = [row.get(name) for row in rows]
    if all(_is_real(x) for x in values):
        return [float(x) for x in values], None, name in _LOG_SCALE
    labels = [json.dumps(x) if isinstance(x, list) else str(x) for x in values]
    order = sorted(set(labels), key=labels.index)
    return [order.index(s) for s in labels], order, False


def _plot(path, rows, names, best_row):
    from .plotting import _pyplot

    plt = _pyplot()
    varied = [n for n in names if len({json.dumps(row.get(n)) for row in rows}) > 1] or list(names[:1])
    ncols = min(3, len(varied))
    nrows = -(-len(varied) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    accuracy = [row["val_accuracy"] for row in rows]
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
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)


def _jsonable_space(space):
    return {name: (dataclasses.asdict(c) | {"distribution": type(c).__name__}
                   if isinstance(c, _DISTRIBUTIONS) else c) for name, c in space.items()}


# --------------------------------------------------------------------------- #
# search
# --------------------------------------------------------------------------- #
def search(data, space, *, method="grid", n_trials=None, seed=0, validation_fraction=0.1, n_jobs=1,
           client=None, scheduler=None, threads_per_trial=None, out_dir=None, backend="cpu",
           dtype=np.float32, plot=True, callback=None):
    """Search hyper-parameters on a validation split; evaluate only the best on the test set.

    Parameters
    ----------
    data : Dataset, str, (X_train, y_train) or (X_train, y_train, X_test, y_test)
        A :class:`mlp.datasets.Dataset` (or any object with ``X_train``,
        ``y_train``, ``n_classes`` and, for the final test, ``X_test``,
        ``y_test``), a name for :func:`mlp.datasets.load_dataset`, or arrays
        (integer class labels). Without a test part, no test accuracy.
    space : dict
        Parameter name -> candidates (see the module docstring).
    method : {"grid", "random"}
    n_trials : int, for method="random" only
    seed : int >= 0
        Seeds the validation split, the random draws and every trial.
    validation_fraction : float in (0, 1)
        Part of the training data held out for scoring, stratified.
    n_jobs : int >= 1
        Worker processes on this machine (joblib, loky).
    client : dask.distributed.Client, optional
        Run the trials on this Dask cluster (``n_jobs`` is then ignored).
    scheduler : str, optional
        Address of a Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``: connect,
        run there, disconnect. Not together with ``client``.
    threads_per_trial : int, optional
        BLAS threads of each trial (numba's own parallel loops get one).
        Default: unchanged (all cores) for ``n_jobs=1``, ``max(1, cores //
        n_jobs)`` for joblib workers, 1 on Dask. A trial's scores are
        bit-identical wherever it runs with the same count; with another count
        they agree to rounding, which SGD over several epochs can grow to a few
        tenths of a percent of accuracy. Give a number (e.g. 1) to make
        ``n_jobs=1``, ``n_jobs=k`` and Dask agree exactly.
    out_dir : str or Path, optional
        Where the journal and results go; the search resumes from its journal.
        None: nothing is written and nothing resumed.
    backend : str
        Kernels of every trial (``"cpu"``, ``"numpy"``, ``"cuda"``, ``"auto"``).
    dtype : float32 or float64
    plot : bool
        Draw ``search.png`` (needs matplotlib) when ``out_dir`` is given.
    callback : callable(row) or None
        Called in this process with each trial's row as it finishes
        (after it is journalled): progress reporting.

    Returns
    -------
    SearchResult

    Raises
    ------
    SearchIncomplete
        A worker process died (joblib) or Dask gave up on a trial; the journal
        keeps every finished trial: run the same search again to finish it.
    ValueError, TypeError
        A bad space or argument, named in the message.
    ImportError
        ``n_jobs > 1`` without joblib, or a Dask cluster without dask.distributed.
    """
    started = time.perf_counter()
    method = v.check_choice("method", method, METHODS)
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    if not _is_int(n_jobs) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an integer >= 1; got {n_jobs!r}")
    if client is not None and scheduler is not None:
        raise ValueError("give either client or scheduler, not both")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address string like 'tcp://host:8786'; got {scheduler!r}")
    if threads_per_trial is not None and (not _is_int(threads_per_trial) or threads_per_trial < 1):
        raise ValueError(f"threads_per_trial must be an integer >= 1 or None; got {threads_per_trial!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")
    dtype = v.check_dtype(dtype)
    backend = kernels.resolve_backend_name(backend)
    kernels.get_backend(backend)
    checked_space = _check_space(space, method)
    configurations = _configurations(checked_space, method, n_trials, seed)

    split, test, data_name, n_classes, fingerprint = _as_split(data, validation_fraction, seed)
    n_features = split[0].shape[1]
    for params in configurations:
        _network_and_config(params, n_features, n_classes, seed)
    context = {"data": fingerprint, "validation_fraction": float(validation_fraction), "seed": int(seed),
               "dtype": np.dtype(dtype).name}
    settings = {"n_features": n_features, "n_classes": n_classes, "seed": int(seed),
                "dtype": np.dtype(dtype).name, "backend": backend}
    keys = [trial_key(params, context) for params in configurations]
    params_of = dict(zip(keys, configurations))
    index_of = {key: i for i, key in enumerate(keys)}

    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        journalled = read_journal(out_dir / JOURNAL_NAME)
    else:
        journalled = {}
    results = {k: dict(journalled[k], resumed=True) for k in keys if k in journalled}
    n_resumed = len(results)
    todo = [(key, params_of[key]) for key in dict.fromkeys(keys) if key not in results]

    with contextlib.ExitStack() as stack:
        journal = stack.enter_context(_Journal(out_dir / JOURNAL_NAME)) if out_dir is not None else None
        if scheduler is not None:
            client = stack.enter_context(_dask_distributed().Client(scheduler))
        if client is not None:
            stream = _run_dask(todo, split, settings, client, threads_per_trial or 1)
        elif n_jobs > 1 and len(todo) > 1:
            n_workers = min(n_jobs, len(todo))
            stream = _run_joblib(todo, split, settings, n_workers,
                                 threads_per_trial or max(1, _cores() // n_workers))
        else:
            stream = _run_sequential(todo, split, settings, threads_per_trial)
        try:
            for key, result in stream:
                record = {"format": _JOURNAL_FORMAT, "key": key, "params": params_of[key], "context": context,
                          **result, "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
                if journal is not None:
                    journal.append(record)
                results[key] = dict(record, resumed=False)
                if callback is not None:
                    callback(_row(index_of[key], key, results[key]))
        except _WorkerDied as exc:
            rows = [_row(i, k, results[k]) for i, k in enumerate(keys) if k in results]
            if out_dir is not None and rows:
                _write_tables(out_dir, rows, list(checked_space))
            where = f"journalled in {out_dir / JOURNAL_NAME}" if out_dir is not None else "lost (no out_dir)"
            raise SearchIncomplete(
                f"{exc}: {len(rows)} of {len(keys)} trials finished and {where}; run the same search "
                "again to run the remaining ones", len(rows), len(keys)) from exc

    rows = [_row(i, key, results[key]) for i, key in enumerate(keys)]
    best_row = min(rows, key=_rank_key)
    best_params = params_of[best_row["key"]]

    # The best configuration again, here, on the same split, seed and thread count: the trial's network.
    with _limited_threads(best_row["threads"]):
        net, refit = _train(best_params, split, settings)
    test_part = _test_part(test)
    # The test set's one use: the chosen network, after every choice has been made.
    test_accuracy = _accuracy_and_loss(net, *test_part)[0] if test_part is not None else None
    best = {
        "key": best_row["key"], "trial": best_row["trial"], "params": best_params,
        "val_accuracy": best_row["val_accuracy"], "val_loss": best_row["val_loss"],
        "refit_val_accuracy": refit["val_accuracy"], "test_accuracy": test_accuracy,
        "dataset": data_name, "n_train": int(len(split[1])), "n_validation": int(len(split[3])),
        "n_test": None if test_part is None else int(len(test_part[1])),
        "method": method, "space": _jsonable_space(checked_space), "n_trials": len(rows), "seed": seed,
        "validation_fraction": validation_fraction, "backend": backend, "dtype": np.dtype(dtype).name,
        "mlp_version": __version__,
    }
    if out_dir is not None:
        _write_tables(out_dir, rows, list(checked_space))
        _write_text(out_dir / "best.json", json.dumps(best, indent=1, allow_nan=False) + "\n")
        save_model(net, out_dir / "best_model.npz", metadata={"search_best": best})
        if plot:
            _plot(out_dir / "search.png", rows, list(checked_space), best_row)
    return SearchResult(trials=rows, best=best_row, best_params=best_params, test_accuracy=test_accuracy,
                        refit_val_accuracy=refit["val_accuracy"], best_model=net,
                        n_trained=len(todo), n_resumed=n_resumed,
                        seconds=time.perf_counter() - started, out_dir=out_dir)


def _row(index, key, record):
    row = {"trial": index, "key": key}
    row.update(record["params"])
    row.update({m: record.get(m) for m in _METRICS})
    return row


# --------------------------------------------------------------------------- #
# mlp search
# --------------------------------------------------------------------------- #
# One parser per kind of number for every subcommand: the CLI's.
_cli_number = cli._float
_cli_int = cli._positive_int
_cli_seed = cli._non_negative_int


def _cli_candidate(text):
    """'1e-4' (one value), '1e-4,0' (one per layer), 'log:1e-6:1e-2' or 'uniform:0.5:1' (random search)."""
    kind, _, rest = text.partition(":")
    if rest:
        bounds = rest.split(":")
        if kind not in ("log", "uniform") or len(bounds) != 2:
            raise argparse.ArgumentTypeError(
                f"expected a number, numbers joined by commas (one per layer), log:LOW:HIGH or "
                f"uniform:LOW:HIGH; got {text!r}")
        low, high = (_cli_number(b) for b in bounds)
        try:
            return (LogUniform if kind == "log" else Uniform)(low, high)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if "," in text:
        return tuple(_cli_number(t) for t in text.split(","))
    return _cli_number(text)


def _cli_hidden(text):
    """'256', '512-256' or '512,256' (two hidden layers), 'none' (no hidden layer)."""
    if text.strip().lower() == "none":
        return ()
    return tuple(_cli_int(t) for t in text.replace(",", "-").split("-"))


def _cli_fraction(text):
    value = _cli_number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1); got {value}")
    return value


def add_cli_arguments(parser):
    """Add the options of ``mlp search`` to ``parser`` (an ``argparse.ArgumentParser``).

    Each option of the space takes one or more candidates; one candidate fixes
    the value. Defaults not searched are those of ``mlp train``.
    """

    parser.description = (
        "Grid or random search of hyper-parameters, each trial trained on the training split and "
        "scored on a validation split of the training data; only the best configuration is "
        "evaluated on the test set. Finished trials are journalled in OUT/journal.jsonl: rerun "
        "the same command to resume. Writes trials.csv, trials.json, best.json, best_model.npz, "
        "search.png.")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=cli.DATASET_CHOICES, default="auto",
                      help="data set (default: auto = fashion-mnist when installed, else digits)")
    data.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                      help="directory of the IDX files of fashion-mnist or mnist")
    data.add_argument("--validation-fraction", type=_cli_fraction, default=cli.DEFAULT_VALIDATION_FRACTION,
                      metavar="F", help="part of the training data used for scoring (default: %(default)s)")

    space = parser.add_argument_group(
        "search space (one or more candidates each; 'A,B' = one value per layer; "
        "'log:LOW:HIGH' / 'uniform:LOW:HIGH' = a distribution, for --method random)")
    space.add_argument("--hidden", type=_cli_hidden, nargs="+", default=[tuple(cli.DEFAULT_HIDDEN)],
                       metavar="SIZES", help="hidden layers of one network, e.g. 256 512-256 none "
                                             f"(default: {'-'.join(map(str, cli.DEFAULT_HIDDEN))})")
    space.add_argument("--l2", type=_cli_candidate, nargs="+", default=[cli.DEFAULT_L2], metavar="A",
                       help="L2 strengths alpha(j) (default: %(default)s)")
    space.add_argument("--l1", type=_cli_candidate, nargs="+", default=[0.0], metavar="B",
                       help="L1 strengths beta(j) (default: %(default)s)")
    space.add_argument("--keep-prob-input", type=_cli_candidate, nargs="+", default=[cli.DEFAULT_KEEP_INPUT],
                       metavar="P", help="keep probability of the input layer (default: %(default)s)")
    space.add_argument("--keep-prob-hidden", type=_cli_candidate, nargs="+",
                       default=[cli.DEFAULT_KEEP_HIDDEN], metavar="P",
                       help="keep probability of every hidden layer (default: %(default)s)")
    space.add_argument("--lr", type=_cli_candidate, nargs="+", default=[cli.DEFAULT_LEARNING_RATE],
                       metavar="LR", help="learning rates (default: %(default)s)")
    space.add_argument("--momentum", type=_cli_candidate, nargs="+", default=[cli.DEFAULT_MOMENTUM],
                       metavar="M", help="momentum values (default: %(default)s)")
    space.add_argument("--lr-decay", type=_cli_candidate, nargs="+", default=[cli.DEFAULT_LR_DECAY],
                       metavar="D", help="learning-rate decays (default: %(default)s)")
    space.add_argument("--epochs", type=_cli_int, nargs="+", default=[cli.DEFAULT_EPOCHS], metavar="N",
                       help="epochs per trial (default: %(default)s)")
    space.add_argument("--batch-size", type=_cli_int, nargs="+", default=[cli.DEFAULT_BATCH_SIZE],
                       metavar="N", help="mini-batch sizes (default: %(default)s)")

    how = parser.add_argument_group("search")
    how.add_argument("--method", choices=METHODS, default="grid",
                     help="grid: every combination; random: --n-trials draws (default: %(default)s)")
    how.add_argument("--n-trials", type=_cli_int, default=None, metavar="N",
                     help="number of trials of a random search")
    how.add_argument("--jobs", type=_cli_int, default=1, metavar="N",
                     help="worker processes on this machine (default: %(default)s)")
    how.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                     help="run the trials on this Dask scheduler's cluster instead")
    how.add_argument("--threads-per-trial", type=_cli_int, default=None, metavar="N",
                     help="BLAS threads of each trial (default: all cores with --jobs 1, cores/N with "
                          "--jobs N, 1 on Dask); the same N everywhere gives bit-identical scores")
    how.add_argument("--backend", choices=cli.BACKEND_CHOICES, default="cpu",
                     help="kernels of every trial (default: %(default)s)")
    how.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                     help="floating-point type (default: %(default)s)")
    how.add_argument("--seed", type=_cli_seed, default=0,
                     help="seeds the split, the random draws and every trial (default: 0)")
    how.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="output directory; rerunning with the same DIR resumes "
                          "(default: runs/search-<dataset>-<timestamp>)")
    how.add_argument("--quiet", action="store_true", help="no progress bar or notices")


def _cli_space(args):
    return {
        "hidden": args.hidden, "l2": args.l2, "l1": args.l1,
        "keep_prob_input": args.keep_prob_input, "keep_prob_hidden": args.keep_prob_hidden,
        "learning_rate": args.lr, "momentum": args.momentum, "lr_decay": args.lr_decay,
        "epochs": args.epochs, "batch_size": args.batch_size,
    }


def _single_distribution(space):
    """argparse gives lists; a lone distribution stands for itself, not a list holding it."""
    out = {}
    for name, candidates in space.items():
        if any(isinstance(c, _DISTRIBUTIONS) for c in candidates):
            if len(candidates) != 1:
                raise ValueError(f"--{name.replace('_', '-')}: give one distribution or a list of numbers, "
                                 "not both")
            out[name] = candidates[0]
        else:
            out[name] = candidates
    return out


def run_cli(args):
    """Run ``mlp search`` with the parsed ``args``; returns the exit status.

    0: done; 1: incomplete (a worker died; rerun the same command to finish);
    2: bad arguments or data; 130: interrupted (finished trials are journalled).
    """

    def say(message):
        if not args.quiet:
            print(message, file=sys.stderr)

    try:
        dataset, notice = cli._load_data(args)
        space = _single_distribution(_cli_space(args))
    except (cli._UsageError, ValueError) as exc:
        print(f"mlp search: error: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE
    if notice:
        print(notice, file=sys.stderr)
    out = args.out if args.out is not None else cli._default_out(f"search-{dataset.name}")
    say(f"data: {dataset!r}")
    say(f"writing to {out} (rerun with --out {out} to resume)")

    bar = None
    if not args.quiet:
        from tqdm.auto import tqdm

        bar = tqdm(unit="trial", desc="search", file=sys.stderr, dynamic_ncols=True)

    def progress(row):
        bar.set_postfix({"val_acc": f"{row['val_accuracy']:.4f}"}, refresh=False)
        bar.update(1)

    try:
        result = search(dataset, space, method=args.method, n_trials=args.n_trials, seed=args.seed,
                        validation_fraction=args.validation_fraction, n_jobs=args.jobs,
                        scheduler=args.scheduler, threads_per_trial=args.threads_per_trial, out_dir=out, backend=args.backend, dtype=args.dtype,
                        callback=progress if bar is not None else None)
    except SearchIncomplete as exc:
        print(f"mlp search: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mlp search: interrupted; finished trials are in {out / JOURNAL_NAME}: rerun the "
              "same command to resume", file=sys.stderr)
        return cli.EXIT_INTERRUPTED
    except (ValueError, TypeError, ImportError) as exc:
        print(f"mlp search: error: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE
    except OSError as exc:
        if args.scheduler is None:
            raise
        print(f"mlp search: error: cannot use the Dask scheduler at {args.scheduler}: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE
    finally:
        if bar is not None:
            bar.close()
    best = result.best
    print(f"{len(result.trials)} trials ({result.n_trained} trained now, {result.n_resumed} from the journal) "
          f"in {result.seconds:.1f} s")
    print(f"best: {json.dumps(result.best_params)}")
    print(f"validation accuracy: {best['val_accuracy']:.4f}")
    if result.test_accuracy is not None:
        print(f"test accuracy (best configuration only): {result.test_accuracy:.4f}")
    print(f"wrote {out}/trials.csv, trials.json, best.json, best_model.npz, search.png")
    return cli.EXIT_OK
