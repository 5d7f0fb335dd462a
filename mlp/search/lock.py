"""One search at a time per output directory: an exclusive lock held from the journal's reading to ``best.json``.

Two searches on one ``out_dir`` would run every trial twice and overwrite
each other's files. :func:`locked_directory` takes ``flock(LOCK_EX)`` on
``out_dir/.mlp-search.lock`` without waiting: a second search fails at once
with :class:`DirectoryLocked`, which names the holder (pid, host, start time,
command) that the lock file records while it is held.

The kernel drops the lock when its process ends, however it ends (SIGKILL
included), so a killed search leaves no stale lock: at most the lock file,
which the next search takes over. A search that ends normally removes the
file. The descriptor is not inherited by the processes a search starts
(Python opens files non-inheritable), so a worker that outlives its search
does not hold the lock. POSIX only (``fcntl``), as ``flock`` is; on NFS,
Linux emulates it with byte-range locks that the server keeps.
"""
import contextlib
import datetime as _dt
import fcntl
import json
import os
import platform
import sys

LOCK_NAME = ".mlp-search.lock"
# A holder that finishes between our open() and flock() has removed the file we locked: open it again.
_ATTEMPTS = 10
# The most of a lock file read for its holder's record (a command line is far shorter).
_HOLDER_BYTES = 65536


class DirectoryLocked(RuntimeError):
    """Another search holds the lock of this output directory.

    Attributes
    ----------
    holder : dict
        What the lock file says of the search that holds it (``pid``,
        ``host``, ``started``, ``command``); empty if it has not written it yet.
    """

    def __init__(self, message, holder):
        super().__init__(message)
        self.holder = holder


@contextlib.contextmanager
def locked_directory(out_dir):
    """Hold the lock of the directory ``out_dir`` (a Path, which exists) for the ``with`` block.

    Yields the holder record written into the lock file. Raises
    :class:`DirectoryLocked` at once when another search holds it.
    """
    path = out_dir / LOCK_NAME
    fd = _locked_descriptor(path)
    try:
        holder = {"pid": os.getpid(), "host": platform.node(),
                  "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                  "command": " ".join(sys.argv)}
        os.write(fd, json.dumps(holder).encode("utf-8"))
        yield holder
    finally:
        # Removed while still locked: a search that opened the old file finds it replaced and opens again.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _locked_descriptor(path):
    """A descriptor of the empty lock file ``path``, locked; DirectoryLocked when another holds it."""
    for _ in range(_ATTEMPTS):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DirectoryLocked(f"{path.parent} is in use by another search ({_describe(holder)}): wait for "
                                  "it to finish, stop it, or give another output directory", holder) from None
        except BaseException:
            os.close(fd)
            raise
        if _is_current(fd, path):
            os.ftruncate(fd, 0)
            return fd
        os.close(fd)
    raise DirectoryLocked(f"{path.parent}: could not lock {path} in {_ATTEMPTS} attempts (other searches keep "
                          "starting and ending there)", {})


def _is_current(fd, path):
    """Whether ``fd`` is still the file at ``path`` (its holder may have removed it before we locked it)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _holder(fd):
    """The holder record in the lock file, {} when unreadable (the holder is between locking and writing it)."""
    try:
        record = json.loads(os.pread(fd, _HOLDER_BYTES, 0))
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _describe(holder):
    if not holder:
        return "it has not yet written who it is"
    return (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}, "
            f"command: {holder.get('command')}")
