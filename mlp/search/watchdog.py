"""A search's worker process exits soon after the search's process is gone, however it went.

joblib's loky workers wait for their next task after their parent dies (and
finish the trial they are running first): a SIGKILLed search left its two
workers, about 170 MB each, alive for 85 s and more. :func:`exit_with_parent`
starts, once per worker process, a daemon thread that checks every
``POLL_SECONDS`` whether the process's parent is still the search's process
and ends the worker (``os._exit``) as soon as it is not: the kernel reparents
an orphan, so ``os.getppid()`` changes the moment the parent dies.

A polling thread rather than Linux's ``PR_SET_PDEATHSIG``: that signal fires
when the *thread* that started the worker ends, which in loky need not be the
search's main thread, and it does not exist on macOS. The thread needs the
GIL, which a trial hands over between its kernel calls (its loop over
mini-batches is Python).

Only joblib workers are watched: a Dask worker's parent may come and go (a
``dask worker`` started from a shell that then exits) without the worker
being orphaned in any sense that matters to its cluster.
"""
import os
import threading
import time

#: Seconds between two checks of the parent: how long an orphaned worker lives at most, plus its exit.
POLL_SECONDS = 0.25
#: The exit status of a worker that ends because its search is gone.
ORPHAN_EXIT_STATUS = 70

_watched = set()
_lock = threading.Lock()


def exit_with_parent(parent_pid):
    """Exit this process (``os._exit``) within ``POLL_SECONDS`` once its parent is not ``parent_pid``.

    Call it in the worker process; the first call starts the watching thread,
    later calls with the same pid do nothing. If the parent is already gone,
    the process exits at once.
    """
    with _lock:
        if parent_pid in _watched:
            return
        _watched.add(parent_pid)
    thread = threading.Thread(target=_watch, args=(parent_pid,), name=f"mlp-search-watchdog-{parent_pid}",
                              daemon=True)
    thread.start()


def _watch(parent_pid):
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(ORPHAN_EXIT_STATUS)
