"""``History``: what happened during a fit, one record per completed epoch."""
import json
import math

from .files import write_text

STOP_REASONS = ("max_epochs", "early_stopping", "diverged", "interrupted", "callback")


class History:
    """What happened during ``fit``.

    Attributes
    ----------
    records : list of dict, one per completed epoch, with keys "epoch" (0-based),
        "train_loss", "val_loss", "val_accuracy" (None without validation data
        or, for accuracy, with an identity output), "seconds" (wall time of the
        epoch including evaluation; on the cpu backend the first epoch of a
        process also loads or compiles the epoch function, unless "auto" threads
        timed steps first), "learning_rate", "threads" (the BLAS and numba
        thread count the epoch ran with, see ``mlp.threads``; absent from
        records of older checkpoints).
    best_epoch : int or None; the epoch with the best monitored value.
    stop_reason : one of "max_epochs", "early_stopping", "diverged", "interrupted", "callback".
    start_loss : float or None; the data loss of the parameters the run started from, on the
        training examples the trainer watches for divergence (``mlp.divergence.DivergenceWatch``):
        an epoch far above it has diverged. A resumed run keeps its first start's.
    """

    def __init__(self, records=None, best_epoch=None, stop_reason="max_epochs", start_loss=None):
        self.records = list(records or [])
        self.best_epoch = best_epoch
        self.stop_reason = stop_reason
        self.start_loss = start_loss

    def __len__(self):
        return len(self.records)

    def __repr__(self):
        return f"History({len(self.records)} epochs, best_epoch={self.best_epoch}, stop_reason={self.stop_reason!r})"

    def column(self, key):
        """One value per epoch, e.g. ``history.column("val_loss")``."""
        return [r[key] for r in self.records]

    def to_dict(self):
        return {"records": [dict(r) for r in self.records], "best_epoch": self.best_epoch,
                "stop_reason": self.stop_reason, "start_loss": self.start_loss}

    @classmethod
    def from_dict(cls, d):
        """The History of ``to_dict``'s dict (one written before ``start_loss`` existed has None).

        ValueError when its start_loss is neither None nor a finite number >= 0: the divergence
        check of a resumed fit compares with it."""
        start_loss = d.get("start_loss")
        if start_loss is not None and (isinstance(start_loss, bool) or not isinstance(start_loss, (int, float))
                                       or not math.isfinite(start_loss) or start_loss < 0):
            raise ValueError(f"a history's start_loss must be a finite number >= 0 or null; got {start_loss!r}")
        return cls(d["records"], d["best_epoch"], d["stop_reason"], start_loss)

    def save_json(self, path):
        """Write ``to_dict()`` as JSON to ``path`` atomically."""
        write_text(path, json.dumps(self.to_dict(), indent=1))
