"""The cpu epoch targets at every batch size and both widths: Trainer, estimator and GEMM floor, round-robin.

The issue holds the cpu backend's epoch of 784-H-10 (float32, plain SGD at
learning rate 0.05, no dropout) to these, at every batch size from 32 to 1024
and for H = 256 and 1024:

* at most 1.15x its GEMM floor: the five products of one step of that shape
  (``bench_training.gemm_floor_step`` on the cpu backend's matmul kernels,
  checked against NumPy), the median step times the steps of an epoch. The
  epoch is the minibatch loop as the fit's History clocks it (``LOOP``); the
  whole fit, its input checks and set-up included, is timed too;
* never slower at a larger batch;
* no slower through ``mlp.MLPClassifier.fit`` on float32 input (solver "sgd",
  no momentum, alpha 0, one epoch, shuffled, nothing held out: early_stopping
  is off) than through ``mlp.Trainer``;

and at H = 256, beside the cpu epoch at batch 64 and 512 (``PEER_BATCHES``):
PyTorch (>= 2.5x slower at 64, >= 1.5x at 512), the numpy backend (>= 1.5x
slower) and the cpu epoch with Adam (<= 1.1x the SGD epoch).

Ratios are the point, not absolute times, so the wide net trains on fewer rows
(``ROWS``); the contenders of a shape all see the same rows. Each round visits
every shape and runs its contenders once each, in rotating order, then an
epoch's worth of floor steps: a load that comes and goes hits the contenders of
a shape, and the shapes, alike. A contender's model is built outside its timed
call and that build is timed too (``model_seconds``), because an estimator's
``fit`` builds its network: the estimator ratio compares build + fit with
build + fit. The share of the CPUs other processes used is recorded per round
(``others_cpu_share``): on a shared 2-core machine one busy neighbour stalls
2-thread BLAS calls many times over, and a round it hit should not be trusted.
report.py reads role "epoch_sweep". Under ``--benchmark-disable``
one round runs at two batch sizes on 1,024 rows, untimed, checking every
contender's loss and every floor against NumPy.
"""
import math
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from bench_training import (NET, SMOKE_FLOOR_STEPS, SMOKE_ROWS, WARMUP_ROWS, Contender, gemm_floor_step,
                            mlp_contender, torch_contender)
from cases import LEARNING_RATE
from machine_load import busy_ticks, others_share
from mlp import MLPClassifier
from mlp.datasets import make_synthetic

HIDDEN_WIDTHS = (256, 1024)
BATCHES, SMOKE_BATCHES = (32, 64, 128, 256, 512, 1024), (64, 512)
ROWS = {256: 60_000, 1024: 20_000}  # the wide net's epoch on 20,000 rows takes about as long as the small one's
PEER_HIDDEN, PEER_BATCHES = 256, (64, 512)
ROUNDS = 5
FLOOR = "GEMM floor"
LOOP = "numba-mlp cpu epoch loop"  # the cpu SGD fit's one epoch as its History clocks it: no set-up, no checks


@pytest.fixture(scope="module")
def data(smoke):
    """(X float32, y int64): enough Fashion-MNIST-shaped rows for the largest of ``ROWS``."""
    dataset = make_synthetic(n_train=SMOKE_ROWS if smoke else max(ROWS.values()), n_test=1, seed=0)
    return dataset.X_train, dataset.y_train


class Shape(NamedTuple):
    hidden: int
    batch: int
    rows: int

    @property
    def net(self):
        return (NET[0], self.hidden, NET[-1])

    @property
    def steps_per_epoch(self):
        """As the floor counts them: the last, partial minibatch counts for its share of a full one."""
        return self.rows / self.batch


def estimator_contender(X, y, hidden, batch):
    """``mlp.MLPClassifier`` set up to train as the Trainer contender does: one epoch of plain SGD on the cpu."""
    def new_model():
        return MLPClassifier(hidden_layer_sizes=(hidden,), solver="sgd", momentum=0, nesterovs_momentum=False,
                             alpha=0, learning_rate_init=LEARNING_RATE, batch_size=batch, max_iter=1,
                             random_state=0, shuffle=True, threads=None)  # the session's thread limit

    def train(model, rows=len(X)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=1 is the point
            model.fit(X[:rows], y[:rows])
        # the same work as the Trainer's epoch: not float64, not another backend, not a held-out part
        assert model.net_.backend == "cpu" and model.coefs_[0].dtype == np.float32
        assert list(model.net_.layer_sizes) == [X.shape[1], hidden, NET[-1]] and model.t_ == rows
        assert model.n_iter_ == 1 and np.isfinite(model.loss_)

    return Contender("mlp.MLPClassifier", "none", new_model, train)


@dataclass
class ShapeRun:
    """The contenders and the floor of one shape, and the seconds each took, one entry per round."""
    shape: Shape
    contenders: list
    floor_step: Callable
    seconds: dict = field(default_factory=dict)        # (implementation, optimizer) -> [train seconds]
    model_seconds: dict = field(default_factory=dict)  # (implementation, optimizer) -> [build seconds]
    floor_seconds: list = field(default_factory=list)
    loop_seconds: list = field(default_factory=list)    # the cpu SGD epoch as its History clocks it

    @classmethod
    def at(cls, shape, X, y):
        X, y = X[:shape.rows], y[:shape.rows]
        b, net = shape.batch, shape.net
        loop_seconds = []
        contenders = [mlp_contender(X, y, "cpu", b, "none", loop_seconds, net=net),
                      estimator_contender(X, y, shape.hidden, b)]
        if shape.hidden == PEER_HIDDEN and b in PEER_BATCHES:
            contenders += [mlp_contender(X, y, "cpu", b, "none", net=net, optimizer="adam"),
                           mlp_contender(X, y, "numpy", b, "none", net=net), torch_contender(X, y, b, False, net=net)]
        return cls(shape, contenders, gemm_floor_step("cpu", b, net), loop_seconds=loop_seconds)

    def warm_up(self):
        """JIT compilation and first calls, with at least two minibatches (one full), outside every timing."""
        for contender in self.contenders:
            contender.warm_up(min(self.shape.rows, max(WARMUP_ROWS, 2 * self.shape.batch)))

    def run_round(self, round_number, smoke):
        shift = round_number % len(self.contenders)
        for contender in self.contenders[shift:] + self.contenders[:shift]:
            key = (contender.implementation, contender.optimizer)
            start = time.perf_counter()
            model = contender.new_model()
            built = time.perf_counter()
            contender.train(model)
            self.model_seconds.setdefault(key, []).append(built - start)
            self.seconds.setdefault(key, []).append(time.perf_counter() - built)
        step_seconds = []
        for _ in range(SMOKE_FLOOR_STEPS if smoke else math.ceil(self.shape.steps_per_epoch)):
            start = time.perf_counter()
            self.floor_step()
            step_seconds.append(time.perf_counter() - start)
        self.floor_seconds.append(statistics.median(step_seconds) * self.shape.steps_per_epoch)

    def summary(self):
        """The shape's entry of extra_info["shapes"]: per contender the medians and every round's seconds.

        ``median_with_model`` is the median over rounds of build + train; the floor has no model."""
        epochs = [{"implementation": implementation, "optimizer": optimizer,
                   "median": statistics.median(seconds), "seconds": seconds,
                   "model_seconds": self.model_seconds[(implementation, optimizer)],
                   "median_with_model": statistics.median(
                       s + m for s, m in zip(seconds, self.model_seconds[(implementation, optimizer)]))}
                  for (implementation, optimizer), seconds in self.seconds.items()]
        epochs.append({"implementation": FLOOR, "optimizer": None, "median": statistics.median(self.floor_seconds),
                       "seconds": self.floor_seconds})
        epochs.append({"implementation": LOOP, "optimizer": "sgd", "median": statistics.median(self.loop_seconds),
                       "seconds": self.loop_seconds})
        net = "-".join(map(str, self.shape.net))
        return {"net": net, "hidden": self.shape.hidden, "batch": self.shape.batch, "rows": self.shape.rows,
                "steps_per_epoch": self.shape.steps_per_epoch, "epochs": epochs}


def test_epoch_sweep_interleaved(benchmark, data, smoke):
    X, y = data
    runs = [ShapeRun.at(Shape(hidden, batch, SMOKE_ROWS if smoke else ROWS[hidden]), X, y)
            for hidden in HIDDEN_WIDTHS for batch in (SMOKE_BATCHES if smoke else BATCHES)]
    rounds = 1 if smoke else ROUNDS
    if not smoke:  # the smoke pass times nothing
        for run in runs:
            run.warm_up()

    shares = []  # per round: the fraction of all CPUs' time other processes used

    def all_rounds():
        for round_number in range(rounds):
            before = busy_ticks()
            for run in runs:
                run.run_round(round_number, smoke)
            shares.append(others_share(before, busy_ticks()))

    benchmark.group = "epoch sweep 784-H-10, cpu vs estimator vs GEMM floor, interleaved"
    benchmark.pedantic(all_rounds, rounds=1, iterations=1)
    shapes = [run.summary() for run in runs]
    benchmark.extra_info.update(role="epoch_sweep", rounds=rounds, others_cpu_share=shares, shapes=shapes)
    for shape in shapes:
        assert all(len(e["seconds"]) == rounds and e["median"] > 0 for e in shape["epochs"]), shape
