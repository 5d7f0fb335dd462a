"""Where the trials run: one after another here, in joblib worker processes, or on a Dask cluster.

:func:`finished_trials` picks the runner and yields ``(key, result)`` as each
trial finishes, in whatever order they finish. joblib and Dask are imported
only when asked for. A worker that dies stops a joblib search, and Dask
giving up on a trial stops a Dask one, with :class:`WorkerDied`; the driver
turns that into :class:`SearchIncomplete`.
"""
import contextlib
import hashlib
import os
import time

from ..threads import usable_cores
from .trials import keyed_trial, run_trial

#: How to install what parallel and distributed searches need.
PARALLEL_EXTRA_HINT = "pip install 'numba-mlp[dask]'"


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


class WorkerDied(Exception):
    """A worker process died (joblib) or Dask gave up on a trial; ``keys``: the trials that were sent."""

    def __init__(self, message, keys):
        super().__init__(message)
        self.keys = keys


@contextlib.contextmanager
def finished_trials(todo, split, settings, *, n_jobs=1, client=None, scheduler=None, threads_per_trial=None):
    """Run the ``todo`` list of ``(key, params)``; yields an iterator of ``(key, result)``.

    On a Dask ``client``, or on the cluster at the ``scheduler`` address
    (connected for the duration of the block): each trial a task, BLAS on
    ``threads_per_trial or 1`` threads. With ``n_jobs > 1`` and more than one
    trial: that many joblib workers at most, each with ``threads_per_trial``
    or its share of the cores. Otherwise one after another in this process.
    """
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            client = stack.enter_context(_dask_distributed().Client(scheduler))
        if client is not None:
            yield _run_dask(todo, split, settings, client, threads_per_trial or 1)
        elif n_jobs > 1 and len(todo) > 1:
            n_workers = min(n_jobs, len(todo))
            yield _run_joblib(todo, split, settings, n_workers,
                              threads_per_trial or max(1, usable_cores() // n_workers))
        else:
            yield _run_sequential(todo, split, settings, threads_per_trial)


def _run_sequential(todo, split, settings, threads):
    for key, params in todo:
        yield key, run_trial(params, split, settings, threads)


def _run_joblib(todo, split, settings, n_jobs, threads):
    try:
        from joblib import Parallel, delayed
    except ImportError:
        raise ImportError(f"n_jobs > 1 needs joblib and threadpoolctl: {PARALLEL_EXTRA_HINT}") from None
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    keys = [key for key, _ in todo]
    tasks = (delayed(keyed_trial)(key, params, split, settings, threads) for key, params in todo)
    try:
        yield from Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")(tasks)
    except TerminatedWorkerError as exc:
        raise WorkerDied(f"a joblib worker process died ({exc.__class__.__name__})", keys) from exc


def _dask_distributed():
    """The ``dask.distributed`` module, or an ImportError that says how to install it."""
    try:
        import dask.distributed
    except ImportError:
        raise ImportError(f"searching on a Dask cluster needs dask.distributed: {PARALLEL_EXTRA_HINT}") from None
    return dask.distributed


def _run_dask(todo, split, settings, client, threads):
    distributed = _dask_distributed()
    if not todo:
        return
    [split_future] = client.scatter([split], broadcast=True, hash=False)
    # Task names unique to this call: a rerun must not pick up an old search's (cancelled) futures.
    run_id = hashlib.sha256(f"{time.time_ns()}-{os.getpid()}".encode()).hexdigest()[:8]
    futures = [client.submit(keyed_trial, key, params, split_future, settings, threads,
                             key=f"mlp-trial-{key}-{run_id}", pure=False)
               for key, params in todo]
    try:
        for future in distributed.as_completed(futures):
            try:
                yield future.result()
            except distributed.KilledWorker as exc:
                raise WorkerDied(f"Dask gave up on a trial whose workers kept dying ({exc})",
                                 [key for key, _ in todo]) from exc
    finally:
        client.cancel(futures + [split_future])
