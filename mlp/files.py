"""Files written atomically: a reader never sees half a file, an interrupted write leaves the old one.

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
"""
import json
import math
import os
import secrets
import stat
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


def temporary_name(path):
    """A fresh hidden name next to ``path``: ``.<name>.<16 hex digits>.tmp``, at most ``NAME_MAX`` bytes.

    The copy of the destination's name is shortened (at a character boundary)
    so that a destination whose own name is near the limit can still be written.
    """
    directory, name = os.path.split(path)
    suffix = f".{secrets.token_hex(TOKEN_BYTES)}.tmp"
    room = NAME_MAX - len(os.fsencode("." + suffix))
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return os.path.join(directory, f".{name}{suffix}")


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


def atomic_write(path, write):
    """Call ``write(binary_file)`` on a temporary file next to ``path``, then rename it to ``path``.

    The temporary file is flushed and fsynced before ``os.replace``; on any
    exception (KeyboardInterrupt included) it is removed and ``path`` is untouched.
    A new file gets ``0o666 & ~umask``, a replaced one keeps its permission bits
    (see the module's docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The destination; its name may be up to ``NAME_MAX`` bytes long.
    write : callable(binary_file)
        Writes the whole content.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    mode = _existing_mode(path)
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
    training run, a search): ``path`` must not be a directory, its directory
    must exist and be a directory, and a temporary file must be creatable
    there (a probe created and removed at once, so that a read-only file
    system or a full disk's missing inode is found as well as a missing
    permission). ``what`` names the path in the message ("--out", "checkpoint_path").
    """
    path = os.fspath(path)
    if path == "":
        raise FileNotFoundError(f"{what} is an empty path")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what} {path!r} is a directory, not a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{what} {path!r}: directory {directory!r} does not exist")
    try:
        fd, tmp = _create_temporary(path)
    except OSError as exc:
        raise type(exc)(exc.errno, f"{what} {path!r} cannot be written: {exc.strerror}") from None
    os.close(fd)
    os.unlink(tmp)


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
