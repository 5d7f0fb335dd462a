"""Where the trials run: one after another here, in joblib worker processes, or on a Dask cluster.

:func:`finished_trials` picks the runner and yields ``(key, result)`` as each
trial finishes, in whatever order they finish. joblib and Dask are imported
only when asked for.

A joblib worker that dies stops the search with :class:`WorkerDied` (the
driver turns it into :class:`SearchIncomplete`); the workers exit soon after
the search's own process is gone (:mod:`mlp.search.watchdog`).

A Dask search survives the loss of any worker, the ones holding the data
included. The split is scattered to every worker; the scheduler reruns
elsewhere a trial whose worker died, but scattered data cannot be
recomputed: when its last holder dies, every unfinished trial's future is
cancelled ("already forgotten"). The search then waits up to
``worker_timeout`` seconds for a worker, scatters the split again and
resubmits the trials that have not finished, in rounds; a finished trial is
never run again (its future is released as soon as its result is here, so
the scheduler does not recompute it either). It stops with
:class:`WorkerDied` when no worker has come for ``worker_timeout`` seconds,
or after ``MAX_FRUITLESS_ROUNDS`` rounds in a row were lost without a trial
finishing (a trial that kills every worker it runs on).
"""
import concurrent.futures
import contextlib
import hashlib
import itertools
import os
import time

from ..defaults import SEARCH
from ..threads import usable_cores
from .trials import keyed_trial, run_trial

#: How to install what parallel and distributed searches need.
PARALLEL_EXTRA_HINT = "pip install 'numba-mlp[dask]'"
#: Dask rounds in a row that may end in lost workers without any trial finishing.
MAX_FRUITLESS_ROUNDS = 3


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
    """A joblib worker died, no Dask worker is left, or Dask workers kept dying: the search cannot go on."""


@contextlib.contextmanager
def finished_trials(todo, split, settings, *, n_jobs=1, client=None, scheduler=None, threads_per_trial=None,
                    worker_timeout=SEARCH["worker_timeout"]):
    """Run the ``todo`` list of ``(key, params)``; yields an iterator of ``(key, result)``.

    On a Dask ``client``, or on the cluster at the ``scheduler`` address
    (connected for the duration of the block; an address that cannot be
    reached is an OSError naming it): each trial a task, BLAS on
    ``threads_per_trial or 1`` threads, waiting up to ``worker_timeout``
    seconds for a worker whenever none is left. With ``n_jobs > 1`` and more
    than one trial: that many joblib workers at most, each with
    ``threads_per_trial`` or its share of the cores. Otherwise one after
    another in this process.
    """
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            client = stack.enter_context(_connected(scheduler))
        if client is not None:
            yield _run_dask(todo, split, settings, client, threads_per_trial or 1, worker_timeout)
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

    # The workers get this process's pid: each exits soon after this process is gone, however it went.
    tasks = (delayed(keyed_trial)(key, params, split, settings, threads, os.getpid()) for key, params in todo)
    try:
        yield from Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")(tasks)
    except TerminatedWorkerError as exc:
        raise WorkerDied(f"a joblib worker process died ({exc.__class__.__name__})") from exc


def _dask_distributed():
    """The ``dask.distributed`` module, or an ImportError that says how to install it."""
    try:
        import dask.distributed
    except ImportError:
        raise ImportError(f"searching on a Dask cluster needs dask.distributed: {PARALLEL_EXTRA_HINT}") from None
    return dask.distributed


def _connected(scheduler):
    """A ``dask.distributed.Client`` of the scheduler at this address; an OSError that names it when unreachable."""
    distributed = _dask_distributed()
    try:
        return distributed.Client(scheduler)
    except OSError as exc:
        raise OSError(f"cannot use the Dask scheduler at {scheduler}: {exc}") from None


def _run_dask(todo, split, settings, client, threads, worker_timeout):
    """Yield ``(key, result)`` of every trial of ``todo`` on the ``client``'s cluster, in rounds (module docstring)."""
    pending = dict(todo)
    # Task names unique to this call: a rerun must not pick up an old search's (cancelled) futures.
    run_id = hashlib.sha256(f"{time.time_ns()}-{os.getpid()}".encode()).hexdigest()[:8]
    fruitless = 0  # rounds in a row that finished no trial: each round finishes one or adds one here
    for round_number in itertools.count():
        if not pending:
            return
        _wait_for_a_worker(client, worker_timeout)
        n_pending = len(pending)
        lost = yield from _dask_round(client, pending, split, settings, threads, f"{run_id}-{round_number}")
        fruitless = fruitless + 1 if len(pending) == n_pending else 0
        if fruitless >= MAX_FRUITLESS_ROUNDS:
            raise WorkerDied(f"the Dask workers at {client.scheduler.address} were lost {fruitless} times in a "
                             f"row without a trial finishing (a trial that kills its worker, e.g. out of "
                             f"memory?); last: {lost.__class__.__name__}: {lost}") from lost


def _wait_for_a_worker(client, timeout):
    """Return once the cluster has a running worker; WorkerDied when none came within ``timeout`` seconds."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise WorkerDied(f"no Dask worker left at {client.scheduler.address} for {timeout:g} s") from None


def _dask_round(client, pending, split, settings, threads, round_id):
    """Scatter the split, run every ``pending`` trial once; yield each result, popping its key from ``pending``.

    Returns the exception of a lost worker or of lost data (None when every
    trial finished): the trials it took stay in ``pending`` for the next round.
    """
    distributed = _dask_distributed()
    # Errors of a future that say where it ran was lost, not that its trial failed; FutureCancelledError
    # ("already forgotten": the split it needs is lost) is a CancelledError.
    lost_errors = (concurrent.futures.CancelledError, distributed.KilledWorker, distributed.comm.CommClosedError)
    try:
        [split_future] = client.scatter([split], broadcast=True, hash=False)
    except OSError as exc:  # the worker died while receiving it; CommClosedError and TimeoutError are OSErrors
        return exc
    futures = {client.submit(keyed_trial, key, params, split_future, settings, threads,
                             key=f"mlp-trial-{key}-{round_id}", pure=False)
               for key, params in pending.items()}
    lost = None
    try:
        for future in distributed.as_completed(list(futures)):
            try:
                key, result = future.result()
            except lost_errors as exc:
                lost = exc
                continue
            finally:
                # Released at once: a finished trial whose worker dies later must not be recomputed.
                futures.discard(future)
                future.release()
            del pending[key]
            yield key, result
    finally:
        client.cancel(list(futures) + [split_future])
    return lost
