"""Training on the cuda backend (``mlp.engines.cuda``) against the cpu and numpy engines.

Without a GPU this runs under numba's CUDA simulator (root conftest.py), which
runs every GPU thread as a Python thread: a tiled matmul launch takes a good
fraction of a second, so the networks are tiny (6 -> 5 -> 3) and the fits short
(10 examples in minibatches of 6 and 4, 2 epochs). The fitted networks are
shared by a module fixture. Between them the fits meet every update rule (SGD,
momentum, Nesterov, Adam), a non-relu hidden activation of each kind and each
output layer with float targets beside softmax (identity has a test of its own).

Tolerances against the other backends: float64 rel 1e-10, float32 rel 1e-4
(relative to the largest magnitude). Dropout masks are bit-identical on every
backend, so a cuda fit with dropout matches the cpu fit too.
"""
import os
import sys

import numpy as np
import pytest

import kernels
import mlp
import mlp.trainer
from kernels import numpy_backend as R
from mlp import TrainConfig
from mlp.defaults import PLAIN_SGD
from mlp.engines import UPDATE_RULES
from mlp.engines.cuda import CudaEngine

C = kernels.get_backend("cuda")  # no GPU: the simulator (root conftest); fails loudly if unusable

RTOL = {np.float32: 1e-4, np.float64: 1e-10}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [6, 5, 3]
N_TRAIN, BATCH, EPOCHS = 10, 6, 2   # two steps per epoch, the second a short one
# name -> (dtype, network fields, TrainConfig fields): every step kernel of the cuda engine
# (each update rule, with and without dropout) meets each dtype at least once.
CONFIGS = {
    "plain": (np.float64, {}, dict(learning_rate=0.2, epochs=1)),
    "dropout_float32": (np.float32, {}, dict(learning_rate=0.2, keep_prob=[0.8, 0.6])),
    "momentum_l1_l2_dropout": (np.float64, {}, dict(learning_rate=0.1, momentum=0.9, l2=[1e-2, 1e-3],
                                                    l1=[1e-3, 2e-3], keep_prob=[0.9, 0.7])),
    "nesterov_tanh_logistic_output": (np.float64, dict(activation="tanh", output="logistic"),
                                      dict(learning_rate=0.1, momentum=0.9, nesterov=True, alpha=0.05,
                                           l1=1e-3, keep_prob=[1.0, 0.7])),
    "adam_logistic_exp_output_float32": (np.float32, dict(activation="logistic", output="exp"),
                                         dict(optimizer="adam", learning_rate=0.02, alpha=0.01, l1=1e-3,
                                              keep_prob=[0.9, 1.0])),
}


def assert_close(got, ref, dtype, what):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert np.isfinite(got).all(), f"{what}: not finite"
    scale = float(np.abs(ref).max()) or 1.0
    err = float(np.abs(got - ref).max())
    assert err <= RTOL[dtype] * scale, f"{what}: max abs error {err:.3g} > {RTOL[dtype]:g} x {scale:.3g}"


def assert_same_parameters(net, other, dtype, what):
    for kind, got, ref in zip(("weights", "biases"), net.get_parameters(), other.get_parameters()):
        for l, (g, r) in enumerate(zip(got, ref)):
            assert_close(g, r, dtype, f"{what}: {kind}[{l}]")


def uses_cuda_engine(monkeypatch):
    """Record the engines the trainer makes, checking that cuda fits get a CudaEngine."""
    original = mlp.trainer.make_engine
    made = []

    def make_engine(net, config, X, y, batch, l2, l1, keep):
        engine = original(net, config, X, y, batch, l2, l1, keep)
        assert isinstance(engine, CudaEngine) == (net.backend == "cuda")
        made.append(engine)
        return engine

    monkeypatch.setattr(mlp.trainer, "make_engine", make_engine)
    return made


def data(output="softmax", dtype=np.float64, n=N_TRAIN, seed=0):
    """Inputs and the targets an output layer takes: labels, real values, 0/1 (logistic) or counts (exp)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, SIZES[0])).astype(dtype)
    shape = (n, SIZES[-1])
    if output == "softmax":
        return X, rng.integers(0, SIZES[-1], n)
    if output == "logistic":
        return X, (rng.random(shape) < 0.5).astype(dtype)
    if output == "exp":
        return X, rng.poisson(2.0, shape).astype(dtype)
    return X, rng.standard_normal(shape).astype(dtype)


def fit_on(backend, dtype=np.float64, network=None, **config):
    network = dict(network or {})
    net = mlp.MLP(SIZES, seed=1, dtype=dtype, backend=backend, **network)
    X, y = data(network.get("output", "softmax"), dtype)
    # The lecture's plain SGD under what each configuration names: "plain" is plain.
    history = net.fit(X, y, **{**PLAIN_SGD, "epochs": EPOCHS, "batch_size": BATCH, "seed": 3, **config})
    return net, history


@pytest.fixture(scope="module")
def fits():
    """name -> {backend: (net, history)} for each of CONFIGS; "engines": the engines made."""
    patch = pytest.MonkeyPatch()
    made = uses_cuda_engine(patch)
    try:
        out = {}
        for name, (dtype, network, cfg) in CONFIGS.items():
            out[name] = {backend: fit_on(backend, dtype, network, **cfg) for backend in ("cuda", "cpu", "numpy")}
        out["engines"] = made
        yield out
    finally:
        patch.undo()


# ---------------------------------------------------------------- the trainer end to end
@pytest.mark.parametrize("name", list(CONFIGS))
def test_cuda_fit_matches_cpu_and_numpy(fits, name):
    dtype = CONFIGS[name][0]
    cuda_net, cuda_history = fits[name]["cuda"]
    for backend in ("cpu", "numpy"):
        net, history = fits[name][backend]
        assert_same_parameters(cuda_net, net, dtype, f"{name}, cuda against {backend}")
        assert_close(cuda_history.column("train_loss"), history.column("train_loss"), dtype,
                     f"{name}: train_loss against {backend}")


def test_cuda_fits_ran_on_the_device_engine_and_kept_device_parameters(fits):
    cuda_engines = [e for e in fits["engines"] if isinstance(e, CudaEngine)]
    assert len(cuda_engines) == len(CONFIGS)
    assert all(e.resident for e in cuda_engines)
    assert {e.rule for e in cuda_engines} == set(UPDATE_RULES)
    assert {e.net.activation for e in cuda_engines} == {"relu", "tanh", "logistic"}
    assert {e.net.output for e in cuda_engines} == {"softmax", "logistic", "exp"}
    net = fits["plain"]["cuda"][0]
    assert all(getattr(P, "__cuda_ndarray__", False) for P in net.weights + net.biases)


@pytest.mark.parametrize("name", [name for name, (_, _, cfg) in CONFIGS.items() if "epochs" not in cfg])
def test_loss_decreases(fits, name):
    losses = fits[name]["cuda"][1].column("train_loss")
    assert len(losses) == EPOCHS and losses[-1] < losses[0], losses


def test_dropout_changes_the_result(fits):
    """Guards the parity test: the masks must actually have been applied."""
    plain = fits["plain"]["cuda"][0].get_parameters()[0][0]
    dropped = fits["dropout_float32"]["cuda"][0].get_parameters()[0][0]
    assert np.abs(plain - dropped).max() > 1e-3


def test_model_saved_after_a_cuda_fit_loads_on_every_backend(fits, tmp_path):
    net = fits["momentum_l1_l2_dropout"]["cuda"][0]
    path = tmp_path / "net.npz"
    net.save(path)
    X, _ = data()
    expected = fits["momentum_l1_l2_dropout"]["cpu"][0].predict_proba(X)
    for backend in ("cpu", "cuda"):
        loaded = mlp.load(path, backend=backend)
        assert loaded.backend == backend
        assert_same_parameters(loaded, net, np.float64, f"loaded on {backend}")
        assert_close(loaded.predict_proba(X), expected, np.float64, f"predictions on {backend}")
    assert mlp.load(path, backend="cpu").metadata["train_config"]["momentum"] == 0.9


def test_identity_output_matches_cpu(monkeypatch):
    uses_cuda_engine(monkeypatch)
    config = dict(learning_rate=0.05, keep_prob=[1.0, 0.7], epochs=1)
    nets = {}
    for backend in ("cuda", "cpu"):
        net = mlp.MLP(SIZES, output="identity", seed=1, dtype=np.float64, backend=backend)
        X, Y = data("identity")
        net.fit(X, Y, batch_size=BATCH, seed=3, **config)
        nets[backend] = net
    assert_same_parameters(nets["cuda"], nets["cpu"], np.float64, "identity output")


def test_per_batch_dropout_is_refused_with_a_clear_error():
    net = mlp.MLP(SIZES, seed=1, backend="cuda")
    cfg = TrainConfig(keep_prob=0.5, dropout_mode="per_batch")
    X, y = data(dtype=np.float32)
    with pytest.raises(ValueError, match="per_batch"):
        CudaEngine(net, cfg, X, y, BATCH, [0.0, 0.0], [0.0, 0.0], [0.5, 0.5])


def test_sample_weights_are_refused_with_a_clear_error():
    net = mlp.MLP(SIZES, seed=1, backend="cuda")
    X, y = data(dtype=np.float32)
    with pytest.raises(ValueError, match="sample weights"):
        CudaEngine(net, TrainConfig(), X, y, BATCH, [0.0, 0.0], [0.0, 0.0], [1.0, 1.0],
                   sample_weight=np.ones(N_TRAIN))


# ---------------------------------------------------------------- the engine itself
def _engine(max_resident_bytes=None, output="softmax", momentum=0.0, X=None, y=None):
    """A cuda engine on 10 examples in minibatches of 4, 4 and 2, with dropout and L1/L2."""
    net = mlp.MLP(SIZES, output=output, seed=1, dtype=np.float64, backend="cuda")
    cfg = TrainConfig(momentum=momentum, keep_prob=[0.9, 0.7], seed=5)
    X0, y0 = data(output)
    X = X0 if X is None else X
    y = y0 if y is None else y
    return net, CudaEngine(net, cfg, X, y, 4, [1e-3, 0.0], [0.0, 1e-3], [0.9, 0.7],
                           max_resident_bytes=max_resident_bytes)


def _count_transfers(monkeypatch):
    """Count host<->device copies and device allocations from now on."""
    from numba import cuda

    counts = {"to_device": 0, "to_host": 0, "alloc": 0}
    array_type = type(C.empty((1,), np.float64))

    def counting(name, fn):
        def wrapped(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(array_type, "copy_to_device", counting("to_device", array_type.copy_to_device))
    monkeypatch.setattr(array_type, "copy_to_host", counting("to_host", array_type.copy_to_host))
    monkeypatch.setattr(cuda, "to_device", counting("to_device", cuda.to_device))
    monkeypatch.setattr(cuda, "device_array", counting("alloc", cuda.device_array))
    return counts


def test_epoch_transfers_and_streamed_chunks_matching_resident_data(monkeypatch):
    """Resident data: per epoch the order goes to the device once and two numbers come back.
    Streamed in chunks of one minibatch, each chunk adds one copy of its inputs and labels;
    the result is bit-identical."""
    X, y = data()
    perm = np.random.default_rng(5).permutation(N_TRAIN)
    results = []
    for budget, copies in ((None, 2), (5 * (X[0].nbytes + y[0].nbytes), 1 + 2 * 3)):
        net, run = _engine(budget, momentum=0.5)
        assert run.resident == (budget is None)
        with monkeypatch.context() as patch:
            counts = _count_transfers(patch)
            total, steps, diverged = run.run_epoch(perm, 0.1, 0)
        assert counts == {"to_device": copies, "to_host": 1, "alloc": 0}, (budget, counts)
        assert (steps, diverged) == (3, False) and np.isfinite(total) and total > 0
        velocities = run.get_optimizer_state()
        results.append((total, net.get_parameters(), (velocities["vW"], velocities["vb"])))
    (t0, p0, v0), (t1, p1, v1) = results
    assert t0 == t1
    for a, b in zip(p0[0] + p0[1] + v0[0] + v0[1], p1[0] + p1[1] + v1[0] + v1[1]):
        np.testing.assert_array_equal(a, b)


def test_a_non_finite_loss_reports_its_step_and_stops_the_sum():
    X, Y = data("identity")
    Y[5, 0] = np.inf                          # in the second minibatch (rows 4..7)
    net, run = _engine(output="identity", y=Y)
    start = net.to_backend("numpy")
    total, steps, diverged = run.run_epoch(np.arange(N_TRAIN), 0.1, 0)
    assert diverged and steps == 1
    # the sum holds the first minibatch's loss only: its masks are streams 0 and 1 of seed 5
    masks = [np.empty((4, width)) for width in SIZES[:-1]]
    for j, (m, keep) in enumerate(zip(masks, (0.9, 0.7))):
        R.dropout_mask(5, j, keep, m)
    first_loss, _ = start.loss_and_gradients(X[:4], Y[:4], masks=masks)
    assert_close(total, 4 * first_loss, np.float64, "epoch sum up to the non-finite loss")


def test_velocities_round_trip_through_the_host():
    net, run = _engine(momentum=0.5)
    vel_w = [np.full(tuple(W.shape), 0.25) for W in net.weights]
    vel_b = [np.full(tuple(b.shape), -0.5) for b in net.biases]
    run.set_optimizer_state({"vW": vel_w, "vb": vel_b})
    got = run.get_optimizer_state()
    got_w, got_b = got["vW"], got["vb"]
    for a, b in zip(got_w + got_b, vel_w + vel_b):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- the training kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("keep", [1.0, 0.7])
def test_gather_minibatch_is_take_then_the_standard_input_mask(dtype, keep):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((9, 33)).astype(dtype)
    labels = rng.integers(0, 4, 9)
    perm = rng.permutation(9)
    out, labels_out = C.to_device(np.full((5, 33), np.nan, dtype)), C.to_device(np.full(5, -1))
    C.gather_minibatch(C.to_device(X), C.to_device(perm), 3, out, C.to_device(labels), labels_out,
                       seed=7, stream=11, keep=keep)
    expected = X[perm[3:8]]
    if keep < 1:
        mask = np.empty_like(expected)
        R.dropout_mask(7, 11, keep, mask)
        R.apply_mask(expected, mask, expected)
    np.testing.assert_array_equal(C.to_host(out), expected)      # bit-identical
    np.testing.assert_array_equal(C.to_host(labels_out), labels[perm[3:8]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_accumulation_matches_the_standard_losses(dtype):
    rng = np.random.default_rng(2)
    stats = C.to_device(np.array([0.0, -1.0]))
    logits = rng.standard_normal((7, 3)).astype(dtype)
    labels = rng.integers(0, 3, 7)
    probs, dlogits, loss = (C.empty((7, 3), dtype), C.empty((7, 3), dtype), C.zeros((1,), np.float64))
    C.softmax_cross_entropy_accumulate(C.to_device(logits), C.to_device(labels), probs, dlogits, loss, stats, 0)
    ref = [np.empty((7, 3), dtype), np.empty((7, 3), dtype), np.zeros(1)]
    R.softmax_cross_entropy(logits, labels, *ref)
    for got, want in zip((probs, dlogits, loss), ref):
        assert_close(C.to_host(got), want, dtype, "softmax_cross_entropy_accumulate")
    targets = rng.standard_normal((7, 3)).astype(dtype)
    dout = C.empty((7, 3), dtype)
    C.squared_error_accumulate(C.to_device(logits), C.to_device(targets), dout, loss, stats, 1)
    ref_d, ref_loss = np.empty((7, 3), dtype), np.zeros(1)
    R.squared_error(logits, targets, ref_d, ref_loss)
    assert_close(C.to_host(dout), ref_d, dtype, "squared_error_accumulate")
    total, first_bad = C.to_host(stats)
    assert first_bad == -1
    assert_close(total, 7 * (ref[2][0] + ref_loss[0]), dtype, "epoch sum")
    nan_logits = logits.copy()
    nan_logits[0, 0] = np.nan
    C.softmax_cross_entropy_accumulate(C.to_device(nan_logits), C.to_device(labels), probs, dlogits, loss, stats, 2)
    C.softmax_cross_entropy_accumulate(C.to_device(logits), C.to_device(labels), probs, dlogits, loss, stats, 3)
    assert C.to_host(stats)[1] == 2 and C.to_host(stats)[0] == total   # the sum stopped at step 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_layer_updates_match_two_standard_updates(dtype, momentum):
    rng = np.random.default_rng(3)
    W, dW, VW = (rng.standard_normal((9, 33)).astype(dtype) for _ in range(3))
    b, db, Vb = (rng.standard_normal(9).astype(dtype) for _ in range(3))
    W[0, :4] = 1e-4                                  # small weights the L1 step clips at zero
    dev = [C.to_device(a) for a in (W, dW, VW, b, db, Vb)]
    if momentum:
        C.layer_sgd_momentum_update(*dev, 0.1, momentum, 0.01, 0.01)
        R.sgd_momentum_update(W, dW, VW, 0.1, momentum, 0.01, 0.01)
        R.sgd_momentum_update(b, db, Vb, 0.1, momentum, 0.0, 0.0)
    else:
        C.layer_sgd_update(dev[0], dev[1], dev[3], dev[4], 0.1, 0.01, 0.01)
        R.sgd_update(W, dW, 0.1, 0.01, 0.01)
        R.sgd_update(b, db, 0.1, 0.0, 0.0)
    assert (W[0, :4] == 0).any()
    for got, want, what in zip(dev, (W, dW, VW, b, db, Vb), ("W", "dW", "VW", "b", "db", "Vb")):
        assert_close(C.to_host(got), want, dtype, f"layer update {what}")


def test_training_kernels_are_documented_beside_the_standard_set():
    for name in C.TRAINING:
        assert name not in kernels.KERNELS and callable(getattr(C, name)) and getattr(C, name).__doc__
    for name, chain in C.TRAINING.items():
        assert all(k in kernels.KERNELS for k in chain), name


# ---------------------------------------------------------------- real-target compilation
def test_training_kernels_compile_for_a_real_gpu_without_float64_in_float32_code():
    """The simulator cannot tell whether a kernel compiles for a GPU: test_cuda_backend's script lowers
    every kernel to LLVM IR (typing and lowering need no driver). It launches each training kernel
    with every float32 argument typing this test's own script used to (the same ten compilations),
    so the two tests read one report, computed once."""
    from test_cuda_backend import compile_report

    report = compile_report()
    assert "unavailable" not in report, report
    assert not report["problems"], "\n".join(report["problems"])
    expected = {"gather_minibatch_2d", "softmax_cross_entropy_rows", "squared_error_2d", "sum_partials_accumulate",
                "sigmoid_cross_entropy_2d", "poisson_loss_2d", "layer_sgd_update_2d", "layer_sgd_momentum_update_2d",
                "layer_sgd_nesterov_update_2d", "layer_adam_update_2d"}
    assert expected <= set(report["kernels"]), sorted(expected - set(report["kernels"]))


# ---------------------------------------------------------------- the GPU training script
def test_gpu_train_script_runs_a_tiny_epoch(capsys, monkeypatch):
    made = uses_cuda_engine(monkeypatch)
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    try:
        import gpu_train
    finally:
        sys.path.pop(0)
    results = gpu_train.main(["--tiny", "--epochs", "1", "--no-torch"])
    out = capsys.readouterr().out
    assert "numba-cuda" in out and "test accuracy" in out
    assert len(results["numba-cuda"]) == 1 and isinstance(made[-1], CudaEngine)
    epoch = results["numba-cuda"][0]
    assert epoch["seconds"] > 0 and 0.0 <= epoch["test_accuracy"] <= 1.0
