"""``mlp.MLPClassifier`` beside scikit-learn's, the same code but the import: fit time per epoch and accuracy.

The issue's workload: ``MLPClassifier(hidden_layer_sizes=(256,), solver=...)`` with
scikit-learn's other defaults (batch "auto" = 200, alpha 1e-4, shuffling) on
60,000 Fashion-MNIST-shaped float32 rows, for solver "adam" and "sgd". Both
estimators consume the random state alike and run the same update rules, so they
follow the same trajectory (tests/test_sklearn_parity.py) and reach the same
accuracy, which is recorded beside the time (on 10,000 held-out rows).

A fit is timed whole (validation, set-up, ``EPOCHS`` epochs) and divided by its
epochs; the contenders take turns, one fit each per round in rotating order, so
a load that comes and goes hits them alike. Each round also times the GEMM floor
of an epoch at batch 200 (the five products of a step on the cpu backend's BLAS,
times the steps): what neither contender can beat. Under ``--benchmark-disable``
the data has 1,024 rows and one round runs, timing nothing of note.
"""
import statistics
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as ScikitLearnMLPClassifier

from bench_training import gemm_floor_step
from mlp import MLPClassifier
from mlp.datasets import make_synthetic

HIDDEN = (256,)  # 784-256-10, bench_training's network
AUTO_BATCH = 200  # scikit-learn's batch_size="auto" on this many rows
FLOOR_STEPS = 100
SOLVERS = ("adam", "sgd")
EPOCHS = 2
ROUNDS = 3
FULL_ROWS, SMOKE_ROWS, TEST_ROWS = 60_000, 1_024, 10_000
CONTENDERS = {"scikit-learn": ScikitLearnMLPClassifier, "numba-mlp": MLPClassifier}


def _fit_seconds(estimator_class, solver, X, y):
    # numba-mlp's on the benchmark session's thread limit, as scikit-learn's runs: no timing of thread counts
    ours = {"threads": None} if estimator_class is MLPClassifier else {}
    model = estimator_class(hidden_layer_sizes=HIDDEN, solver=solver, max_iter=EPOCHS, random_state=0, **ours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # EPOCHS epochs is the point
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    assert model.coefs_[0].dtype == np.float32, "both must train in float32"
    return model, seconds / model.n_iter_


def test_estimator_fit_interleaved(benchmark, smoke):
    data = make_synthetic(n_train=SMOKE_ROWS if smoke else FULL_ROWS, n_test=TEST_ROWS, seed=0)
    X, y = data.X_train.astype(np.float32), data.y_train
    pairs = [(name, solver) for solver in SOLVERS for name in CONTENDERS]
    seconds = {pair: [] for pair in pairs}
    floor_seconds = []
    floor_step = gemm_floor_step("cpu", AUTO_BATCH)
    accuracy = {}
    # the first fit compiles the compiled epoch: on a slice, before timing
    _fit_seconds(MLPClassifier, "adam", X[:512], y[:512])

    def all_rounds():
        for round_number in range(1 if smoke else ROUNDS):
            shift = round_number % len(pairs)
            for name, solver in pairs[shift:] + pairs[:shift]:
                model, per_epoch = _fit_seconds(CONTENDERS[name], solver, X, y)
                seconds[(name, solver)].append(per_epoch)
                accuracy[(name, solver)] = float(model.score(data.X_test, data.y_test))
            steps = []
            for _ in range(2 if smoke else FLOOR_STEPS):
                start = time.perf_counter()
                floor_step()
                steps.append(time.perf_counter() - start)
            floor_seconds.append(statistics.median(steps) * -(-len(X) // AUTO_BATCH))

    benchmark.group = f"MLPClassifier{HIDDEN} fit, {len(X)} rows float32, interleaved"
    benchmark.pedantic(all_rounds, rounds=1, iterations=1)
    benchmark.extra_info.update(
        role="estimator_interleaved", hidden=list(HIDDEN), rows=len(X), epochs=EPOCHS,
        gemm_floor_epoch=statistics.median(floor_seconds),
        fits=[{"implementation": name, "solver": solver, "median_epoch": statistics.median(times),
               "epoch_seconds": times, "test_accuracy": accuracy[(name, solver)]}
              for (name, solver), times in seconds.items()])
    for solver in SOLVERS:
        # the same trajectory in float32: the same accuracy up to rounding
        assert abs(accuracy[("numba-mlp", solver)] - accuracy[("scikit-learn", solver)]) < 0.02
