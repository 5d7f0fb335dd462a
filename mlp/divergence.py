"""Divergence beyond NaN: the full network on a fixed sample of the training data, after every epoch.

A loss that becomes NaN or inf is plain to see. A learning rate far too large
often breaks a network without one: the loss jumps to many times its start, or
every ReLU of a layer dies (every tanh unit saturates) and the network gives
the same answer for every input, and training would run on and save it.
``DivergenceWatch`` measures the parameters a fit starts from on ``WATCH_ROWS``
training examples, then tells the trainer (``mlp.trainer``) after each epoch
whether that epoch has diverged: the trainer then undoes it and stops.
"""
import math

import numpy as np
from scipy.special import xlogy

from kernels.codes import activation_code

from .propagation import Workspace, forward, output_loss

#: Training examples on which every epoch's network is checked for divergence (evenly spaced, fixed
#: for the fit): enough to see a dead layer and a loss that explodes, a few milliseconds per epoch.
WATCH_ROWS = 1024
#: An epoch whose loss on the watched examples is more than this multiple of the start's has
#: diverged. Runs that learn stay far below it: over the trainer, recipe, model, lecture, CLI, engine,
#: thread and search tests (1381 epochs of every optimizer, schedule, output and activation) the
#: largest ratio was 1.19 (but for the test built to diverge slowly: 5.9, 66, then NaN), and 10 epochs
#: on digits (SGD with momentum 0.9 up to lr 0.3, Adam up to 0.1, tanh, logistic) end every epoch at
#: 0.07-0.47 of the start; broken runs go far above it: tanh at lr 1 reaches 37 (test accuracy 0.19),
#: at lr 3 188 (0.10), relu at lr 1000 1.2e3 (every hidden unit dead as well).
EXPLOSION_FACTOR = 10.0


def constant_guess_loss(output, y):
    """The data loss of the best constant prediction on targets ``y``: what a network that learnt nothing scores.

    softmax: the class frequencies' entropy; identity: half the summed variance of the targets;
    logistic: the summed binary entropy of each output's mean; exp: the half Poisson deviance of
    predicting each output's mean. The losses are ``kernels.numpy_backend``'s, averaged over rows.
    """
    if output == "softmax":
        frequencies = np.bincount(y) / len(y)
        return float(-xlogy(frequencies, frequencies).sum())
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    mean = y.mean(axis=0)
    if output == "identity":
        return float(0.5 * ((y - mean) ** 2).sum(axis=1).mean())
    if output == "logistic":
        return float(-(xlogy(mean, mean) + xlogy(1 - mean, 1 - mean)).sum())
    return float((xlogy(y, y) - xlogy(y, mean)).sum(axis=1).mean())  # exp: -y + mean averages to zero


class DivergenceWatch:
    """The full network on ``WATCH_ROWS`` fixed training examples: has training gone wrong beyond NaN?

    ``start`` measures the parameters the fit starts from; ``problem`` then tells, after each epoch,
    whether the loss on those examples exploded (more than ``EXPLOSION_FACTOR`` times the start's, and
    above the loss of the best constant prediction, ``constant_guess_loss``) or
    a hidden layer that responded to the input at the start now gives them all the same output.
    """

    def __init__(self, net, X, y):
        n = X.shape[0]
        # evenly spaced rows: they cover the whole training set without drawing from any generator
        rows = np.unique(np.linspace(0, n - 1, min(n, WATCH_ROWS)).astype(np.int64))
        K = net.kernels
        self.rows = len(rows)
        self.X, self.y = K.to_device(X[rows]), K.to_device(y[rows])
        self.constant_guess = constant_guess_loss(net.output, y[rows])
        self.workspace = Workspace(K, net.layer_sizes, self.rows, net.dtype)
        self.start_loss = None
        self.constant_at_start = None

    def measure(self, net):
        """(data loss on the watched rows, for each hidden layer whether its output is the same for all of them)."""
        K, ws = net.kernels, self.workspace
        with np.errstate(over="ignore", invalid="ignore"):
            forward(K, net.weights, net.biases, self.X, ws, activation=activation_code(net.activation))
            output_loss(K, net.output, ws, self.y)
        constant = [bool((np.ptp(K.to_host(A), axis=0) == 0).all()) for A in ws.A[1:]]
        return float(K.to_host(ws.loss)[0]), constant

    def start(self, net, history):
        """Measure the parameters the fit starts from; the start loss is ``history.start_loss`` when it has
        one (a resumed fit compares with the start of the run it continues), else recorded there."""
        loss, self.constant_at_start = self.measure(net)
        if history.start_loss is None and math.isfinite(loss):  # no multiple of an infinite start means anything
            history.start_loss = loss
        self.start_loss = history.start_loss

    def problem(self, net):
        """None while training is healthy, else what went wrong (for the warning)."""
        loss, constant = self.measure(net)
        for layer, (now, before) in enumerate(zip(constant, self.constant_at_start), start=1):
            if now and not before:
                return (f"every unit of hidden layer {layer} gives the same output for all {self.rows} watched "
                        f"training examples (dead or saturated {net.activation} units): the network has become "
                        "a constant")
        # Worse than the constant guess as well: a fit that starts from trained parameters (a tiny start
        # loss) may rise many times its start for an epoch and still be a network that has learnt.
        if self.start_loss and not (loss <= EXPLOSION_FACTOR * self.start_loss
                                    or loss <= self.constant_guess):  # NaN included
            return (f"the loss on {self.rows} training examples rose to {loss:.3g}, more than "
                    f"{EXPLOSION_FACTOR:g} times its start ({self.start_loss:.3g}) and above the loss of "
                    f"the best constant guess ({self.constant_guess:.3g})")
        return None
