"""The journal: append-only JSON Lines in ``out_dir/journal.jsonl``, one finished trial per line.

Each line is flushed and fsynced before the next trial is written, so a
crash loses at most the line being written; :func:`read_journal` skips such
a torn line with a warning and that trial runs again.
"""
import json
import os
import warnings
from pathlib import Path

JOURNAL_NAME = "journal.jsonl"
#: The ``format`` field of every record; a line without it is not a trial record.
JOURNAL_FORMAT = "numba-mlp-search-trial/1"


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
            valid = (isinstance(record, dict) and record.get("format") == JOURNAL_FORMAT
                     and isinstance(record.get("key"), str) and "val_accuracy" in record)
        except (ValueError, UnicodeDecodeError):
            valid = False
        if not valid:
            warnings.warn(f"{path}: line {number} is not a complete trial record (a write cut short "
                          "by a crash?); ignoring it, that trial will run again", RuntimeWarning, stacklevel=2)
            continue
        done[record["key"]] = record
    return done


class Journal:
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
