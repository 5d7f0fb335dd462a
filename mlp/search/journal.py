"""The journal: append-only JSON Lines in ``out_dir/journal.jsonl``, one finished trial per line.

Each line is flushed and fsynced before the next trial is written, so a
crash loses at most the line being written. A line that is not a usable
trial record is ignored with one ``RuntimeWarning`` naming it, and that
trial runs again: a line cut short by a crash (not JSON), a record of
another format, or one whose scores are not numbers (``"val_accuracy":
null``, NaN, a string; the ranking needs them). :class:`Journal`, which the
search opens under its directory lock, then rewrites the journal without
those lines (atomically: a crash leaves the old journal or the new one), so
the warning comes once, not on every later run.

A journal path that is not a regular file (a directory, a FIFO) is an
OSError that names it, before any trial runs.
"""
import json
import math
import os
import stat
import warnings
from pathlib import Path

from ..checks import is_real
from ..files import atomic_write

JOURNAL_NAME = "journal.jsonl"
#: The ``format`` field of every record; a line without it is not a trial record.
JOURNAL_FORMAT = "numba-mlp-search-trial/1"


def read_journal(path):
    """{key: record} of the finished trials in a journal; unusable lines are ignored with a warning.

    A line cut short by a crash mid-write (normally the last), or a record
    whose scores are not numbers, is reported with a ``RuntimeWarning`` and
    ignored, so that trial runs again. A missing journal is empty.
    """
    records, _, dropped = _parsed(_contents(path))
    if dropped:
        _warn_dropped(path, dropped, "")
    return records


class Journal:
    """The journal of a search in progress: what it holds, without unusable lines, then one line per trial.

    Open it (``with``) while holding the directory's lock
    (:func:`mlp.search.lock.locked_directory`): entering reads the journal
    into ``records`` ({key: record}) and, when a line had to be dropped,
    rewrites the file without it; :meth:`append` adds a record, flushed and
    fsynced before it returns.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.records = {}
        self._file = None

    def __enter__(self):
        data = _contents(self.path)
        self.records, kept, dropped = _parsed(data)
        if dropped:
            _warn_dropped(self.path, dropped, "; removed from the journal")
        if dropped or (data and not data.endswith(b"\n")):  # also a last record whose newline a crash cut off
            atomic_write(self.path, lambda f: f.write(b"".join(line + b"\n" for line in kept)))
        self._file = open(self.path, "ab")
        return self

    def append(self, record):
        self._file.write(json.dumps(record, sort_keys=True, allow_nan=False).encode("utf-8") + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def __exit__(self, *exc):
        self._file.close()


def _contents(path):
    """The journal's bytes; b"" when there is none; an OSError naming it when it is not a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return b""
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"the search journal {path} is a directory, not a file: move it away or give "
                                "another output directory")
    if not stat.S_ISREG(mode):
        raise OSError(f"the search journal {path} is not a regular file (a FIFO, a device?): move it away or "
                      "give another output directory")
    return Path(path).read_bytes()


def _parsed(data):
    """({key: record}, the lines holding them, [(line number, why not)] of the others) of a journal's bytes."""
    records, kept, dropped = {}, [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        record, problem = _record(line)
        if problem is None:
            records[record["key"]] = record
            kept.append(line)
        else:
            dropped.append((number, problem))
    return records, kept, dropped


class _NotFinite(ValueError):
    """A NaN or an infinity in a journal line: not JSON, and no score."""


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(f"{text} is not a finite number")
    return value


def _reject_constant(name):
    raise _NotFinite(f"{name} is not a finite number")


def _record(line):
    """(record, None) of a usable journal line, else (None, why it is not)."""
    try:
        # NaN and infinities are not JSON, and the tables are written without them.
        record = json.loads(line, parse_float=_finite_float, parse_constant=_reject_constant)
    except _NotFinite as exc:
        return None, str(exc)
    except ValueError:  # UnicodeDecodeError included
        return None, "not valid JSON: a write cut short by a crash?"
    if not (isinstance(record, dict) and record.get("format") == JOURNAL_FORMAT):
        return None, f"not a {JOURNAL_FORMAT} record"
    if not isinstance(record.get("key"), str) or not isinstance(record.get("params"), dict):
        return None, "no key or no params"
    accuracy, loss = record.get("val_accuracy"), record.get("val_loss")
    if not (is_real(accuracy) and 0 <= accuracy <= 1):
        return None, f"val_accuracy is {_shown(accuracy)}, not a number in [0, 1]"
    if not (loss is None or (is_real(loss) and loss >= 0)):
        return None, f"val_loss is {_shown(loss)}, not a number >= 0"
    return record, None


def _shown(value):
    """A JSON value as the journal has it, cut to a length a warning can show."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _warn_dropped(path, dropped, action):
    where = ", ".join(f"line {number} ({problem})" for number, problem in dropped)
    warnings.warn(f"{path}: not a complete trial record, ignored{action}: {where}; "
                  f"{'that trial' if len(dropped) == 1 else 'those trials'} will run again",
                  RuntimeWarning, stacklevel=3)
