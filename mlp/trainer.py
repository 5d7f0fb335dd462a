"""Minibatch SGD for ``mlp.MLP``: the lecture's training loop, with dropout, L1/L2, momentum and early stopping.

``Trainer`` owns what is the same on every backend: the configuration
(``mlp.config.TrainConfig``), the data checks and the validation split, each
epoch's order and learning rate, evaluation, divergence, early stopping,
checkpoints (``mlp.checkpoint``) and the ``History`` (``mlp.history``). The
minibatch loop itself is its backend's engine (``mlp.engines``).

>>> net = MLP([784, 256, 10], seed=0, backend="cpu")
>>> history = Trainer(net, epochs=10, keep_prob=[0.8, 0.5], l2=1e-4,
...                   validation_fraction=0.1, early_stopping=True).fit(X, y)

Semantics, the same on every backend:

* Epoch ``e`` (0-based) visits the examples in the order
  ``np.random.default_rng([seed, e]).permutation(n)`` in minibatches of
  ``batch_size``; the last minibatch holds the remaining ``n % batch_size``
  examples (it is trained on, with its own mean over its rows). Learning rate
  of epoch e (``lr_schedule``), after ``warmup_epochs`` w epochs at
  ``learning_rate * (e + 1) / w`` (decay and cosine): "decay"
  ``learning_rate / (1 + lr_decay * (e - w))``; "cosine"
  ``learning_rate * (1 + cos(pi (e - w) / (epochs - w))) / 2``;
  scikit-learn's "invscaling" ``learning_rate / (e * n + 1) ** power_t`` (n
  the training examples: samples seen before the epoch) and "adaptive"
  (the rate is divided by 5 whenever ``patience`` epochs pass without the
  monitored value improving by ``tol``; training stops when it is already at
  most 1e-6).
* Step ``t`` counts minibatches from the first epoch. Its dropout mask for
  masked layer ``j`` (0 = input, then each hidden layer) is stream
  ``t * n_layers + j`` of ``K.dropout_mask(seed, stream, keep, out)``, the
  counter-based generator every backend shares: the same seed, data and
  configuration give the same parameters on numpy and cpu (to rounding), and
  bit-identical ones run after run on one backend with the same BLAS thread
  count (threads change the order of BLAS's sums, and so the last bits): pass
  an int ``threads`` for that; the default "auto" may choose differently from
  run to run.
* ``dropout_mode="per_sample"``: each example of the minibatch gets its own
  mask, shape (nb, width). ``"per_batch"``: the lecture's literal reduced
  network, one (width,) mask per minibatch; the kept units are gathered into
  compact matrices, trained, and scattered back, so removed units' weights,
  biases and velocities are untouched that step, L1/L2 included (regularisation
  applies to the retained weights only). Both scale kept activations by
  1/keep (inverted dropout), so inference uses the full network unchanged.
* Update: the engine's update rule (``mlp.engines.base``: SGD, momentum,
  Nesterov or Adam, the optimizer state starting at zero) on the gradient of
  ``data loss + sum_l (l2[l]/2 + alpha/(2 nb))||W_l||^2 + l1[l]|W_l|`` (nb the
  minibatch's rows; biases are not penalised).
* ``train_loss`` of an epoch: the mean over its examples of the minibatch data
  loss (as trained: with dropout, parameters changing during the epoch), plus
  the regularisation penalty of the parameters at the end of the epoch
  (alpha's counted once per minibatch, as scikit-learn's loss does).
  ``val_loss`` is the data loss of the full network on the validation set
  (no penalty: it compares models with different l1/l2), ``val_accuracy``
  its accuracy (softmax only).

Divergence (``mlp.divergence``): an epoch has diverged when its loss or
parameters are not finite, when the loss of the full network on 1024 fixed
training examples exceeds ``EXPLOSION_FACTOR`` (10) times its value for the
parameters the fit started from (``History.start_loss``) and the loss of the
best constant prediction (a warm start may rise far above its small start and
still be better than knowing nothing), or when a hidden
layer that responded to the input at the start gives every one of those
examples the same output (every ReLU dead, every unit saturated: the network
has become a constant). The epoch is undone (parameters and optimizer state of
its start), training stops with stop_reason "diverged" and a RuntimeWarning
saying which and what to do: a diverged network is never handed back or
checkpointed.

Checkpoints (``fit(..., checkpoint_path=...)``): after every epoch, atomically,
a model file holding the live parameters of the last completed epoch, plus the
optimizer state, the best epoch's parameters, the history and the
early-stopping state (``mlp.checkpoint``); ``resume=True`` continues exactly
where the run stopped.

Threads (``mlp.threads``): ``Trainer(net, ..., threads=...)``: "auto" (the
default) times a few steps on a throwaway copy with 1 thread and with every
usable core before the first epoch, keeps the faster, and times again after an
epoch more than 1.5 times slower than the one before; an int fixes BLAS's and
numba's thread count; None leaves them as the caller set them. Each epoch's
record says the count it ran with ("threads"), the metadata the setting and
the counts used.

Engines (``mlp.engines``): on ``"numpy"`` one Python iteration per minibatch on
the reference kernels; on ``"cpu"`` an epoch is a single compiled call (any
depth); on ``"cuda"`` the data, buffers and epoch loss stay on the GPU
(``per_batch`` dropout gathers on the host, so the cuda engine lacks it).
"""
import math
import os
import time
import warnings

import numpy as np

from . import checks
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .datasets import train_validation_split
from .divergence import DivergenceWatch
from .engines import check_supported, make_engine
from .evaluation import evaluate
from .files import check_writable
from .history import History
from .threads import DEFAULT_THREADS, ThreadChooser, check_threads, training_probe


# ---------------------------------------------------------------- trainer
class Trainer:
    """Trains an ``MLP`` in place with minibatch SGD.

    Parameters
    ----------
    net : mlp.MLP
    config : TrainConfig or None
    threads : "auto", int >= 1 or None, default ``mlp.threads.DEFAULT_THREADS`` ("auto")
        BLAS's and numba's threads during ``fit`` (see ``mlp.threads``):
        "auto" times a few steps with 1 thread and with every usable core and
        keeps the faster, timing again after an epoch far slower than the one
        before; an int fixes the count (the setting that reproduces a fit to
        the bit: the count changes the order of BLAS's sums); None leaves the
        counts as the caller set them. Not a TrainConfig field: it changes
        how fast, not what, the network learns.
    **overrides : TrainConfig fields replacing those of ``config``.
    """

    def __init__(self, net, config=None, *, threads=DEFAULT_THREADS, **overrides):
        # The trainer sits below the model (``MLP.fit`` calls it), so it checks for what it uses
        # instead of importing ``MLP``.
        if not all(hasattr(net, a) for a in ("layer_sizes", "kernels", "get_parameters", "set_parameters")):
            raise TypeError(f"net must be an mlp.MLP; got {type(net).__name__}")
        if config is None:
            config = TrainConfig()
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig or None; got {type(config).__name__}")
        self.config = config.with_overrides(overrides)
        self.config.validate(net)
        check_supported(net.backend, self.config)
        self.threads = check_threads(threads)
        self.net = net
        self.history = None

    # ------------------------------------------------------------ data
    def _targets(self, Y, n, name):
        net = self.net
        if net.output == "softmax":
            return checks.check_labels(Y, n, net.n_outputs, name=name)
        targets = checks.check_targets(Y, n, net.n_outputs, net.dtype, name=name)
        # the logistic output's cross-entropy needs targets in [0, 1], the Poisson loss counts >= 0
        low, high = {"logistic": (0, 1), "exp": (0, np.inf)}.get(net.output, (-np.inf, np.inf))
        if targets.size and (targets.min() < low or targets.max() > high):
            raise ValueError(f"{name}: a {net.output!r} output needs targets in [{low}, {high}]; "
                             f"got values in [{targets.min()}, {targets.max()}]")
        return targets

    def _prepare_data(self, X, y, X_val, y_val):
        net, cfg = self.net, self.config
        checks.warn_if_unscaled("X", X)  # before check_X, which converts it to the network's float type
        X = checks.check_X(X, net.n_features, net.dtype)
        y = self._targets(y, X.shape[0], "y")
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither")
        if X_val is not None:
            X_val = checks.check_X(X_val, net.n_features, net.dtype, name="X_val")
            y_val = self._targets(y_val, X_val.shape[0], "y_val")
        elif cfg.validation_fraction > 0:
            X, y, X_val, y_val = _split(X, y, cfg.validation_fraction, cfg.seed, net.output == "softmax")
        return X, y, X_val, y_val

    # ------------------------------------------------------------ fit
    def fit(self, X, y, *, X_val=None, y_val=None, callback=None, checkpoint_path=None, resume=False):
        """Train ``self.net`` in place and return the ``History``.

        Parameters
        ----------
        X : (n, n_features); y : int labels (n,) or one-hot (softmax), (n, n_outputs) targets (identity)
        X_val, y_val : explicit validation set, or None (see ``validation_fraction``)
        callback : callable(record) -> bool or None, called after each epoch;
            True stops training (stop_reason "callback")
        checkpoint_path : str or None; model and trainer state written
            atomically after every epoch. Checked before the first epoch
            (``mlp.files.check_writable``): a directory, a missing directory
            or one that cannot be written raises OSError naming it. A write
            that fails later warns (RuntimeWarning) and training goes on.
        resume : bool; continue from ``checkpoint_path`` (if the file exists),
            matching an uninterrupted run with the same configuration

        The network ends with the best epoch's parameters when early stopping
        is on or training is interrupted (KeyboardInterrupt: the epoch under
        way is abandoned, or finished if the interrupt came from the
        callback); otherwise with the last completed epoch's. A diverged epoch
        (NaN or inf, an exploding loss or a network that became constant: see
        the module's docstring) stops training with the last good parameters
        (stop_reason "diverged", RuntimeWarning): it is never handed back or saved.
        """
        checks.check_callable("callback", callback)
        if resume and checkpoint_path is None:
            raise ValueError("resume=True needs a checkpoint_path")
        if checkpoint_path is not None:
            check_writable(checkpoint_path, "checkpoint_path")
        run = _Run(self.net, self.config, *self._prepare_data(X, y, X_val, y_val), checkpoint_path, self.threads)
        if resume and os.path.exists(checkpoint_path):
            run.resume()
        self.history = run.history
        run.train(callback)
        run.finish()
        return run.history


def fit(net, X, y, **kwargs):
    """``Trainer(net, config, threads=threads, **config_fields).fit(X, y, **fit_arguments)``.

    Fit arguments are X_val, y_val, callback, checkpoint_path and resume;
    ``config`` is an optional TrainConfig and ``threads`` the thread setting
    (``Trainer``'s); every other keyword is a TrainConfig field.
    """
    fit_keys = ("X_val", "y_val", "callback", "checkpoint_path", "resume")
    fit_kwargs = {k: kwargs.pop(k) for k in fit_keys if k in kwargs}
    config = kwargs.pop("config", None)
    threads = kwargs.pop("threads", DEFAULT_THREADS)
    return Trainer(net, config, threads=threads, **kwargs).fit(X, y, **fit_kwargs)


# ---------------------------------------------------------------- one fit
class _Run:
    """One call of ``Trainer.fit``: the engine, the epoch loop and what it keeps track of."""

    def __init__(self, net, config, X, y, X_val, y_val, checkpoint_path, threads):
        self.net, self.config = net, config
        self.X_val, self.y_val = X_val, y_val
        self.checkpoint_path = checkpoint_path
        self.checkpoint_failed = False  # the last checkpoint write failed: warned once until one succeeds
        self.n = X.shape[0]
        batch = min(config.batch_size, self.n)
        self.steps_per_epoch = -(-self.n // batch)
        self.l2, self.l1, keep = config.per_layer(net)
        self.engine = make_engine(net, config, X, y, batch, self.l2, self.l1, keep)
        self.threads = ThreadChooser.for_net(
            threads, net, lambda: training_probe(net, config, X, y, batch, self.l2, self.l1, keep))
        self.best = BestEpoch(config)
        self.watch = DivergenceWatch(net, X, y)
        self.history = History()
        self.start_epoch = 0
        self.eval_workspaces = {}
        self.adaptive_rate = config.learning_rate  # the "adaptive" schedule's current rate

    def resume(self):
        self.start_epoch, self.history, self.adaptive_rate = load_checkpoint(
            self.checkpoint_path, self.net, self.config, self.engine, self.best, self.n)

    def learning_rate(self, epoch):
        """The learning rate of ``epoch`` under the configured schedule."""
        cfg = self.config
        if cfg.lr_schedule == "invscaling":
            return cfg.learning_rate / (epoch * self.n + 1) ** cfg.power_t
        if cfg.lr_schedule == "adaptive":
            return self.adaptive_rate
        warmup = cfg.warmup_epochs
        if epoch < warmup:
            return cfg.learning_rate * (epoch + 1) / warmup
        if cfg.lr_schedule == "cosine":
            # epoch ``warmup`` at the full rate, the last at a small positive one (a zero rate would waste it)
            return cfg.learning_rate * 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup) / (cfg.epochs - warmup)))
        return cfg.learning_rate / (1.0 + cfg.lr_decay * (epoch - warmup))

    def stalled(self):
        """After ``patience`` epochs without improvement: True when training stops.

        The "adaptive" schedule first divides its rate by 5 (and waits again) until
        the rate is at most 1e-6; otherwise early stopping stops.
        """
        cfg = self.config
        if self.best.wait < cfg.patience:
            return False
        if cfg.lr_schedule == "adaptive":
            if self.adaptive_rate > 1e-6:
                self.adaptive_rate /= 5.0
                self.best.wait = 0
                return False
            return True
        return cfg.early_stopping

    def train(self, callback):
        """Run epochs until one of the stop rules; the reason goes to ``history.stop_reason``."""
        stop_reason = "max_epochs"
        if self.stalled():
            stop_reason = "early_stopping"
        cfg = self.config
        epoch = self.start_epoch
        with self.threads:  # every epoch (evaluation and callback included) on the chosen thread count
            self.watch.start(self.net, self.history)
            while stop_reason == "max_epochs" and epoch < cfg.epochs:
                start = _EpochStart(self.net, self.engine)
                record = None
                try:
                    record = self._epoch(epoch)
                    if record is None:
                        start.restore(self.net, self.engine)
                        stop_reason = "diverged"
                        break
                    self._keep(record)
                    self.threads.epoch_done(record["seconds"])
                    if self.stalled():
                        stop_reason = "early_stopping"
                    if callback is not None and callback(dict(record)) and stop_reason == "max_epochs":
                        stop_reason = "callback"
                except KeyboardInterrupt:
                    if record is None:
                        start.restore(self.net, self.engine)
                    stop_reason = "interrupted"
                epoch += 1
        self.history.stop_reason = stop_reason

    def _epoch(self, epoch):
        """Train and evaluate one epoch: its record, or None (with a warning) when it diverged."""
        cfg, net = self.config, self.net
        t0 = time.perf_counter()
        lr = self.learning_rate(epoch)
        order = np.random.default_rng([cfg.seed, epoch]).permutation(self.n)
        # overflow on the way to a divergence is reported once, below, not per NumPy operation
        with np.errstate(over="ignore", invalid="ignore"):
            result = self.engine.run_epoch(order, lr, epoch * self.steps_per_epoch)
            penalty_l2 = [a + cfg.alpha * self.steps_per_epoch / self.n for a in self.l2]
            train_loss = result.loss_sum / self.n + sum(net.kernels.regularization_loss(W, a, b)
                                                        for W, a, b in zip(net.weights, penalty_l2, self.l1))
            val_loss = val_acc = None
            if self.X_val is not None:
                val_loss, val_acc = evaluate(net, self.X_val, self.y_val, workspaces=self.eval_workspaces)
        if result.diverged or not _finite(train_loss, val_loss) or not _parameters_finite(net):
            where = f" at minibatch {result.steps}" if result.diverged else ""
            return _diverged(epoch, where, "the loss or the parameters became NaN/inf", lr)
        problem = self.watch.problem(net)
        if problem is not None:
            return _diverged(epoch, "", problem, lr)
        return {"epoch": epoch, "train_loss": float(train_loss),
                "val_loss": None if val_loss is None else float(val_loss),
                "val_accuracy": None if val_acc is None else float(val_acc),
                "seconds": time.perf_counter() - t0, "learning_rate": lr, "threads": self.threads.count}

    def _keep(self, record):
        """Record a completed epoch: history, best epoch, checkpoint."""
        self.history.records.append(record)
        if self.best.update(record, self.net):
            self.history.best_epoch = record["epoch"]
        if self.checkpoint_path is not None:
            self._save_checkpoint(record["epoch"])

    def _save_checkpoint(self, epoch):
        """Write the checkpoint; a write that fails (a full disk, a directory gone) warns once and training goes on.

        The parameters in memory are whole: losing the run for its checkpoint would lose more than the
        checkpoint protects. Each later epoch tries again; the previous checkpoint file stays whole."""
        try:
            save_checkpoint(self.checkpoint_path, self.net, self.config, epoch, self.history, self.engine,
                            self.best, self.n, self.adaptive_rate)
        except OSError as exc:
            if not self.checkpoint_failed:
                warnings.warn(f"could not write the checkpoint {self.checkpoint_path} after epoch {epoch} ({exc}); "
                              "training goes on and tries again after each epoch", RuntimeWarning, stacklevel=5)
            self.checkpoint_failed = True
        else:
            self.checkpoint_failed = False

    def finish(self):
        """Leave the network with the parameters the stop reason calls for, and its metadata."""
        cfg, net, history = self.config, self.net, self.history
        interrupted = history.stop_reason == "interrupted"
        if interrupted and self.checkpoint_path is not None and history.records:
            self._save_checkpoint(history.records[-1]["epoch"])
        if (cfg.early_stopping or interrupted) and self.best.params is not None:
            net.set_parameters(*self.best.params)
        net.metadata = {"train_config": cfg.to_dict(), "n_train": self.n, "best_epoch": history.best_epoch,
                        "epochs_run": len(history.records), "stop_reason": history.stop_reason,
                        "threads": self.threads.summary()}


# ---------------------------------------------------------------- helpers
def _diverged(epoch, where, problem, lr):
    """Warn that ``epoch`` diverged (``problem`` says how); None, the record of a diverged epoch."""
    warnings.warn(f"training diverged in epoch {epoch}{where}: {problem} (learning rate {lr:g}); restored the "
                  "parameters of the last good epoch. Lower the learning rate.", RuntimeWarning, stacklevel=5)
    return None


def _finite(*values):
    return all(x is None or math.isfinite(x) for x in values)


def _parameters_finite(net):
    K = net.kernels
    return all(np.isfinite(K.to_host(P)).all() for P in list(net.weights) + list(net.biases))


def _split(X, y, fraction, seed, stratified):
    """Carve a validation part: stratified by class for labels, a random subset for regression targets."""
    if stratified:
        return train_validation_split(X, y, fraction, seed)
    n = X.shape[0]
    n_val = int(round(fraction * n))
    if n_val == 0 or n_val == n:
        raise ValueError(f"validation_fraction={fraction!r} of {n} samples leaves an empty part")
    val = np.sort(np.random.default_rng(seed).permutation(n)[:n_val])
    is_val = np.zeros(n, dtype=bool)
    is_val[val] = True
    return X[~is_val], y[~is_val], X[is_val], y[is_val]


class BestEpoch:
    """The monitored value of the best epoch so far, its parameters, and the epochs since it."""

    def __init__(self, config):
        self.config = config
        self.value = None
        self.params = None
        self.wait = 0

    def monitored(self, record):
        """(the value early stopping watches in ``record``, whether higher is better)."""
        if record["val_loss"] is None:
            return record["train_loss"], False
        if self.config.monitor == "val_accuracy":
            return record["val_accuracy"], True
        return record["val_loss"], False

    def update(self, record, net):
        """Take the record in; True when it is the new best."""
        value, higher_is_better = self.monitored(record)
        tol = self.config.tol
        if self.value is None:
            improved = True
        elif higher_is_better:
            improved = value > self.value + tol
        else:
            improved = value < self.value - tol
        if improved:
            self.value = value
            self.params = net.get_parameters()
            self.wait = 0
        else:
            self.wait += 1
        return improved


class _EpochStart:
    """Host copies of the parameters and optimizer state at the start of an epoch, to roll back to."""

    def __init__(self, net, engine):
        self.params = net.get_parameters()
        self.optimizer_state = engine.get_optimizer_state()

    def restore(self, net, engine):
        net.set_parameters(*self.params)
        engine.set_optimizer_state(self.optimizer_state)

