"""``TrainConfig``: the hyper-parameters of a training run, checked in one place.

The defaults are ``mlp.defaults.TRAINING``. ``validate(net)`` names the first
bad field (``TrainConfig.<field> ...``); ``per_layer(net)`` expands the
per-layer strengths and keep probabilities to one value per layer.
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from . import checks
from .defaults import TRAINING

DROPOUT_MODES = ("per_sample", "per_batch")
MONITORS = ("val_loss", "val_accuracy")
OPTIMIZERS = ("sgd", "adam")
# How the learning rate of an epoch is set (``mlp.trainer``): "decay" lr / (1 + lr_decay * epoch);
# "cosine" from lr down to 0 over the epochs (half a cosine); scikit-learn's "invscaling"
# lr / (samples seen + 1) ** power_t and "adaptive" (lr / 5 after ``patience`` epochs without
# improvement, stopping when it would fall below 1e-6).
LR_SCHEDULES = ("decay", "cosine", "invscaling", "adaptive")
# The schedules a linear warm-up can precede: those that are a function of the epoch alone.
WARMUP_SCHEDULES = ("decay", "cosine")


@dataclass
class TrainConfig:
    """Hyper-parameters of ``Trainer``; ``validate(net)`` checks them against a network.

    Attributes
    ----------
    epochs : int >= 1
    batch_size : int >= 1 (clamped to the number of training examples)
    learning_rate : float > 0
    optimizer : "sgd" (with ``momentum``, ``nesterov``) or "adam" (``beta_1``, ``beta_2``, ``epsilon``),
        scikit-learn's update rules (``mlp.engines.base``)
    momentum : float in [0, 1); 0 is plain SGD
    nesterov : bool; Nesterov's momentum (needs momentum > 0 to matter)
    beta_1, beta_2 : float in [0, 1); epsilon : float > 0 (Adam)
    lr_schedule : "decay", "cosine", "invscaling" or "adaptive" (``LR_SCHEDULES``)
    lr_decay : float >= 0; with "decay", epoch e uses learning_rate / (1 + lr_decay * e)
    warmup_epochs : int >= 0, less than ``epochs``; with "decay" or "cosine", epoch e < warmup_epochs
        uses learning_rate * (e + 1) / warmup_epochs, and the schedule starts after them
    power_t : float >= 0; with "invscaling", learning_rate / (samples seen + 1) ** power_t
    alpha : float >= 0; scikit-learn's L2: the penalty (alpha/2)||W||^2 of every weight
        matrix divided by the rows of the minibatch (adds alpha / rows to each l2)
    l2, l1 : float >= 0 or one per weight matrix (the lecture's alpha(j), beta(j))
    keep_prob : float in (0, 1] or one per non-output layer, input first
    dropout_mode : "per_sample" or "per_batch" (see ``mlp.trainer``)
    validation_fraction : float in [0, 1); > 0 with no explicit validation set
        carves a stratified validation part out of the training data
    early_stopping : bool; stop after ``patience`` epochs without the monitored
        value improving by more than ``tol``, and restore the best epoch
    patience : int >= 1
    tol : float >= 0
    monitor : "val_loss" or "val_accuracy" (softmax only); without validation
        data the training loss is monitored
    seed : int in [0, 2**63); shuffling, dropout masks and the validation split
    """

    epochs: int = TRAINING["epochs"]
    batch_size: int = TRAINING["batch_size"]
    learning_rate: float = TRAINING["learning_rate"]
    optimizer: str = TRAINING["optimizer"]
    momentum: float = TRAINING["momentum"]
    nesterov: bool = TRAINING["nesterov"]
    beta_1: float = TRAINING["beta_1"]
    beta_2: float = TRAINING["beta_2"]
    epsilon: float = TRAINING["epsilon"]
    lr_schedule: str = TRAINING["lr_schedule"]
    lr_decay: float = TRAINING["lr_decay"]
    warmup_epochs: int = TRAINING["warmup_epochs"]
    power_t: float = TRAINING["power_t"]
    alpha: float = TRAINING["alpha"]
    l2: Union[float, Sequence[float]] = TRAINING["l2"]
    l1: Union[float, Sequence[float]] = TRAINING["l1"]
    keep_prob: Union[float, Sequence[float]] = TRAINING["keep_prob"]
    dropout_mode: str = TRAINING["dropout_mode"]
    validation_fraction: float = TRAINING["validation_fraction"]
    early_stopping: bool = TRAINING["early_stopping"]
    patience: int = TRAINING["patience"]
    tol: float = TRAINING["tol"]
    monitor: str = TRAINING["monitor"]
    seed: int = TRAINING["seed"]

    def validate(self, net=None):
        """Raise ValueError/TypeError naming the first bad field; per-layer lengths are checked against ``net``."""
        def name(field):
            return f"TrainConfig.{field}"

        for field in ("epochs", "batch_size", "patience"):
            checks.check_int(name(field), getattr(self, field), minimum=1)
        checks.check_real(name("learning_rate"), self.learning_rate, 0, math.inf, low_open=True)
        checks.check_real(name("momentum"), self.momentum, 0, 1, high_open=True)
        checks.check_choice(name("optimizer"), self.optimizer, OPTIMIZERS)
        checks.check_bool(name("nesterov"), self.nesterov)
        checks.check_real(name("beta_1"), self.beta_1, 0, 1, high_open=True)
        checks.check_real(name("beta_2"), self.beta_2, 0, 1, high_open=True)
        checks.check_real(name("epsilon"), self.epsilon, 0, math.inf, low_open=True)
        checks.check_choice(name("lr_schedule"), self.lr_schedule, LR_SCHEDULES)
        checks.check_real(name("lr_decay"), self.lr_decay, 0)
        checks.check_int(name("warmup_epochs"), self.warmup_epochs, minimum=0)
        if self.warmup_epochs >= self.epochs:
            raise ValueError(f"TrainConfig.warmup_epochs must be less than epochs ({self.epochs}); "
                             f"got {self.warmup_epochs}")
        if self.warmup_epochs and self.lr_schedule not in WARMUP_SCHEDULES:
            raise ValueError(f"TrainConfig.warmup_epochs applies to lr_schedule {' or '.join(WARMUP_SCHEDULES)}, "
                             f"not {self.lr_schedule!r}")
        checks.check_real(name("power_t"), self.power_t, 0)
        checks.check_real(name("alpha"), self.alpha, 0)
        checks.check_real(name("validation_fraction"), self.validation_fraction, 0, 1, high_open=True)
        checks.check_real(name("tol"), self.tol, 0)
        checks.check_bool(name("early_stopping"), self.early_stopping)
        checks.check_choice(name("dropout_mode"), self.dropout_mode, DROPOUT_MODES)
        checks.check_choice(name("monitor"), self.monitor, MONITORS)
        checks.check_seed(name("seed"), self.seed)
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
                    out.append(checks.check_keep_probs(self.keep_prob, net.n_layers))
                else:
                    out.append(checks.per_layer(field, getattr(self, field), net.n_layers))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"TrainConfig.{field}: {exc}") from None
        return tuple(out)

    def with_overrides(self, overrides):
        """A copy with some fields replaced; TypeError naming unknown fields."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise TypeError(f"unknown TrainConfig field(s) {unknown}; known: {sorted(fields)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self):
        """A JSON-ready dict (sequences as lists)."""
        d = dataclasses.asdict(self)
        for k, val in d.items():
            if isinstance(val, (tuple, list, np.ndarray)):
                d[k] = [float(x) for x in val]
            elif isinstance(val, np.generic):
                d[k] = val.item()
        return d
