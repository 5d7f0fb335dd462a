"""``search()``: check the arguments, plan the trials, resume from the journal, run the rest, keep the best.

The steps, in order: ``_checked_arguments``; ``_plan`` (the space's
configurations, the data split, every trial's key); ``_claimed`` (the output
directory locked for the rest of the search, its files checked writable, the
journal opened); ``_resumed`` (the trials the journal already holds);
``_run_and_journal`` (the others, each result journalled as it arrives);
``_write_trials``; ``_refit_best`` (the best configuration retrained here
and, once, scored on the test set); ``_write_best``.
"""
import contextlib
import dataclasses
import datetime as _dt
import json
import time
from pathlib import Path

import numpy as np

import kernels

from .. import checks
from .._version import __version__
from ..defaults import SEARCH
from ..files import check_writable, write_text
from ..persistence import save_model
from ..threads import limited_threads
from .data import search_data
from .journal import JOURNAL_FORMAT, JOURNAL_NAME, Journal
from .lock import locked_directory
from .results import SearchResult, plot_trials, rank_key, trial_row, write_tables
from .runners import SearchIncomplete, WorkerDied, finished_trials
from .space import METHODS, check_space, configurations, jsonable_space, trial_key
from .trials import accuracy_and_loss, network_and_config, train_trial


def search(data, space, *, method=SEARCH["method"], n_trials=None, seed=SEARCH["seed"],
           validation_fraction=SEARCH["validation_fraction"], n_jobs=SEARCH["n_jobs"], client=None,
           scheduler=None, threads_per_trial=None, out_dir=None, backend=SEARCH["backend"],
           dtype=SEARCH["dtype"], plot=True, callback=None, worker_timeout=SEARCH["worker_timeout"]):
    """Search hyper-parameters on a validation split; evaluate only the best on the test set.

    Parameters
    ----------
    data : Dataset, str, (X_train, y_train) or (X_train, y_train, X_test, y_test)
        A :class:`mlp.datasets.Dataset` (or any object with ``X_train``,
        ``y_train``, ``n_classes`` and, for the final test, ``X_test``,
        ``y_test``), a name for :func:`mlp.datasets.load_dataset`, or arrays
        (integer class labels). Without a test part, no test accuracy.
    space : dict
        Parameter name -> candidates (see :mod:`mlp.search`).
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
    worker_timeout : float > 0
        On Dask: seconds to wait for a worker whenever the cluster has none
        (at the start, or after the last one died) before stopping with
        :class:`SearchIncomplete`. A lost worker, the ones holding the data
        included, is otherwise survived: the data are scattered again and
        the unfinished trials resubmitted.
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
        None: nothing is written and nothing resumed. Locked for the whole
        search: one search at a time per directory.
    backend : str
        Kernels of every trial (``"cpu"``, ``"numpy"``, ``"cuda"``, ``"auto"``).
    dtype : float32 or float64
    plot : bool
        Draw ``search.png`` (needs matplotlib) when ``out_dir`` is given.
    callback : callable(row) or None
        Called in this process with each trial's row: first those resumed from
        the journal (``row["resumed"]`` True), then each as it finishes (after
        it is journalled): progress reporting.

    Returns
    -------
    SearchResult

    Raises
    ------
    SearchIncomplete
        A worker process died (joblib), no Dask worker was left for
        ``worker_timeout`` seconds, or Dask workers kept dying; the journal
        keeps every finished trial: run the same search again to finish it.
    mlp.search.DirectoryLocked
        Another search holds ``out_dir`` (the message names it).
    OSError
        ``out_dir``, its journal or one of its result files cannot be
        written (found before any trial runs), or the Dask ``scheduler``
        cannot be reached.
    ValueError, TypeError
        A bad space or argument, named in the message.
    ImportError
        ``n_jobs > 1`` without joblib, or a Dask cluster without dask.distributed.
    """
    started = time.perf_counter()
    method, seed, dtype, backend = _checked_arguments(method, seed, n_jobs, client, scheduler, threads_per_trial,
                                                      callback, dtype, backend, worker_timeout)
    plan = _plan(data, space, method, n_trials, seed, validation_fraction, dtype, backend)
    out_dir = None if out_dir is None else Path(out_dir)
    with contextlib.ExitStack() as stack:
        journal = None if out_dir is None else stack.enter_context(_claimed(out_dir, plot))
        results = _resumed(plan, journal)
        n_resumed = len(results)
        if callback is not None:  # a resumed trial is done: progress counts it first
            for i, key in enumerate(plan.keys):
                if key in results:
                    callback(trial_row(i, key, results[key]))
        todo = [(key, plan.params_of[key]) for key in dict.fromkeys(plan.keys) if key not in results]
        _run_and_journal(plan, todo, results, journal, callback, n_jobs=n_jobs, client=client,
                         scheduler=scheduler, threads_per_trial=threads_per_trial, worker_timeout=worker_timeout)

        rows = [trial_row(i, key, results[key]) for i, key in enumerate(plan.keys)]
        best_row = min(rows, key=rank_key)
        if out_dir is not None:  # before the refit: an interrupted refit leaves every trial's files whole
            _write_trials(out_dir, plan, rows, best_row, plot)
        net, best = _refit_best(plan, best_row)
        if out_dir is not None:
            _write_best(out_dir, plan, best, net)
    return SearchResult(trials=rows, best=best_row, best_params=best["params"],
                        test_accuracy=best["test_accuracy"], refit_val_accuracy=best["refit_val_accuracy"],
                        best_model=net, n_trained=len(todo), n_resumed=n_resumed,
                        seconds=time.perf_counter() - started, out_dir=out_dir)


@dataclasses.dataclass
class _Plan:
    """Every trial of a search, before any runs: what each trains on and the key it is journalled under."""

    method: str
    seed: int
    validation_fraction: float
    space: dict           # checked: name -> canonical candidates or a distribution
    keys: list            # one per configuration, in the search's order
    params_of: dict       # key -> the configuration's parameters
    data: object          # SearchData
    context: dict         # what besides the parameters makes a trial: part of its key and its record
    settings: dict        # what a worker needs to build the network


def _checked_arguments(method, seed, n_jobs, client, scheduler, threads_per_trial, callback, dtype, backend,
                       worker_timeout):
    """(method, seed, dtype, backend name) in canonical form, once every argument is checked."""
    method = checks.check_choice("method", method, METHODS)
    seed = checks.check_seed("seed", seed)
    checks.check_int("n_jobs", n_jobs, minimum=1)
    if client is not None and scheduler is not None:
        raise ValueError("give either client or scheduler, not both")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address string like 'tcp://host:8786'; got {scheduler!r}")
    if threads_per_trial is not None:
        checks.check_int("threads_per_trial", threads_per_trial, minimum=1)
    checks.check_callable("callback", callback)
    checks.check_real("worker_timeout", worker_timeout, low=0, low_open=True)
    dtype = checks.check_dtype(dtype)
    backend = kernels.resolve_backend_name(backend)
    kernels.get_backend(backend)
    return method, seed, dtype, backend


def _plan(data, space, method, n_trials, seed, validation_fraction, dtype, backend):
    """The checked space's configurations on the split data, each with its key; every one checked."""
    checked_space = check_space(space, method)
    # A warning about the space points at search()'s caller: 1 is this function, 2 search().
    params = configurations(checked_space, method, n_trials, seed, stacklevel=3)
    data = search_data(data, validation_fraction, seed)
    for p in params:
        network_and_config(p, data.n_features, data.n_classes, seed)
    context = {"data": data.fingerprint, "validation_fraction": float(validation_fraction), "seed": int(seed),
               "dtype": np.dtype(dtype).name}
    settings = {"n_features": data.n_features, "n_classes": data.n_classes, "seed": int(seed),
                "dtype": np.dtype(dtype).name, "backend": backend}
    keys = [trial_key(p, context) for p in params]
    return _Plan(method=method, seed=seed, validation_fraction=validation_fraction, space=checked_space,
                 keys=keys, params_of=dict(zip(keys, params)), data=data, context=context, settings=settings)


@contextlib.contextmanager
def _claimed(out_dir, plot):
    """The opened journal of ``out_dir``, with the directory locked and its result files found writable."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with locked_directory(out_dir):
        # Found now, not after the last trial: a result file that cannot be written (a directory of that name,
        # a read-only file system) would only be found when the search is over.
        for name in ("trials.csv", "trials.json", "best_model.npz", "best.json") + (("search.png",) if plot else ()):
            check_writable(out_dir / name, "the search's output")
        with Journal(out_dir / JOURNAL_NAME) as journal:
            yield journal


def _resumed(plan, journal):
    """{key: record} of the plan's trials that the ``journal`` holds (none without one).

    A record keeps the plan's own parameters: its key is their hash.
    """
    if journal is None:
        return {}
    return {k: dict(journal.records[k], params=plan.params_of[k], resumed=True)
            for k in plan.keys if k in journal.records}


def _run_and_journal(plan, todo, results, journal, callback, **where):
    """Run the ``todo`` trials (``where``: see ``finished_trials``), journalling each result as it arrives.

    ``results`` (key -> record) gains each finished trial. A dead worker ends
    the search with SearchIncomplete, after writing the tables of the trials
    done so far.
    """
    index_of = {key: i for i, key in enumerate(plan.keys)}
    try:
        with finished_trials(todo, plan.data.split, plan.settings, **where) as stream:
            for key, result in stream:
                record = {"format": JOURNAL_FORMAT, "key": key, "params": plan.params_of[key],
                          "context": plan.context, **result,
                          "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
                if journal is not None:
                    journal.append(record)
                results[key] = dict(record, resumed=False)
                if callback is not None:
                    callback(trial_row(index_of[key], key, results[key]))
    except WorkerDied as exc:
        rows = [trial_row(i, k, results[k]) for i, k in enumerate(plan.keys) if k in results]
        if journal is not None and rows:
            write_tables(journal.path.parent, rows, list(plan.space))
        kept = f"journalled in {journal.path}" if journal is not None else "lost (no out_dir)"
        raise SearchIncomplete(
            f"{exc}: {len(rows)} of {len(plan.keys)} trials finished and {kept}; run the same search "
            "again to run the remaining ones", len(rows), len(plan.keys)) from exc


def _refit_best(plan, best_row):
    """(network, best.json's dict): the best configuration trained again here, then scored on the test set."""
    best_params = plan.params_of[best_row["key"]]
    # The same split, seed and thread count as its trial: the trial's network.
    with limited_threads(best_row["threads"]):
        net, refit = train_trial(best_params, plan.data.split, plan.settings)
    test_part = plan.data.test_arrays()
    # The test set's one use: the chosen network, after every choice has been made.
    test_accuracy = accuracy_and_loss(net, *test_part)[0] if test_part is not None else None
    split = plan.data.split
    best = {
        "key": best_row["key"], "trial": best_row["trial"], "params": best_params,
        "val_accuracy": best_row["val_accuracy"], "val_loss": best_row["val_loss"],
        "refit_val_accuracy": refit["val_accuracy"], "test_accuracy": test_accuracy,
        "dataset": plan.data.name, "n_train": int(len(split[1])), "n_validation": int(len(split[3])),
        "n_test": None if test_part is None else int(len(test_part[1])),
        "method": plan.method, "space": jsonable_space(plan.space), "n_trials": len(plan.keys),
        "seed": plan.seed,
        "validation_fraction": plan.validation_fraction, "backend": plan.settings["backend"],
        "dtype": plan.settings["dtype"], "mlp_version": __version__,
    }
    return net, best


def _write_trials(out_dir, plan, rows, best_row, plot):
    """trials.csv, trials.json and (with ``plot``) search.png: every trial's results."""
    names = list(plan.space)
    write_tables(out_dir, rows, names)
    if plot:
        plot_trials(out_dir / "search.png", rows, names, best_row)


def _write_best(out_dir, plan, best, net):
    """best_model.npz, then best.json: written last, its presence says the search finished."""
    metadata = {**net.metadata, "dataset": plan.data.name, "search_best": best}
    if plan.data.class_names is not None:
        metadata["class_names"] = list(plan.data.class_names)
    save_model(net, out_dir / "best_model.npz", metadata=metadata)
    write_text(out_dir / "best.json", json.dumps(best, indent=1, allow_nan=False) + "\n")
