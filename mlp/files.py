"""Files written atomically: a reader never sees half a file, an interrupted write leaves the old one.

Every file the library writes (models, checkpoints, histories, summaries,
search tables, figures) goes through ``atomic_write``: the bytes go to a
temporary file in the destination's directory, which is flushed and fsynced,
then renamed over the destination, and the directory is fsynced so that the
rename itself survives a crash.
"""
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np


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
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
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
