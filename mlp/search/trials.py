"""One trial: a fresh network trained on the training split and scored on the validation split.

This is what the workers run: a trial gets the training and validation
splits only, never the test set; a joblib worker running one exits when the
search's process is gone (:mod:`mlp.search.watchdog`). ``run_trial`` pins a trial's BLAS thread
count (``mlp.threads.limited_threads``), on which its result depends to the bit.
"""
import math
import os
import platform
import time
import warnings

import numpy as np

from .. import checks
from ..config import TrainConfig
from ..defaults import NETWORK, SEARCH
from ..evaluation import evaluate
from ..model import MLP
from ..threads import limited_threads
from ..trainer import Trainer
from .space import CONFIG_NAMES
from .watchdog import exit_with_parent


def network_and_config(params, n_features, n_classes, seed):
    """(layer sizes, TrainConfig) of one trial; per-layer lengths are checked here."""
    hidden = params.get("hidden", list(SEARCH["hidden"]))
    layer_sizes = [n_features, *hidden, n_classes]
    fields = {name: params[name] for name in CONFIG_NAMES if name in params}
    if "keep_prob_input" in params or "keep_prob_hidden" in params:
        fields["keep_prob"] = ([params.get("keep_prob_input", 1.0)]
                               + [params.get("keep_prob_hidden", 1.0)] * len(hidden))
    config = TrainConfig(**fields, seed=seed)
    n_weights = len(layer_sizes) - 1
    try:
        config.validate()
        checks.per_layer("l2", config.l2, n_weights)
        checks.per_layer("l1", config.l1, n_weights)
        checks.check_keep_probs(config.keep_prob, n_weights)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"trial {params}: {exc}") from None
    return layer_sizes, config


def accuracy_and_loss(net, X, y):
    """(accuracy, mean cross-entropy) of ``net`` on ``X``, ``y``."""
    loss, accuracy = evaluate(net, checks.check_X(X, net.n_features, net.dtype), np.asarray(y, dtype=np.int64))
    return float(accuracy), float(loss)


def train_trial(params, split, settings):
    """Train one configuration on split = (X_tr, y_tr, X_val, y_val); (net, result dict)."""
    X_tr, y_tr, X_val, y_val = split
    layer_sizes, config = network_and_config(params, settings["n_features"], settings["n_classes"],
                                             settings["seed"])
    net = MLP(layer_sizes, output="softmax", activation=params.get("activation", NETWORK["activation"]),
              seed=settings["seed"], dtype=settings["dtype"], backend=settings["backend"])
    start = time.perf_counter()
    with warnings.catch_warnings():
        # A diverged trial is a result (stop_reason "diverged"), not a reason to warn per trial.
        warnings.simplefilter("ignore", RuntimeWarning)
        # threads=None: the trial runs on the limit its caller set (run_trial's, or the refit's), so that the
        # refit of the best trial uses the same BLAS thread count and reproduces it to the bit.
        history = Trainer(net, config, threads=None).fit(X_tr, y_tr, X_val=X_val, y_val=y_val)
    if history.stop_reason == "interrupted":
        # The trainer absorbs Ctrl-C and returns a partly trained net: that is no result to journal.
        raise KeyboardInterrupt
    seconds = time.perf_counter() - start
    val_accuracy, val_loss = accuracy_and_loss(net, X_val, y_val)
    records = history.records
    return net, {
        "val_accuracy": val_accuracy,
        "val_loss": val_loss if math.isfinite(val_loss) else None,
        "train_loss": records[-1]["train_loss"] if records else None,
        "epochs_run": len(records),
        "best_epoch": history.best_epoch,
        "stop_reason": history.stop_reason,
        "seconds": seconds,
        "worker": f"{platform.node()}:{os.getpid()}",
    }


def run_trial(params, split, settings, threads=None):
    """Train and score one trial; what the workers run. Returns the result dict.

    Parameters
    ----------
    params : dict
        Canonical parameters of the trial (see :mod:`mlp.search`).
    split : tuple
        ``(X_tr, y_tr, X_val, y_val)``: the training and validation splits.
    settings : dict
        ``n_features``, ``n_classes``, ``seed``, ``dtype``, ``backend``.
    threads : int or None
        BLAS threads while the trial runs (numba's own: 1); None: unchanged.
    """
    with limited_threads(threads):
        result = train_trial(params, split, settings)[1]
    return dict(result, threads=threads)


def keyed_trial(key, params, split, settings, threads, parent=None):
    """``(key, run_trial(...))``: a worker's answer names its trial.

    ``parent``: the pid of the search's process, when this runs in a worker
    process that the search started (joblib): the worker then exits soon
    after that process is gone (:func:`mlp.search.watchdog.exit_with_parent`).
    """
    if parent is not None:
        exit_with_parent(parent)
    return key, run_trial(params, split, settings, threads)
