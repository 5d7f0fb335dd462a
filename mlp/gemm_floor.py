"""The GEMM floor: the seconds of one epoch's matrix products alone, the machine's own unit of training time.

Machines differ (the same epoch ran 2.4x slower on one 2-core machine than on
another), so a training time is quoted in *floors* as well as seconds: the
time of the five matrix products of one SGD step of 784-256-10 (X W1^T,
H W2^T, delta2^T H, delta2 W2, delta1^T X) at batch 64, times the 938 steps
of an epoch of 60,000 examples. No training loop can beat it on the same
BLAS, so a time in floors says how much of a run is arithmetic the network
cannot avoid. ``make bench`` measures the same step
(``benchmarks/bench_training.py``).

>>> seconds = epoch_floor_seconds()   # about 0.3 s on a 2-core Zen 3
>>> training_seconds / seconds        # the run's time in floors
"""
import statistics
import time

import numpy as np

import kernels

#: The network, minibatch and examples of the floor's epoch: the main job's shape at batch 64.
FLOOR_NET = (784, 256, 10)
FLOOR_BATCH = 64
FLOOR_EXAMPLES = 60_000


def gemm_floor_step(backend, batch=FLOOR_BATCH, net=FLOOR_NET):
    """(step, check): ``step()`` runs the five products of one step of ``net`` = (d_in, hidden, d_out)
    on ``backend``'s matmul kernels; ``check()`` runs it and returns (got, want) pairs against NumPy."""
    K = kernels.get_backend(backend)
    rng = np.random.default_rng(0)
    d_in, d_hidden, d_out = net
    shapes = {"X": (batch, d_in), "H": (batch, d_hidden), "delta2": (batch, d_out), "delta1": (batch, d_hidden),
              "W1": (d_hidden, d_in), "W2": (d_out, d_hidden)}
    host = {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in shapes.items()}
    X, H, delta2, delta1, W1, W2 = (K.to_device(host[name]) for name in shapes)
    Z1, Z2, dW1, dW2, back = (K.empty(shape, np.float32) for shape in
                              ((batch, d_hidden), (batch, d_out), (d_hidden, d_in), (d_out, d_hidden),
                               (batch, d_hidden)))

    def step():
        K.matmul_nt(X, W1, Z1)
        K.matmul_nt(H, W2, Z2)
        K.matmul_tn(delta2, H, dW2)
        K.matmul_nn(delta2, W2, back)
        K.matmul_tn(delta1, X, dW1)
        K.synchronize()

    def check():
        step()
        x, h, d2, d1, w1, w2 = host.values()
        return [(K.to_host(got), want) for got, want in
                ((Z1, x @ w1.T), (Z2, h @ w2.T), (dW2, d2.T @ h), (back, d2 @ w2), (dW1, d1.T @ x))]

    return step, check


def epoch_floor_seconds(backend="cpu", steps=300):
    """The floor of one epoch on this machine: the median of ``steps`` timed floor steps, times the
    epoch's steps (a median, so that a moment of load elsewhere does not count)."""
    step, _ = gemm_floor_step(backend)
    step()  # the first call compiles and warms BLAS's buffers
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) * -(-FLOOR_EXAMPLES // FLOOR_BATCH)
