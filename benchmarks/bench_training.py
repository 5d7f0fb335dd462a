"""One training epoch of 784-256-10 on Fashion-MNIST-shaped data, per backend, beside its peers.

Every contender does the same work: float32, plain SGD (learning rate 0.05,
no momentum, no weight decay), the data shuffled once per epoch, one pass over
it in minibatches of 64 or 128, with the same thread count (conftest.py).

* ``mlp.trainer.Trainer(...).fit`` for each backend, without dropout and with
  keep probabilities 0.8 (input) / 0.5 (hidden) in both dropout modes;
* PyTorch: nn.Sequential Linear-ReLU-Linear, CrossEntropyLoss, optim.SGD,
  with nn.Dropout(0.2) on the input and nn.Dropout(0.5) on the hidden layer
  for the dropout comparison;
* scikit-learn's MLPClassifier, one epoch (``max_iter=1``), no dropout (it has none);
* the GEMM floor: the five matrix products of one step (X W1^T, H W2^T,
  delta2^T H, delta2 W2, delta1^T X) on each backend's BLAS kernels, timed
  per step; report.py multiplies by the steps of an epoch.

Each round trains a freshly initialised network; the first call (JIT
compilation, allocator warm-up) happens before timing, on a slice of the data.
pytest-benchmark runs one benchmark's rounds back to back, so a load that
comes and goes skews ratios between benchmarks; ``test_epoch_targets_interleaved``
therefore also times the contenders of the issue's targets round-robin, and
report.py takes the targets' ratios from it. Under ``--benchmark-disable`` the
data set has 1,024 rows instead of 60,000.

The contenders and the floor take the network's shape as an argument (``NET``
by default): bench_sweep.py runs them at every batch size from 32 to 1024 and
for hidden widths 256 and 1024.
"""
import statistics
import time
import warnings
from typing import Callable, NamedTuple

import numpy as np
import pytest
import torch

from cases import KEEP_HIDDEN, KEEP_INPUT, LEARNING_RATE, benchmark_backends
from mlp import MLP, TrainConfig, Trainer
from mlp.defaults import PLAIN_SGD
from mlp import gemm_floor as floor
from mlp.datasets import make_synthetic
from mlp.engines import engine_class

NET = (784, 256, 10)
NET_NAME = "784-256-10"
BATCHES = (64, 128)
TARGET_BATCH = 64
FULL_ROWS, SMOKE_ROWS = 60_000, 1_024
WARMUP_ROWS = 512
ROUNDS = 3
INTERLEAVED_ROUNDS = 5
FLOOR_STEPS_PER_ROUND, SMOKE_FLOOR_STEPS = 100, 2
DROPOUT_MODES = ("none", "per_sample", "per_batch")
TORCH_DROPOUT = "torch.nn.Dropout"
# Adam's usual rate (scikit-learn's default): at plain SGD's 0.05 it can diverge, which ends an epoch early.
ADAM_LEARNING_RATE = 0.001


@pytest.fixture(scope="module")
def data(smoke):
    """(X float32 (n, 784), y int64 (n,)): make_synthetic's Fashion-MNIST-shaped training part."""
    dataset = make_synthetic(n_train=SMOKE_ROWS if smoke else FULL_ROWS, n_test=1, seed=0)
    return dataset.X_train, dataset.y_train


class Contender(NamedTuple):
    """One way to train an epoch: ``train(new_model())`` is the timed call."""
    implementation: str
    dropout: str
    new_model: Callable
    train: Callable  # train(model, rows=all) -> something finite to check
    optimizer: str = "sgd"

    def warm_up(self, rows):
        """JIT compilation, first-call set-up: outside every timing."""
        self.train(self.new_model(), rows=rows)


# ------------------------------------------------------------------ the contenders
def mlp_contender(X, y, backend, batch, dropout, loop_seconds=None, net=NET, optimizer="sgd"):
    """numba-mlp's Trainer; ``loop_seconds`` collects each epoch's time as its History clocks it."""
    # The lecture's plain SGD (or Adam), as the peers train: no momentum, no penalty, a constant rate.
    settings = dict(PLAIN_SGD, epochs=1, batch_size=batch, optimizer=optimizer, seed=0,
                    learning_rate=LEARNING_RATE if optimizer == "sgd" else ADAM_LEARNING_RATE)
    if dropout != "none":
        settings.update(keep_prob=[KEEP_INPUT, KEEP_HIDDEN], dropout_mode=dropout)
    config = TrainConfig(**settings)

    def new_model():
        return MLP(net, seed=0, dtype=np.float32, backend=backend)

    def train(net, rows=len(X)):
        # threads=None: the pools as the benchmark session limited them, no timing of thread counts
        record = Trainer(net, config, threads=None).fit(X[:rows], y[:rows]).records[0]
        assert np.isfinite(record["train_loss"])
        if loop_seconds is not None and rows == len(X):
            loop_seconds.append(record["seconds"])

    return Contender(f"numba-mlp {backend}", dropout, new_model, train, optimizer)


def torch_contender(X, y, batch, dropout, net=NET):
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(0)
    loss_fn = torch.nn.CrossEntropyLoss()

    def new_model():
        torch.manual_seed(0)
        layers = [torch.nn.Linear(net[0], net[1]), torch.nn.ReLU(), torch.nn.Linear(net[1], net[2])]
        if dropout:
            layers.insert(0, torch.nn.Dropout(1 - KEEP_INPUT))
            layers.insert(3, torch.nn.Dropout(1 - KEEP_HIDDEN))
        return torch.nn.Sequential(*layers).train()

    def train(model, rows=len(X)):
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0)
        order = torch.randperm(rows, generator=generator)
        total = torch.zeros(())
        for start in range(0, rows, batch):
            idx = order[start:start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X_t.index_select(0, idx)), y_t.index_select(0, idx))
            loss.backward()
            optimizer.step()
            total += loss.detach()
        assert torch.isfinite(total)

    return Contender("PyTorch", TORCH_DROPOUT if dropout else "none", new_model, train)


def sklearn_contender(X, y, batch):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def new_model():
        return MLPClassifier(hidden_layer_sizes=(NET[1],), activation="relu", solver="sgd",
                             learning_rate="constant", learning_rate_init=LEARNING_RATE, momentum=0,
                             nesterovs_momentum=False, alpha=0, batch_size=batch, max_iter=1,
                             shuffle=True, random_state=0)

    def train(model, rows=len(X)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=1 is the point
            model.fit(X[:rows], y[:rows])
        assert model.coefs_[0].dtype == np.float32, "MLPClassifier must train in float32, like the others"
        assert np.isfinite(model.loss_)

    return Contender("scikit-learn", "none", new_model, train)


def gemm_floor_step(backend, batch, net=NET):
    """One step's five products for ``net`` = (d_in, hidden, d_out) on ``backend``'s matmul kernels
    (``mlp.gemm_floor``), checked against NumPy once."""
    step, check = floor.gemm_floor_step(backend, batch, net)
    for got, want in check():
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-3)
    return step


GEMM_FLOOR_FLOPS = 2.0 * (2 * NET[0] * NET[1] + 3 * NET[1] * NET[2])  # per example of a step


# ------------------------------------------------------------------ one benchmark per contender
def _epoch_group(batch, dropout):
    return f"epoch {NET_NAME} n={batch} {'dropout 0.8/0.5' if dropout else 'no dropout'}"


def _time_epochs(benchmark, contender, batch, rows, **extra):
    contender.warm_up(min(WARMUP_ROWS, rows))
    benchmark.group = _epoch_group(batch, contender.dropout != "none")
    benchmark.extra_info.update(role="epoch", implementation=contender.implementation, net=NET_NAME,
                                batch=batch, dropout=contender.dropout, rows=rows, **extra)
    benchmark.pedantic(contender.train, setup=lambda: ((contender.new_model(),), {}), rounds=ROUNDS,
                       iterations=1)


@pytest.mark.parametrize("dropout", DROPOUT_MODES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("backend", benchmark_backends())
def test_epoch_mlp(benchmark, data, backend, batch, dropout):
    if dropout != "none" and dropout not in engine_class(backend).dropout_modes:
        pytest.skip(f"the {backend} engine has no {dropout} dropout")
    loop_seconds = []
    _time_epochs(benchmark, mlp_contender(*data, backend, batch, dropout, loop_seconds), batch, len(data[0]),
                 backend=backend)
    # the History's own clock: the epoch loop without fit's input checks and set-up
    benchmark.extra_info["epoch_loop_seconds_median"] = statistics.median(loop_seconds)


@pytest.mark.parametrize("dropout", (False, True), ids=("none", "dropout"))
@pytest.mark.parametrize("batch", BATCHES)
def test_epoch_torch(benchmark, data, batch, dropout):
    _time_epochs(benchmark, torch_contender(*data, batch, dropout), batch, len(data[0]),
                 threads=torch.get_num_threads())


@pytest.mark.parametrize("batch", BATCHES)
def test_epoch_sklearn(benchmark, data, batch):
    _time_epochs(benchmark, sklearn_contender(*data, batch), batch, len(data[0]))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("backend", benchmark_backends())
def test_gemm_floor_step(benchmark, data, backend, batch):
    """The five products of one step, nothing else: no epoch on these BLAS calls can beat their sum."""
    rows = len(data[0])
    benchmark.group = f"gemm floor {NET_NAME} n={batch} (one step)"
    benchmark.extra_info.update(role="gemm_floor", implementation=f"{backend} BLAS", backend=backend,
                                net=NET_NAME, batch=batch, rows=rows, steps_per_epoch=rows / batch,
                                flops=GEMM_FLOOR_FLOPS * batch)
    benchmark(gemm_floor_step(backend, batch))


# ------------------------------------------------------------------ the targets, round-robin
def test_epoch_targets_interleaved(benchmark, data, smoke):
    """The contenders of the issue's epoch targets (batch 64), one epoch each per round, in rotating order.

    The GEMM floor of a round is the median of FLOOR_STEPS_PER_ROUND steps on
    the faster host BLAS path, times the steps of an epoch."""
    X, y = data
    rows, batch = len(X), TARGET_BATCH
    contenders = [mlp_contender(X, y, "cpu", batch, "none"), mlp_contender(X, y, "numpy", batch, "none"),
                  torch_contender(X, y, batch, False), mlp_contender(X, y, "cpu", batch, "per_sample"),
                  mlp_contender(X, y, "cpu", batch, "per_batch"), torch_contender(X, y, batch, True)]
    floor_steps = [gemm_floor_step(backend, batch) for backend in ("numpy", "cpu")]
    if not smoke:  # the smoke pass times nothing, and the other tests warm up the same code
        for contender in contenders:
            contender.warm_up(min(WARMUP_ROWS, rows))

    seconds = {(c.implementation, c.dropout): [] for c in contenders}
    seconds[("GEMM floor", "none")] = []

    def one_epoch_of_each(round_number):
        shift = round_number % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            model = contender.new_model()
            start = time.perf_counter()
            contender.train(model)
            seconds[(contender.implementation, contender.dropout)].append(time.perf_counter() - start)
        step_medians = []
        for step in floor_steps:
            step_seconds = []
            for _ in range(SMOKE_FLOOR_STEPS if smoke else FLOOR_STEPS_PER_ROUND):
                start = time.perf_counter()
                step()
                step_seconds.append(time.perf_counter() - start)
            step_medians.append(statistics.median(step_seconds))
        seconds[("GEMM floor", "none")].append(min(step_medians) * rows / batch)

    def all_rounds():
        for round_number in range(1 if smoke else INTERLEAVED_ROUNDS):
            one_epoch_of_each(round_number)

    benchmark.group = f"epoch targets {NET_NAME} n={batch}, interleaved"
    benchmark.pedantic(all_rounds, rounds=1, iterations=1)
    benchmark.extra_info.update(
        role="epoch_interleaved", net=NET_NAME, batch=batch, rows=rows,
        epochs=[{"implementation": implementation, "dropout": dropout, "median": statistics.median(times),
                 "seconds": times} for (implementation, dropout), times in seconds.items()])
