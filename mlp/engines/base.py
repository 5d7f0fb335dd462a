"""``Engine``: what every backend's training loop offers the trainer.

The trainer makes one engine per fit and asks it for one thing per epoch:

* ``run_epoch(order, learning_rate, first_step)``: train one epoch, visiting
  the examples in ``order`` in minibatches, and return an ``EpochResult``;

and, between epochs, for checkpoints and for rolling back a diverged epoch:

* ``get_optimizer_state()`` / ``set_optimizer_state(state)``: the optimizer's
  per-parameter state as host arrays (``OPTIMIZER_STATE`` names it per update rule);

and, before any of it, ``check_supported(config)``: whether the engine can run
this configuration (``dropout_modes`` says which dropout modes it implements).

What every engine computes, step for step, so that all backends agree to
rounding (bit for bit on one backend run after run):

* step ``t`` counts minibatches from the first epoch (``first_step`` is the
  epoch's first); its dropout mask for masked layer ``j`` (0 = input, then the
  hidden layers) is stream ``t * n_layers + j`` of the backend's
  ``dropout_mask(seed, stream, keep, out)``;
* the update rule (``update_rule(config)``) is one of ``UPDATE_RULES``: plain
  ``sgd_update``, ``sgd_momentum_update`` (momentum > 0), ``sgd_nesterov_update``
  (momentum > 0 and nesterov) or ``adam_update`` (optimizer "adam", step size
  ``adam_step_size(learning_rate, beta_1, beta_2, t + 1)``), with the layer's
  l1 and an L2 strength of ``l2[l] + alpha / nb`` on weights (``alpha`` is
  scikit-learn's: its penalty (alpha/2)||W||^2 is divided by the minibatch's
  rows nb, or by the sum of their sample weights) and none on biases, last
  layer first (W[l] changes only after delta[l] has gone back through it);
* with ``sample_weight``, a minibatch's loss and gradient are weighted as
  ``mlp.propagation.weight_rows`` says (engines without ``weighted`` refuse them);
* a non-finite minibatch loss ends the epoch's sum: ``EpochResult.steps`` is
  that step's number in the epoch and ``diverged`` is True (the trainer then
  restores the last good epoch).
"""
from typing import NamedTuple

import numpy as np

from kernels.codes import activation_code, output_code
from kernels.numpy_backend import adam_step_size

#: How an engine updates the parameters after each minibatch (see the module docstring).
UPDATE_RULES = ("sgd", "momentum", "nesterov", "adam")

#: The optimizer state of each rule: per-layer arrays shaped like the weights ("...W") or the biases
#: ("...b"): the velocities v of momentum, Adam's first and second moments m and v.
OPTIMIZER_STATE = {"sgd": (), "momentum": ("vW", "vb"), "nesterov": ("vW", "vb"), "adam": ("mW", "mb", "vW", "vb")}


def update_rule(config):
    """The update rule a ``TrainConfig`` asks for: one of ``UPDATE_RULES``."""
    if config.optimizer == "adam":
        return "adam"
    if config.momentum > 0:
        return "nesterov" if config.nesterov else "momentum"
    return "sgd"


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
    config : mlp.TrainConfig (the optimizer's fields, alpha, seed and dropout_mode are used here)
    X : (n, n_features) host array of the net's dtype
    y : (n,) int64 labels (softmax) or (n, n_outputs) targets (identity), host
    batch : int, 1 <= batch <= n
    l2, l1 : one float per weight matrix
    keep : one keep probability per non-output layer, input first
    sample_weight : (n,) float64 host array >= 0, or None (every example counts once)

    Subclasses set ``backend``, ``dropout_modes`` and ``weighted`` (whether they take
    sample weights) and implement ``run_epoch``.

    Attributes (beside the arguments)
    ----------
    rule : one of ``UPDATE_RULES``
    state : {key: per-layer arrays on the backend} for the keys ``OPTIMIZER_STATE[rule]``, zeros at first
    activation, output : the codes (``kernels.codes``) of the net's hidden activation and output layer
    """

    backend = None
    dropout_modes = ("per_sample",)
    weighted = False

    @classmethod
    def check_supported(cls, config):
        """ValueError when this engine cannot run ``config`` (a dropout mode it does not implement)."""
        if config.dropout_mode not in cls.dropout_modes:
            raise ValueError(f"dropout_mode {config.dropout_mode!r} is not implemented on the {cls.backend!r} "
                             f"backend (its engine has {list(cls.dropout_modes)})")

    def __init__(self, net, config, X, y, batch, l2, l1, keep, sample_weight=None):
        if sample_weight is not None and not self.weighted:
            raise ValueError(f"sample weights are not implemented on the {self.backend!r} backend's engine; "
                             "train on 'cpu' or 'numpy'")
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
        self.sample_weight = sample_weight
        self.momentum = config.momentum
        self.alpha = config.alpha
        self.beta_1, self.beta_2, self.epsilon = config.beta_1, config.beta_2, config.epsilon
        self.seed = config.seed
        self.activation = activation_code(net.activation)
        self.output = output_code(net.output)
        self.reduced = config.dropout_mode == "per_batch" and any(p < 1 for p in keep)
        self.rule = update_rule(config)
        self.state = {key: [self.K.zeros(tuple(P.shape), net.dtype) for P in self._like(key)]
                      for key in OPTIMIZER_STATE[self.rule]}

    def _like(self, key):
        """The parameters a state key is shaped like: the weights ("...W") or the biases ("...b")."""
        return self.net.weights if key.endswith("W") else self.net.biases

    def l2_step(self, l, weight):
        """The L2 strength on layer l's weights in a minibatch of total ``weight`` (its rows, or the sum of
        their sample weights): l2[l] + alpha / weight (no alpha term for a minibatch of weight 0)."""
        return self.l2[l] + (self.alpha / weight if weight > 0 else 0.0)

    def run_epoch(self, order, learning_rate, first_step):
        """Train one epoch on the examples in ``order`` ((n,) int64); return an ``EpochResult``."""
        raise NotImplementedError

    def update_layer(self, l, W, b, dW, db, state, lr, weight, step):
        """Layer l's step of the update rule on (W, b) from their gradients, with the backend's layer kernels.

        ``state``: {key: layer l's array} of the rule's optimizer state; ``weight``: the minibatch's
        rows or sample-weight sum (alpha's L2 is divided by it); ``step``: the global step, from 0.
        The numpy and cuda engines call this; the cpu engine's compiled twin is
        ``mlp.engines.cpu_steps.gradient_and_update``.
        """
        K, l2, l1 = self.K, self.l2_step(l, weight), self.l1[l]
        if self.rule == "adam":
            step_size = adam_step_size(lr, self.beta_1, self.beta_2, step + 1)
            K.layer_adam_update(W, dW, state["mW"], state["vW"], b, db, state["mb"], state["vb"], step_size,
                                self.beta_1, self.beta_2, self.epsilon, l2, l1)
        elif self.rule == "nesterov":
            K.layer_sgd_nesterov_update(W, dW, state["vW"], b, db, state["vb"], lr, self.momentum, l2, l1)
        elif self.rule == "momentum":
            K.layer_sgd_momentum_update(W, dW, state["vW"], b, db, state["vb"], lr, self.momentum, l2, l1)
        else:
            K.layer_sgd_update(W, dW, b, db, lr, l2, l1)

    def layer_state(self, l):
        """{key: layer l's array} of the optimizer state."""
        return {key: arrays[l] for key, arrays in self.state.items()}

    # ------------------------------------------------------------ optimizer state
    def get_optimizer_state(self):
        """Host copies {key: [per-layer arrays]} of the optimizer state (``OPTIMIZER_STATE[self.rule]``)."""
        return {key: [self.K.to_host(P).copy() for P in arrays] for key, arrays in self.state.items()}

    def set_optimizer_state(self, state):
        """Copy host arrays shaped as ``get_optimizer_state`` returns into the engine.

        ValueError when ``state`` lacks a key of this rule or an array has the wrong shape.
        """
        dtype, K = self.net.dtype, self.K
        new = {}
        for key in OPTIMIZER_STATE[self.rule]:
            if key not in state:
                raise ValueError(f"optimizer state for the {self.rule!r} rule needs {list(OPTIMIZER_STATE[self.rule])}; "
                                 f"got {sorted(state)}")
            arrays = [np.array(P, dtype=dtype) for P in state[key]]  # copies: the engine updates them in place
            shapes = [tuple(P.shape) for P in self._like(key)]
            if [P.shape for P in arrays] != shapes:
                raise ValueError(f"optimizer state {key!r}: expected shapes {shapes}; got {[P.shape for P in arrays]}")
            new[key] = [K.to_device(P) for P in arrays]
        self.state = new
