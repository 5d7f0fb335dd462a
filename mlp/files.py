"""Files written atomically (a reader never sees half a file, an interrupted write leaves the old one), read safely.

Every file the library writes (models, checkpoints, histories, summaries,
search tables, figures) goes through ``atomic_write``: the bytes go to a
temporary file in the destination's directory, which is flushed and fsynced,
then renamed over the destination, and the directory is fsynced so that the
rename itself survives a crash.

Permissions are those an ordinary ``open(path, "w")`` gives:

- a new file gets ``0o666 & ~umask`` (or what the directory's default ACL
  says). The temporary file is created by ``os.open(..., 0o666)`` under a
  fresh random name, so the kernel applies the umask itself: no process-wide
  ``os.umask`` change that another thread could observe. (``tempfile.mkstemp``
  would make every file readable by its owner only.)
- a file that already exists keeps its permission bits, as ``open(path, "w")``
  on it would and as ``sed -i``, Vim and Emacs do when they replace a file:
  re-saving a model someone made private must not make it readable by others.
  The setuid, setgid and sticky bits are not carried over, nor the owner,
  group or ACLs (only root could give a file back to another owner).

Temporary files are named ``.<name>.<writer>.<16 hex digits>.tmp``, at most
``NAME_MAX`` bytes (the copy of the destination's name is shortened). A
process killed during a write (SIGKILL, the OOM killer, a power cut) leaves
its temporary file behind; the next ``atomic_write`` of the same destination
removes those whose writer is gone. ``<writer>`` is ``<host>-<pid>``: a tag
of this machine (host name, boot and PID namespace) and the writer's process
id, so that a file written here by a process that no longer exists is removed
at once. Any other (another machine's sharing the directory, one named before
the writer was part of the name, one whose pid a new process has taken) is
removed once it has not been modified for ``STALE_AFTER_S`` seconds. The
temporary file of a live writer is never removed before then, this process's
own included (another thread).

Files are read only when they are regular files (``open_regular``): a FIFO
or a device given as a model or data file would block a reader forever, or
yield endless bytes (``/dev/zero``).
"""
import functools
import hashlib
import json
import math
import os
import re
import secrets
import socket
import stat
import time
from pathlib import Path

import numpy as np

# The longest file name most file systems (ext4, XFS, Btrfs, APFS, NTFS) accept, in bytes.
NAME_MAX = 255
# 64 random bits per temporary name: two writers of one file never pick the same name.
TOKEN_BYTES = 8
# Fresh names tried before giving up, as ``tempfile`` does; a taken name is another writer's temporary file.
NAME_ATTEMPTS = 100
# O_EXCL: never open an existing file (nor follow a planted symlink); O_BINARY: no newline translation on Windows.
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
# A day: a temporary file whose writer cannot be asked and that nobody has written for that long is stale
# (a write takes seconds; a writer stopped for longer finds its file gone and fails, leaving the destination).
STALE_AFTER_S = 86400
# What follows ``.<name>.`` in a temporary name: the writer (host tag, pid; both 8 hex digits), then the token.
_TEMPORARY_TAIL = re.compile(r"(?:([0-9a-f]{8})-([0-9a-f]{8})\.)?[0-9a-f]{16}\.tmp")
# Bytes of a temporary name besides the destination's: "." + "." + writer (17) + "." + token (16) + ".tmp".
_NAME_OVERHEAD = 1 + 1 + 17 + 1 + 2 * TOKEN_BYTES + 4
# The same for the names written before the writer was part of them (".<name>.<token>.tmp").
_LEGACY_OVERHEAD = 1 + 1 + 2 * TOKEN_BYTES + 4


@functools.cache
def _host_tag():
    """8 hex digits telling this machine, boot and PID namespace: where a writer's pid can be looked up."""
    parts = [socket.gethostname()]
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            parts.append(f.read().decode("ascii", "replace").strip())
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass  # no /proc (macOS): the host name and the pid still tell a writer of this machine
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=4).hexdigest()


def _shortened(name, room):
    """``name`` cut (at a character boundary) to at most ``room`` bytes."""
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return name


def temporary_name(path):
    """A fresh hidden name next to ``path``: ``.<name>.<host>-<pid>.<16 hex digits>.tmp``, at most ``NAME_MAX`` bytes.

    The copy of the destination's name is shortened (at a character boundary)
    so that a destination whose own name is near the limit can still be written.
    """
    directory, name = os.path.split(path)
    name = _shortened(name, NAME_MAX - _NAME_OVERHEAD)
    return os.path.join(directory, f".{name}.{_host_tag()}-{os.getpid():08x}.{secrets.token_hex(TOKEN_BYTES)}.tmp")


def _writer_alive(pid):
    """Whether process ``pid`` of this machine exists (a zombie not yet waited for does)."""
    try:
        os.kill(pid, 0)  # signal 0: no signal, only the check
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _stale(entry, host, pid, now):
    """Whether the temporary file ``entry`` (a ``DirEntry``) of writer ``host``/``pid`` is abandoned."""
    # on Windows, os.kill(pid, 0) would send Ctrl-C: there only the age tells
    if host == _host_tag() and os.name == "posix" and not _writer_alive(int(pid, 16)):
        return True
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
    except FileNotFoundError:
        return False


def remove_stale_temporaries(path):
    """Remove the temporary files of ``path`` left by writers that are gone (see the module's docstring).

    Files that vanish or cannot be removed meanwhile are skipped: this cleaning never makes a write fail.
    """
    directory, name = os.path.split(os.fspath(path))
    # (prefix, whether names after it hold the writer); both prefixes are the same for a short name
    prefixes = [(f".{_shortened(name, NAME_MAX - _NAME_OVERHEAD)}.", True),
                (f".{_shortened(name, NAME_MAX - _LEGACY_OVERHEAD)}.", False)]
    now = time.time()
    try:
        entries = list(os.scandir(directory or "."))
    except OSError:
        return
    for entry in entries:
        for prefix, with_writer in prefixes:
            match = entry.name.startswith(prefix) and _TEMPORARY_TAIL.fullmatch(entry.name, len(prefix))
            if not match or (match.group(1) is not None) != with_writer:
                continue
            if _stale(entry, match.group(1), match.group(2), now):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass
            break


def _existing_mode(path):
    """The permission bits of the file at ``path``, None when there is none (a new file takes the umask's)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except FileNotFoundError:
        return None


def _create_temporary(path):
    """(fd, name) of a new empty file next to ``path``, created ``0o666 & ~umask`` as ``open(path, "w")`` would."""
    for _ in range(NAME_ATTEMPTS):
        tmp = temporary_name(path)
        try:
            return os.open(tmp, _CREATE_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path!r} after {NAME_ATTEMPTS} attempts")


def _fsync_directory(directory):
    """Make the rename durable; some platforms/filesystems cannot open a directory, which is harmless."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_destination(path, what):
    """Raise a clear OSError when ``path`` names no file that could be written: empty, a directory, in none."""
    if path == "":
        raise FileNotFoundError(f"{what} is an empty path")
    if os.path.isdir(path) or os.path.basename(path) in ("", ".", ".."):
        raise IsADirectoryError(f"{what} {path!r} is a directory, not a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{what} {path!r}: directory {directory!r} does not exist")


def atomic_write(path, write):
    """Call ``write(binary_file)`` on a temporary file next to ``path``, then rename it to ``path``.

    The temporary file is flushed and fsynced before ``os.replace``; on any
    exception (KeyboardInterrupt included) it is removed and ``path`` is untouched.
    A new file gets ``0o666 & ~umask``, a replaced one keeps its permission bits;
    the temporary files of ``path`` that killed writers left are removed first
    (see the module's docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The destination; its name may be up to ``NAME_MAX`` bytes long.
    write : callable(binary_file)
        Writes the whole content.

    Raises
    ------
    FileNotFoundError
        ``path`` is empty, or its directory does not exist; nothing is created.
    IsADirectoryError
        ``path`` is a directory (or ends with a separator); nothing is created.
    """
    path = os.fspath(path)
    _check_destination(path, "the destination")
    directory = os.path.dirname(os.path.abspath(path))
    mode = _existing_mode(path)
    remove_stale_temporaries(path)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.chmod(f.fileno() if os.chmod in os.supports_fd else tmp, mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def check_writable(path, what="file"):
    """Raise a clear OSError now when ``path`` could not be written by ``atomic_write`` later.

    Called before work whose result would otherwise be lost at the end (a
    training run, a search): ``path`` must not be empty nor a directory, its
    directory must exist and be a directory, and a temporary file must be
    creatable there (a probe created and removed at once, so that a read-only
    file system or a full disk's missing inode is found as well as a missing
    permission). ``what`` names the path in the message ("--out", "checkpoint_path").
    """
    path = os.fspath(path)
    _check_destination(path, what)
    try:
        fd, tmp = _create_temporary(path)
    except OSError as exc:
        raise type(exc)(exc.errno, f"{what} {path!r} cannot be written: {exc.strerror}") from None
    os.close(fd)
    os.unlink(tmp)


def _file_kind(mode):
    """What a file that is not a regular one is, in words."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def open_regular(path, what="a file"):
    """``path`` opened for reading in binary mode, refused unless it is a regular file.

    A FIFO would block the reader until some writer comes (forever), a device
    like ``/dev/zero`` yields bytes without end: neither is opened. The file is
    checked before it is opened (opening some devices has effects) and again
    through the open descriptor (it may have been replaced meanwhile); it is
    opened with ``O_NONBLOCK``, so that even then opening a FIFO cannot block.

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        What the file should be, with its article, for the messages ("a numba-mlp model file", "an IDX file").

    Returns
    -------
    binary file object (the caller closes it)

    Raises
    ------
    FileNotFoundError
        no file at ``path`` (or ``path`` is empty).
    IsADirectoryError
        ``path`` is a directory.
    ValueError
        ``path`` is a FIFO, a device or a socket; the message says which.
    """
    path = os.fspath(path)
    noun = what.split(" ", 1)[-1]
    if path == "":
        raise FileNotFoundError(f"the path of {what} is empty")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"no {noun} at {path!r}") from None
    if stat.S_ISREG(mode):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            return os.fdopen(fd, "rb")
        os.close(fd)
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{path!r} is a directory, not {what}")
    raise ValueError(f"{path!r} is {_file_kind(mode)}, not a regular file: {what} must be one")


def write_text(path, text):
    """Write ``text`` as UTF-8 to ``path``, atomically."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _nan_to_none(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def write_json(path, obj, indent=2):
    """Write ``obj`` as indented JSON to ``path``, atomically; NaN and inf become null, NumPy scalars numbers."""
    write_text(path, json.dumps(_nan_to_none(obj), indent=indent, default=_json_default, allow_nan=False) + "\n")


# Bytes read per call when an array is filled from a file: big reads, but a bounded piece of a stream at a time.
READ_CHUNK_BYTES = 2**20


def read_into(f, array):
    """Fill the contiguous ``array`` with the next bytes of the binary file ``f``, piece by piece.

    Returns the number of bytes read: ``array.nbytes``, or fewer when ``f`` ended first (the caller
    says what that means). Nothing larger than the array is ever allocated, whatever ``f`` holds.
    """
    view, done = memoryview(array.reshape(-1).view(np.uint8)), 0
    while done < array.nbytes:
        got = f.readinto(view[done:done + READ_CHUNK_BYTES])
        if not got:
            break
        done += got
    return done
