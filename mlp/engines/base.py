"""``Engine``: what every backend's training loop offers the trainer.

The trainer makes one engine per fit and asks it for one thing per epoch:

* ``run_epoch(order, learning_rate, first_step)``: train one epoch, visiting
  the examples in ``order`` in minibatches, and return an ``EpochResult``;

and, between epochs, for checkpoints and for rolling back a diverged epoch:

* ``get_optimizer_state()`` / ``set_optimizer_state(state)``: the optimizer's
  per-parameter state as host arrays (SGD with momentum: the velocities);

and, before any of it, ``check_supported(config)``: whether the engine can run
this configuration (``dropout_modes`` says which dropout modes it implements).

What every engine computes, step for step, so that all backends agree to
rounding (bit for bit on one backend run after run):

* step ``t`` counts minibatches from the first epoch (``first_step`` is the
  epoch's first); its dropout mask for masked layer ``j`` (0 = input, then the
  hidden layers) is stream ``t * n_layers + j`` of the backend's
  ``dropout_mask(seed, stream, keep, out)``;
* the update is ``sgd_update`` (or ``sgd_momentum_update`` when momentum > 0)
  with the layer's l2 / l1 on weights and none on biases, last layer first
  (W[l] changes only after delta[l] has gone back through it);
* a non-finite minibatch loss ends the epoch's sum: ``EpochResult.steps`` is
  that step's number in the epoch and ``diverged`` is True (the trainer then
  restores the last good epoch).
"""
from typing import NamedTuple

import numpy as np

# The optimizer state of SGD with momentum: one velocity per weight matrix and per bias vector.
OPTIMIZER_STATE = ("vW", "vb")


class EpochResult(NamedTuple):
    """What one epoch reports: the summed minibatch data loss (each times its rows), steps done, divergence."""

    loss_sum: float
    steps: int
    diverged: bool


class Engine:
    """The common state of every engine: data, hyper-parameters and the optimizer state.

    Parameters
    ----------
    net : mlp.MLP on the engine's backend; its parameters are updated in place
        (``net.weights`` / ``net.biases`` are read at every epoch, so
        ``net.set_parameters`` between epochs is honoured).
    config : mlp.TrainConfig (momentum, seed and dropout_mode are used here)
    X : (n, n_features) host array of the net's dtype
    y : (n,) int64 labels (softmax) or (n, n_outputs) targets (identity), host
    batch : int, 1 <= batch <= n
    l2, l1 : one float per weight matrix
    keep : one keep probability per non-output layer, input first

    Subclasses set ``backend`` and ``dropout_modes`` and implement ``run_epoch``.
    """

    backend = None
    dropout_modes = ("per_sample",)

    @classmethod
    def check_supported(cls, config):
        """ValueError when this engine cannot run ``config`` (a dropout mode it does not implement)."""
        if config.dropout_mode not in cls.dropout_modes:
            raise ValueError(f"dropout_mode {config.dropout_mode!r} is not implemented on the {cls.backend!r} "
                             f"backend (its engine has {list(cls.dropout_modes)})")

    def __init__(self, net, config, X, y, batch, l2, l1, keep):
        if net.backend != self.backend:
            raise ValueError(f"{type(self).__name__} trains networks on the {self.backend!r} backend; "
                             f"this one uses {net.backend!r}")
        self.check_supported(config)
        self.net = net
        self.K = net.kernels
        self.X = X
        self.y = y
        self.batch = batch
        self.l2, self.l1, self.keep = l2, l1, keep
        self.momentum = config.momentum
        self.seed = config.seed
        self.reduced = config.dropout_mode == "per_batch" and any(p < 1 for p in keep)
        if self.momentum > 0:
            self.vel_w = [self.K.zeros(tuple(W.shape), net.dtype) for W in net.weights]
            self.vel_b = [self.K.zeros(tuple(b.shape), net.dtype) for b in net.biases]
        else:
            self.vel_w = self.vel_b = None

    def run_epoch(self, order, learning_rate, first_step):
        """Train one epoch on the examples in ``order`` ((n,) int64); return an ``EpochResult``."""
        raise NotImplementedError

    # ------------------------------------------------------------ optimizer state
    def get_optimizer_state(self):
        """Host copies {"vW": [...], "vb": [...]} of the velocities; zeros when momentum is 0."""
        net, K = self.net, self.K
        if self.vel_w is None:
            return {"vW": [np.zeros(tuple(W.shape), net.dtype) for W in net.weights],
                    "vb": [np.zeros(tuple(b.shape), net.dtype) for b in net.biases]}
        return {"vW": [K.to_host(V).copy() for V in self.vel_w], "vb": [K.to_host(V).copy() for V in self.vel_b]}

    def set_optimizer_state(self, state):
        """Copy host arrays shaped as ``get_optimizer_state`` returns into the engine; ignored without momentum."""
        if self.vel_w is None:
            return
        dtype, K = self.net.dtype, self.K
        self.vel_w = [K.to_device(np.array(V, dtype=dtype)) for V in state["vW"]]
        self.vel_b = [K.to_device(np.array(V, dtype=dtype)) for V in state["vb"]]
