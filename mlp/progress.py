"""Progress bars: one over a fit's epochs, the same for ``MLP.fit(verbose=True)`` and ``mlp train``.

tqdm (the ``cli`` extra) is imported on first use only: ``import mlp`` never needs it.
"""
import sys


def progress_bar(what, **options):
    """A tqdm progress bar on stderr (``options``: tqdm's); ``what`` names the user of the bar in the
    error raised when tqdm is missing."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError(f"the progress bar of {what} needs tqdm: "
                          "pip install 'numba-mlp[cli]' (or pip install tqdm)") from None
    return tqdm(file=sys.stderr, dynamic_ncols=True, **options)


def epoch_progress(total, what="MLP.fit(verbose=True)", disable=False):
    """(bar, callback): a bar over ``total`` epochs and the trainer callback that advances it.

    The bar shows each epoch's training loss, the thread count it ran with and, with a
    validation set, its accuracy; it stands at the epoch just done, so that a resumed fit starts
    where its checkpoint was. The callback never stops training (it returns False).
    """
    bar = progress_bar(what, total=total, unit="epoch", desc="training", disable=disable)

    def callback(record):
        postfix = {"loss": f"{record['train_loss']:.4f}", "threads": record["threads"]}
        if record.get("val_accuracy") is not None:
            postfix["val_acc"] = f"{record['val_accuracy']:.4f}"
        bar.set_postfix(postfix, refresh=False)
        bar.update(record["epoch"] + 1 - bar.n)
        return False

    return bar, callback
