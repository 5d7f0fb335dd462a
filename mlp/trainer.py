"""Minibatch SGD for ``mlp.MLP``: the lecture's training loop, with dropout, L1/L2, momentum and early stopping.

>>> net = MLP([784, 256, 10], seed=0, backend="cpu")
>>> history = Trainer(net, epochs=10, keep_prob=[0.8, 0.5], l2=1e-4,
...                   validation_fraction=0.1, early_stopping=True).fit(X, y)

Semantics, the same on every backend:

* Epoch ``e`` (0-based) visits the examples in the order
  ``np.random.default_rng([seed, e]).permutation(n)`` in minibatches of
  ``batch_size``; the last minibatch holds the remaining ``n % batch_size``
  examples (it is trained on, with its own mean over its rows). Learning rate
  of epoch e: ``learning_rate / (1 + lr_decay * e)``.
* Step ``t`` counts minibatches from the first epoch. Its dropout mask for
  masked layer ``j`` (0 = input, then each hidden layer) is stream
  ``t * n_layers + j`` of ``K.dropout_mask(seed, stream, keep, out)``, the
  counter-based generator every backend shares: the same seed, data and
  configuration give the same parameters on numpy and cpu (to rounding), and
  bit-identical ones run after run on one backend with the same BLAS thread
  count (threads change the order of BLAS's sums, and so the last bits).
* ``dropout_mode="per_sample"``: each example of the minibatch gets its own
  mask, shape (nb, width). ``"per_batch"``: the lecture's literal reduced
  network, one (width,) mask per minibatch; the kept units are gathered into
  compact matrices, trained, and scattered back, so removed units' weights,
  biases and velocities are untouched that step, L1/L2 included (regularisation
  applies to the retained weights only). Both scale kept activations by
  1/keep (inverted dropout), so inference uses the full network unchanged.
* Update: ``sgd_update`` (or ``sgd_momentum_update`` when momentum > 0, with
  per-parameter velocities starting at zero) with the layer's l2 / l1 on
  weights, none on biases: the gradient of
  ``data loss + sum_l (l2[l]/2)||W_l||^2 + l1[l]|W_l|``.
* ``train_loss`` of an epoch: the mean over its examples of the minibatch data
  loss (as trained: with dropout, parameters changing during the epoch), plus
  the regularisation penalty of the parameters at the end of the epoch.
  ``val_loss`` is the data loss of the full network on the validation set
  (no penalty: it compares models with different l1/l2), ``val_accuracy``
  its accuracy (softmax only).

Checkpoints (``fit(..., checkpoint_path=...)``): after every epoch, atomically,
a model file (``mlp.persistence``; ``mlp.load`` reads it) holding the live
parameters of the last completed epoch, plus the velocities, the best epoch's
parameters, the history and the early-stopping state. Shuffling and masks
are pure functions of (seed, epoch, step), so ``resume=True`` continues
exactly where the run stopped; every configuration field but ``epochs``,
``early_stopping`` and ``patience`` must match the checkpoint's.

Engines: on the ``"cpu"`` backend an epoch is a single compiled call
(``mlp.epoch_cpu``, any depth); on ``"cuda"`` the data, buffers and epoch loss
stay on the GPU (``mlp.epoch_cuda``: a few fused launches per step, one host
read per epoch); ``"numpy"`` runs the generic loop here, one Python iteration
per minibatch on ``mlp.propagation`` and the reference kernels (``per_batch``
mode gathers on the host and so needs a host backend).
"""
import dataclasses
import json
import math
import numbers
import os
import time
import warnings
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from . import _validation as v
from . import persistence
from .propagation import Workspace, backward, chunked_workspaces, forward, output_loss

DROPOUT_MODES = ("per_sample", "per_batch")
MONITORS = ("val_loss", "val_accuracy")
STOP_REASONS = ("max_epochs", "early_stopping", "diverged", "interrupted", "callback")
# Rows per forward pass when evaluating: big enough for BLAS, small enough for cache and memory.
EVAL_CHUNK = 2048
# Checkpoint members (besides the model's) and the config fields that must
# match to resume (epochs, patience and early_stopping may change).
_CHECKPOINT_KIND = "numba-mlp-trainer-checkpoint"
_RESUME_FIXED = ("batch_size", "learning_rate", "momentum", "lr_decay", "l2", "l1", "keep_prob",
                 "dropout_mode", "validation_fraction", "tol", "monitor", "seed")


# ---------------------------------------------------------------- configuration
def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


@dataclass
class TrainConfig:
    """Hyper-parameters of ``Trainer``; ``validate(net)`` checks them against a network.

    Attributes
    ----------
    epochs : int >= 1
    batch_size : int >= 1 (clamped to the number of training examples)
    learning_rate : float > 0
    momentum : float in [0, 1); 0 is plain SGD
    lr_decay : float >= 0; epoch e uses learning_rate / (1 + lr_decay * e)
    l2, l1 : float >= 0 or one per weight matrix (the lecture's alpha(j), beta(j))
    keep_prob : float in (0, 1] or one per non-output layer, input first
    dropout_mode : "per_sample" or "per_batch" (see the module docstring)
    validation_fraction : float in [0, 1); > 0 with no explicit validation set
        carves a stratified validation part out of the training data
    early_stopping : bool; stop after ``patience`` epochs without the monitored
        value improving by more than ``tol``, and restore the best epoch
    patience : int >= 1
    tol : float >= 0
    monitor : "val_loss" or "val_accuracy" (softmax only); without validation
        data the training loss is monitored
    seed : int >= 0; shuffling, dropout masks and the validation split
    """

    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 0.05
    momentum: float = 0.0
    lr_decay: float = 0.0
    l2: Union[float, Sequence[float]] = 0.0
    l1: Union[float, Sequence[float]] = 0.0
    keep_prob: Union[float, Sequence[float]] = 1.0
    dropout_mode: str = "per_sample"
    validation_fraction: float = 0.0
    early_stopping: bool = False
    patience: int = 5
    tol: float = 1e-4
    monitor: str = "val_loss"
    seed: int = 0

    def validate(self, net=None):
        """Raise ValueError/TypeError naming the first bad field; per-layer lengths are checked against ``net``."""
        def need(cond, field, message, exc=ValueError):
            if not cond:
                raise exc(f"TrainConfig.{field} {message}; got {getattr(self, field)!r}")

        for field in ("epochs", "batch_size", "patience"):
            need(_is_int(getattr(self, field)), field, "must be an integer", TypeError)
            need(getattr(self, field) >= 1, field, "must be >= 1")
        for field in ("learning_rate", "momentum", "lr_decay", "validation_fraction", "tol"):
            need(_is_real(getattr(self, field)), field, "must be a number", TypeError)
            need(math.isfinite(getattr(self, field)), field, "must be finite")
        need(self.learning_rate > 0, "learning_rate", "must be > 0")
        need(0 <= self.momentum < 1, "momentum", "must lie in [0, 1)")
        need(self.lr_decay >= 0, "lr_decay", "must be >= 0")
        need(0 <= self.validation_fraction < 1, "validation_fraction", "must lie in [0, 1)")
        need(self.tol >= 0, "tol", "must be >= 0")
        need(isinstance(self.early_stopping, (bool, np.bool_)), "early_stopping", "must be True or False", TypeError)
        need(self.dropout_mode in DROPOUT_MODES, "dropout_mode", f"must be one of {DROPOUT_MODES}")
        need(self.monitor in MONITORS, "monitor", f"must be one of {MONITORS}")
        need(_is_int(self.seed), "seed", "must be an integer", TypeError)
        need(0 <= self.seed < 2 ** 63, "seed", "must lie in [0, 2**63)")
        if net is not None:
            self.per_layer(net)
            if self.monitor == "val_accuracy" and net.output != "softmax":
                raise ValueError("TrainConfig.monitor 'val_accuracy' needs a softmax output; "
                                 f"this network's output is {net.output!r}")

    def per_layer(self, net):
        """(l2, l1, keep) as lists: one l2/l1 per weight matrix, one keep per non-output layer."""
        out = []
        for field in ("l2", "l1", "keep_prob"):
            try:
                if field == "keep_prob":
                    out.append(v.check_keep_probs(self.keep_prob, net.n_layers))
                else:
                    out.append(v.per_layer(field, getattr(self, field), net.n_layers))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"TrainConfig.{field}: {exc}") from None
        return tuple(out)

    def to_dict(self):
        """A JSON-ready dict (sequences as lists)."""
        d = dataclasses.asdict(self)
        for k, val in d.items():
            if isinstance(val, (tuple, list, np.ndarray)):
                d[k] = [float(x) for x in val]
            elif isinstance(val, np.generic):
                d[k] = val.item()
        return d


# ---------------------------------------------------------------- history
class History:
    """What happened during ``fit``.

    Attributes
    ----------
    records : list of dict, one per completed epoch, with keys "epoch" (0-based),
        "train_loss", "val_loss", "val_accuracy" (None without validation data
        or, for accuracy, with an identity output), "seconds" (wall time of the
        epoch including evaluation; on the cpu backend the first epoch of a
        process also loads or compiles the epoch function), "learning_rate".
    best_epoch : int or None; the epoch with the best monitored value.
    stop_reason : one of "max_epochs", "early_stopping", "diverged", "interrupted", "callback".
    """

    def __init__(self, records=None, best_epoch=None, stop_reason="max_epochs"):
        self.records = list(records or [])
        self.best_epoch = best_epoch
        self.stop_reason = stop_reason

    def __len__(self):
        return len(self.records)

    def __repr__(self):
        return f"History({len(self.records)} epochs, best_epoch={self.best_epoch}, stop_reason={self.stop_reason!r})"

    def column(self, key):
        """One value per epoch, e.g. ``history.column("val_loss")``."""
        return [r[key] for r in self.records]

    def to_dict(self):
        return {"records": [dict(r) for r in self.records], "best_epoch": self.best_epoch,
                "stop_reason": self.stop_reason}

    @classmethod
    def from_dict(cls, d):
        return cls(d["records"], d["best_epoch"], d["stop_reason"])

    def save_json(self, path):
        """Write ``to_dict()`` as JSON to ``path`` atomically."""
        text = json.dumps(self.to_dict(), indent=1)
        persistence.atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# ---------------------------------------------------------------- trainer
class Trainer:
    """Trains an ``MLP`` in place with minibatch SGD.

    Parameters
    ----------
    net : mlp.MLP
    config : TrainConfig or None
    **overrides : TrainConfig fields replacing those of ``config``.
    """

    def __init__(self, net, config=None, **overrides):
        from .model import MLP

        if not isinstance(net, MLP):
            raise TypeError(f"net must be an mlp.MLP; got {type(net).__name__}")
        if config is None:
            config = TrainConfig()
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig or None; got {type(config).__name__}")
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"unknown TrainConfig field(s) {unknown}; known: {sorted(fields)}")
        self.config = dataclasses.replace(config, **overrides)
        self.config.validate(net)
        if self.config.dropout_mode == "per_batch" and net.backend not in ("numpy", "cpu"):
            raise ValueError(f"dropout_mode 'per_batch' gathers the reduced network on the host and needs "
                             f"the 'numpy' or 'cpu' backend; this network uses {net.backend!r}")
        self.net = net
        self.history = None

    @property
    def engine(self):
        """"compiled" (cpu: one njit call per epoch), "device" (cuda: the epoch stays on the GPU)
        or "python" (numpy: one iteration per minibatch)."""
        return {"cpu": "compiled", "cuda": "device"}.get(self.net.backend, "python")

    # ------------------------------------------------------------ data
    def _targets(self, Y, n, name):
        net = self.net
        if net.output == "softmax":
            return v.check_labels(Y, n, net.n_outputs)
        try:
            return v.check_targets(Y, n, net.n_outputs, net.dtype)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    def _prepare_data(self, X, y, X_val, y_val):
        net, cfg = self.net, self.config
        X = v.check_X(X, net.n_features, net.dtype)
        y = self._targets(y, X.shape[0], "y")
        if (X_val is None) != (y_val is None):
            raise ValueError("pass both X_val and y_val, or neither")
        if X_val is not None:
            try:
                X_val = v.check_X(X_val, net.n_features, net.dtype)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"X_val: {exc}") from None
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
            atomically after every epoch
        resume : bool; continue from ``checkpoint_path`` (if the file exists),
            matching an uninterrupted run with the same configuration

        The network ends with the best epoch's parameters when early stopping
        is on or training is interrupted (KeyboardInterrupt: the epoch under
        way is abandoned, or finished if the interrupt came from the
        callback); otherwise with the last completed epoch's. A non-finite loss
        or parameter stops training with the last good parameters
        (stop_reason "diverged", RuntimeWarning): NaN is never handed back or saved.
        """
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")
        if resume and checkpoint_path is None:
            raise ValueError("resume=True needs a checkpoint_path")
        net, cfg = self.net, self.config
        X, y, X_val, y_val = self._prepare_data(X, y, X_val, y_val)
        n = X.shape[0]
        batch = min(cfg.batch_size, n)
        steps_per_epoch = -(-n // batch)
        l2, l1, keep = cfg.per_layer(net)
        run = _make_runner(self, X, y, batch, l2, l1, keep)

        eval_workspaces = {}
        state = _BestState(cfg)
        history = History()
        start_epoch = 0
        if resume and os.path.exists(checkpoint_path):
            start_epoch, history = _load_checkpoint(self, checkpoint_path, n, run, state)
        self.history = history

        stop_reason = "max_epochs"
        if cfg.early_stopping and state.wait >= cfg.patience:
            stop_reason = "early_stopping"
        epoch = start_epoch
        while stop_reason == "max_epochs" and epoch < cfg.epochs:
            snapshot = _Snapshot(net, run)
            record = None
            try:
                t0 = time.perf_counter()
                lr = cfg.learning_rate / (1.0 + cfg.lr_decay * epoch)
                perm = np.random.default_rng([cfg.seed, epoch]).permutation(n)
                # overflow on the way to a divergence is reported once, below, not per NumPy operation
                with np.errstate(over="ignore", invalid="ignore"):
                    total, steps, diverged = run.epoch(perm, lr, epoch * steps_per_epoch)
                    train_loss = total / n + sum(net._K.regularization_loss(W, a, b)
                                                 for W, a, b in zip(net.weights, l2, l1))
                    val_loss = val_acc = None
                    if X_val is not None:
                        val_loss, val_acc = evaluate(net, X_val, y_val, workspaces=eval_workspaces)
                if diverged or not _finite(train_loss, val_loss) or not _parameters_finite(net):
                    snapshot.restore(net, run)
                    where = f" at minibatch {steps}" if diverged else ""
                    warnings.warn(
                        f"training diverged in epoch {epoch}{where}: the loss or the parameters became NaN/inf "
                        f"(learning rate {lr:g}); restored the parameters of the last good epoch. "
                        "Lower the learning rate.", RuntimeWarning, stacklevel=2)
                    stop_reason = "diverged"
                    break
                record = {"epoch": epoch, "train_loss": float(train_loss),
                          "val_loss": None if val_loss is None else float(val_loss),
                          "val_accuracy": None if val_acc is None else float(val_acc),
                          "seconds": time.perf_counter() - t0, "learning_rate": lr}
                history.records.append(record)
                if state.update(record, net):
                    history.best_epoch = epoch
                if checkpoint_path is not None:
                    _save_checkpoint(self, checkpoint_path, epoch, history, run, state, n)
                if cfg.early_stopping and state.wait >= cfg.patience:
                    stop_reason = "early_stopping"
                if callback is not None and callback(dict(record)):
                    stop_reason = "callback" if stop_reason == "max_epochs" else stop_reason
            except KeyboardInterrupt:
                if record is None:
                    snapshot.restore(net, run)
                stop_reason = "interrupted"
            epoch += 1

        history.stop_reason = stop_reason
        if stop_reason == "interrupted" and checkpoint_path is not None and history.records:
            _save_checkpoint(self, checkpoint_path, history.records[-1]["epoch"], history, run, state, n)
        if (cfg.early_stopping or stop_reason == "interrupted") and state.best_params is not None:
            net.set_parameters(*state.best_params)
        net.metadata = {"train_config": cfg.to_dict(), "n_train": n, "best_epoch": history.best_epoch,
                        "epochs_run": len(history.records), "stop_reason": stop_reason}
        return history


def fit(net, X, y, **kwargs):
    """``Trainer(net, config, **config_fields).fit(X, y, **fit_arguments)``.

    Fit arguments are X_val, y_val, callback, checkpoint_path and resume;
    ``config`` is an optional TrainConfig; every other keyword is a TrainConfig field.
    """
    fit_keys = ("X_val", "y_val", "callback", "checkpoint_path", "resume")
    fit_kwargs = {k: kwargs.pop(k) for k in fit_keys if k in kwargs}
    config = kwargs.pop("config", None)
    return Trainer(net, config, **kwargs).fit(X, y, **fit_kwargs)


# ---------------------------------------------------------------- evaluation
def evaluate(net, X, Y, chunk=EVAL_CHUNK, workspaces=None):
    """(mean data loss, accuracy or None) of the full network on (X, Y), in chunks of ``chunk`` rows.

    X (n, n_features) checked array of the net's dtype; Y int64 labels (n,) or
    targets (n, n_outputs). Accuracy is None for an identity output.
    ``workspaces``: a dict kept between calls (rows -> Workspace), so that
    repeated evaluations allocate nothing.
    """
    K = net._K
    n = X.shape[0]
    total = 0.0
    correct = 0
    if workspaces is None:
        workspaces = {}
    for start, stop, ws in chunked_workspaces(K, net.layer_sizes, n, net.dtype, chunk, workspaces):
        forward(K, net.weights, net.biases, K.to_device(X[start:stop]), ws)
        output_loss(K, net.output, ws, K.to_device(Y[start:stop]))
        total += float(K.to_host(ws.loss)[0]) * (stop - start)
        if net.output == "softmax":
            correct += int((K.to_host(ws.Z[-1]).argmax(axis=1) == Y[start:stop]).sum())
    accuracy = correct / n if net.output == "softmax" else None
    return total / n, accuracy


# ---------------------------------------------------------------- helpers
def _finite(*values):
    return all(x is None or math.isfinite(x) for x in values)


def _parameters_finite(net):
    K = net._K
    return all(np.isfinite(K.to_host(P)).all() for P in list(net.weights) + list(net.biases))


def _split(X, y, fraction, seed, stratified):
    """Carve a validation part: stratified by class for labels, a random subset for regression targets."""
    if stratified:
        from .datasets import train_validation_split

        return train_validation_split(X, y, fraction, seed)
    n = X.shape[0]
    n_val = int(round(fraction * n))
    if n_val == 0 or n_val == n:
        raise ValueError(f"validation_fraction={fraction!r} of {n} samples leaves an empty part")
    val = np.sort(np.random.default_rng(seed).permutation(n)[:n_val])
    is_val = np.zeros(n, dtype=bool)
    is_val[val] = True
    return X[~is_val], y[~is_val], X[is_val], y[is_val]


class _BestState:
    """Tracks the monitored value, the best epoch's parameters and the epochs since the last improvement."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.best_value = None
        self.best_params = None
        self.wait = 0

    def monitored(self, record):
        if record["val_loss"] is None:
            return record["train_loss"], False
        if self.cfg.monitor == "val_accuracy":
            return record["val_accuracy"], True
        return record["val_loss"], False

    def update(self, record, net):
        """Take the record in; True when it is the new best."""
        value, higher_is_better = self.monitored(record)
        tol = self.cfg.tol
        if self.best_value is None:
            improved = True
        elif higher_is_better:
            improved = value > self.best_value + tol
        else:
            improved = value < self.best_value - tol
        if improved:
            self.best_value = value
            self.best_params = net.get_parameters()
            self.wait = 0
        else:
            self.wait += 1
        return improved


class _Snapshot:
    """Host copies of the parameters and velocities at the start of an epoch, to roll back to."""

    def __init__(self, net, run):
        self.params = net.get_parameters()
        self.velocities = run.get_velocities()

    def restore(self, net, run):
        net.set_parameters(*self.params)
        run.set_velocities(self.velocities)


# ---------------------------------------------------------------- checkpoints
def _save_checkpoint(trainer, path, epoch, history, run, state, n):
    net = trainer.net
    arrays = persistence.model_arrays(net, {"train_config": trainer.config.to_dict()})
    meta = {"kind": _CHECKPOINT_KIND, "epoch": epoch, "n_train": n, "config": trainer.config.to_dict(),
            "history": history.to_dict(), "best_value": state.best_value, "wait": state.wait,
            "has_best": state.best_params is not None}
    arrays["checkpoint"] = np.array(json.dumps(meta))
    for l, (VW, Vb) in enumerate(zip(*run.get_velocities())):
        arrays[f"ckpt_vW{l}"] = VW
        arrays[f"ckpt_vb{l}"] = Vb
    if state.best_params is not None:
        for l, (W, b) in enumerate(zip(*state.best_params)):
            arrays[f"ckpt_bestW{l}"] = W
            arrays[f"ckpt_bestb{l}"] = b
    persistence.write_npz(path, arrays)


def _load_checkpoint(trainer, path, n, run, state):
    """Restore net, velocities and best state from a checkpoint; return (next epoch, history)."""
    net, cfg = trainer.net, trainer.config
    arrays = persistence.read_npz(path)
    if "checkpoint" not in arrays:
        raise ValueError(f"{path!r} is a model file, not a trainer checkpoint")
    meta = json.loads(str(arrays["checkpoint"]))
    if meta.get("kind") != _CHECKPOINT_KIND:
        raise ValueError(f"{path!r} is not a numba-mlp trainer checkpoint")
    layer_sizes, output, dtype, weights, biases, _ = persistence.parse_model(arrays, path)
    if layer_sizes != net.layer_sizes or output != net.output or dtype != net.dtype:
        raise ValueError(f"checkpoint {path!r} holds a {layer_sizes} {output} {np.dtype(dtype).name} network; "
                         f"this one is {net.layer_sizes} {net.output} {np.dtype(net.dtype).name}")
    saved = meta["config"]
    now = cfg.to_dict()
    changed = [k for k in _RESUME_FIXED if saved.get(k) != now[k]]
    if changed:
        raise ValueError(f"cannot resume from {path!r}: TrainConfig field(s) {changed} differ from the "
                         f"checkpoint's ({ {k: saved.get(k) for k in changed} })")
    if meta["n_train"] != n:
        raise ValueError(f"cannot resume from {path!r}: it was trained on {meta['n_train']} examples, "
                         f"this data has {n}")
    net.set_parameters(weights, biases)
    L = net.n_layers
    run.set_velocities(([arrays[f"ckpt_vW{l}"] for l in range(L)], [arrays[f"ckpt_vb{l}"] for l in range(L)]))
    state.best_value = meta["best_value"]
    state.wait = meta["wait"]
    if meta["has_best"]:
        state.best_params = ([arrays[f"ckpt_bestW{l}"] for l in range(L)],
                             [arrays[f"ckpt_bestb{l}"] for l in range(L)])
    return meta["epoch"] + 1, History.from_dict(meta["history"])


# ---------------------------------------------------------------- engines
def _make_runner(trainer, X, y, batch, l2, l1, keep):
    cfg = trainer.config
    if trainer.engine == "compiled":
        return _CompiledRunner(trainer.net, cfg, X, y, batch, l2, l1, keep)
    if trainer.engine == "device":
        from .epoch_cuda import CudaRunner
        return CudaRunner(trainer.net, cfg, X, y, batch, l2, l1, keep)
    if cfg.dropout_mode == "per_batch" and any(p < 1 for p in keep):
        return _ReducedPythonRunner(trainer.net, cfg, X, y, batch, l2, l1, keep)
    return _PythonRunner(trainer.net, cfg, X, y, batch, l2, l1, keep)


class _Runner:
    """Common state of the engines: the data, hyper-parameters and velocities."""

    def __init__(self, net, cfg, X, y, batch, l2, l1, keep):
        self.net = net
        self.K = net._K
        self.X = X
        self.y = y
        self.batch = batch
        self.l2, self.l1, self.keep = l2, l1, keep
        self.momentum = cfg.momentum
        self.seed = cfg.seed
        K = self.K
        if self.momentum > 0:
            self.vel_w = [K.zeros(tuple(W.shape), net.dtype) for W in net.weights]
            self.vel_b = [K.zeros(tuple(b.shape), net.dtype) for b in net.biases]
        else:
            self.vel_w = self.vel_b = None

    def get_velocities(self):
        """Host copies (vel_w, vel_b); zeros when momentum is 0."""
        net, K = self.net, self.K
        if self.vel_w is None:
            return ([np.zeros(tuple(W.shape), net.dtype) for W in net.weights],
                    [np.zeros(tuple(b.shape), net.dtype) for b in net.biases])
        return [K.to_host(V).copy() for V in self.vel_w], [K.to_host(V).copy() for V in self.vel_b]

    def set_velocities(self, velocities):
        if self.vel_w is None:
            return
        for dst, src in zip(self.vel_w + self.vel_b, velocities[0] + velocities[1]):
            dst[...] = self.K.to_device(np.asarray(src, dtype=self.net.dtype))

    def update(self, l, dW, db, lr):
        """One SGD step of layer l from its gradient buffers (the generic engines)."""
        K, net = self.K, self.net
        if self.momentum > 0:
            K.sgd_momentum_update(net.weights[l], dW, self.vel_w[l], lr, self.momentum, self.l2[l], self.l1[l])
            K.sgd_momentum_update(net.biases[l], db, self.vel_b[l], lr, self.momentum, 0.0, 0.0)
        else:
            K.sgd_update(net.weights[l], dW, lr, self.l2[l], self.l1[l])
            K.sgd_update(net.biases[l], db, lr, 0.0, 0.0)


class _PythonRunner(_Runner):
    """The generic engine: one Python iteration per minibatch on the backend's kernels.

    Buffers are made once per fit: a Workspace for full minibatches and a
    second for the last, shorter one (when n % batch_size != 0).
    """

    def __init__(self, net, cfg, X, y, batch, l2, l1, keep):
        super().__init__(net, cfg, X, y, batch, l2, l1, keep)
        K = self.K
        n = X.shape[0]
        sizes = net.layer_sizes
        self.parts = {}
        for rows in {batch, n % batch} - {0}:
            ws = Workspace(K, sizes, rows, net.dtype)
            masks = [K.empty((rows, sizes[j]), net.dtype) if keep[j] < 1 else None for j in range(net.n_layers)]
            x_host = np.empty((rows, sizes[0]), net.dtype)
            y_host = np.empty((rows,) + y.shape[1:], y.dtype)
            self.parts[rows] = (ws, masks, x_host, y_host)

    def epoch(self, perm, lr, step0):
        net, K = self.net, self.K
        n, L = self.X.shape[0], net.n_layers
        total = 0.0
        for s, start in enumerate(range(0, n, self.batch)):
            idx = perm[start:start + self.batch]
            ws, masks, x_host, y_host = self.parts[len(idx)]
            np.take(self.X, idx, axis=0, out=x_host)
            np.take(self.y, idx, axis=0, out=y_host)
            step = step0 + s
            for j, m in enumerate(masks):
                if m is not None:
                    K.dropout_mask(self.seed, step * L + j, self.keep[j], m)
            inputs = forward(K, net.weights, net.biases, K.to_device(x_host), ws, masks)
            output_loss(K, net.output, ws, K.to_device(y_host))
            loss = float(K.to_host(ws.loss)[0])
            if not math.isfinite(loss):
                return total, s, True
            total += loss * len(idx)
            backward(K, net.weights, inputs, ws, masks)
            for l in range(L):
                self.update(l, ws.dW[l], ws.db[l], lr)
        return total, -(-n // self.batch), False


class _ReducedPythonRunner(_Runner):
    """``per_batch`` dropout on a host backend, one Python iteration per minibatch: the reference
    for ``epoch_cpu.train_epoch_reduced`` (same gathers, same arithmetic, allocating as it goes)."""

    def epoch(self, perm, lr, step0):
        net, K = self.net, self.K
        dtype = net.dtype
        n, L = self.X.shape[0], net.n_layers
        sizes = net.layer_sizes
        total = 0.0
        mask_vecs = [np.empty(sizes[j], dtype) for j in range(L)]
        for s, start in enumerate(range(0, n, self.batch)):
            idx = perm[start:start + self.batch]
            step = step0 + s
            kept = []
            for j in range(L):
                if self.keep[j] < 1:
                    K.dropout_mask(self.seed, step * L + j, self.keep[j], mask_vecs[j])
                    kept.append(np.flatnonzero(mask_vecs[j]))
                else:
                    kept.append(np.arange(sizes[j]))
            kept.append(np.arange(sizes[L]))
            scales = [dtype(1.0 / p) for p in self.keep]
            a = self.X[idx][:, kept[0]] * scales[0]
            targets = self.y[idx]
            inputs, Zs, params = [a], [], []
            for l in range(L):
                rows = np.ix_(kept[l + 1], kept[l])
                Wc = np.ascontiguousarray(net.weights[l][rows])
                bc = np.ascontiguousarray(net.biases[l][kept[l + 1]])
                Z = np.empty((len(idx), Wc.shape[0]), dtype)
                K.matmul_nt(inputs[l], Wc, Z)
                if l == L - 1:
                    K.bias_add(Z, bc)
                else:
                    H = np.empty_like(Z)
                    K.bias_relu_forward(Z, bc, H)
                    H *= scales[l + 1]
                    inputs.append(H)
                Zs.append(Z)
                params.append((rows, Wc, bc))
            delta = np.empty_like(Zs[-1])
            probs = np.empty_like(Zs[-1])
            loss_buf = np.zeros(1, np.float64)
            if net.output == "softmax":
                K.softmax_cross_entropy(Zs[-1], targets, probs, delta, loss_buf)
            else:
                K.squared_error(Zs[-1], targets, delta, loss_buf)
            loss = float(loss_buf[0])
            if not math.isfinite(loss):
                return total, s, True
            total += loss * len(idx)
            for l in range(L - 1, -1, -1):
                rows, Wc, bc = params[l]
                dW = np.empty_like(Wc)
                db = np.empty_like(bc)
                K.matmul_tn(delta, inputs[l], dW)
                K.bias_grad(delta, db)
                if l > 0:
                    prev = np.empty_like(Zs[l - 1])
                    K.matmul_nn(delta, Wc, prev)
                    K.relu_backward(prev, Zs[l - 1], prev)
                    prev *= scales[l]
                    delta = prev
                self._update_compact(l, rows, kept[l + 1], Wc, bc, dW, db, lr)
        return total, -(-n // self.batch), False

    def _update_compact(self, l, rows, kept_out, Wc, bc, dW, db, lr):
        K, net = self.K, self.net
        if self.momentum > 0:
            VW = np.ascontiguousarray(self.vel_w[l][rows])
            Vb = np.ascontiguousarray(self.vel_b[l][kept_out])
            K.sgd_momentum_update(Wc, dW, VW, lr, self.momentum, self.l2[l], self.l1[l])
            K.sgd_momentum_update(bc, db, Vb, lr, self.momentum, 0.0, 0.0)
            self.vel_w[l][rows] = VW
            self.vel_b[l][kept_out] = Vb
        else:
            K.sgd_update(Wc, dW, lr, self.l2[l], self.l1[l])
            K.sgd_update(bc, db, lr, 0.0, 0.0)
        net.weights[l][rows] = Wc
        net.biases[l][kept_out] = bc


class _CompiledRunner(_Runner):
    """The cpu engine: every buffer made here once per fit, one ``mlp.epoch_cpu`` call per epoch."""

    def __init__(self, net, cfg, X, y, batch, l2, l1, keep):
        super().__init__(net, cfg, X, y, batch, l2, l1, keep)
        dtype = net.dtype
        sizes = net.layer_sizes
        L = net.n_layers
        k = sizes[-1]
        self.is_softmax = net.output == "softmax"
        self.labels = y if self.is_softmax else np.zeros(1, np.int64)
        self.targets = np.zeros((1, k), dtype) if self.is_softmax else y
        self.yb = np.empty(batch, np.int64)
        self.Tb = np.empty((batch, k), dtype)
        self.probs = np.empty((batch, k), dtype)
        self.loss = np.zeros(1, np.float64)
        self.l2_arr = np.array(l2, np.float64)
        self.l1_arr = np.array(l1, np.float64)
        self.keep_arr = np.array(keep, np.float64)
        self.reduced = cfg.dropout_mode == "per_batch" and any(p < 1 for p in keep)
        if self.reduced:
            # flat buffers, viewed at each step's compact shapes
            self.A = tuple(np.empty(batch * sizes[l], dtype) for l in range(L))
            self.Z = tuple(np.empty(batch * sizes[l + 1], dtype) for l in range(L))
            self.delta = tuple(np.empty(batch * sizes[l + 1], dtype) for l in range(L))
            self.Wc = tuple(np.empty(sizes[l + 1] * sizes[l], dtype) for l in range(L))
            self.VWc = tuple(np.empty(sizes[l + 1] * sizes[l], dtype) for l in range(L))
            self.dWc = tuple(np.empty(sizes[l + 1] * sizes[l], dtype) for l in range(L))
            self.bc = tuple(np.empty(sizes[l + 1], dtype) for l in range(L))
            self.Vbc = tuple(np.empty(sizes[l + 1], dtype) for l in range(L))
            self.dbc = tuple(np.empty(sizes[l + 1], dtype) for l in range(L))
            self.kept = tuple(np.arange(sizes[j], dtype=np.int64) for j in range(L + 1))
            self.widths = np.zeros(L + 1, np.int64)
            self.mask_vec = tuple(np.empty(sizes[j], dtype) for j in range(L))
        else:
            self.A = tuple(np.empty((batch, sizes[l]), dtype) for l in range(L))
            self.Z = tuple(np.empty((batch, sizes[l + 1]), dtype) for l in range(L))
            self.delta = tuple(np.empty((batch, sizes[l + 1]), dtype) for l in range(L))
            self.dW = tuple(np.empty((sizes[l + 1], sizes[l]), dtype) for l in range(L))
            self.db = tuple(np.empty(sizes[l + 1], dtype) for l in range(L))
            self.masks = tuple(np.empty((batch, sizes[j]) if keep[j] < 1 else (1, 1), dtype) for j in range(L))

    def epoch(self, perm, lr, step0):
        from . import epoch_cpu

        net = self.net
        weights = tuple(net.weights)
        biases = tuple(net.biases)
        # without momentum the velocity arguments are never touched; the
        # parameters stand in so the compiled signature stays the same
        vel_w = weights if self.vel_w is None else tuple(self.vel_w)
        vel_b = biases if self.vel_b is None else tuple(self.vel_b)
        common_head = (self.X, self.labels, self.targets, self.is_softmax, perm, self.batch,
                       weights, biases, vel_w, vel_b)
        common_tail = (self.yb, self.Tb, self.probs, self.loss, lr, self.momentum,
                       self.l2_arr, self.l1_arr, self.keep_arr, self.seed, step0)
        if self.reduced:
            total, steps, diverged = epoch_cpu.train_epoch_reduced(
                *common_head, self.A, self.Z, self.delta, self.Wc, self.bc, self.VWc, self.Vbc,
                self.dWc, self.dbc, self.kept, self.widths, self.mask_vec, *common_tail)
        else:
            total, steps, diverged = epoch_cpu.train_epoch(
                *common_head, self.A, self.Z, self.delta, self.dW, self.db, self.masks, *common_tail)
        return total, steps, diverged
