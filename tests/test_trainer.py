"""The trainer: minibatch SGD semantics, the compiled cpu epoch against the NumPy loop, and the stop rules.

Tolerances against the NumPy reference: float64 rel 1e-10, float32 rel 1e-4,
relative to the largest magnitude of each compared array.
"""
import json

import numpy as np
import pytest

import kernels
import mlp
from mlp import MLP, History, TrainConfig, Trainer
from mlp.defaults import PLAIN_SGD, TRAINING
from mlp.engines import make_engine
from mlp.evaluation import evaluate

RTOL = {np.float64: 1e-10, np.float32: 1e-4}


@pytest.fixture(scope="module")
def digits():
    from mlp.datasets import load_digits

    d = load_digits(seed=0)
    # a few hundred examples keep every test fast; 7 * 50 + 10 rows leaves a short last minibatch
    return d.X_train[:360], d.y_train[:360], d.X_test[:200], d.y_test[:200]


def assert_close(actual, expected, rtol, what=""):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(np.abs(expected).max(), 1e-30)
    err = np.abs(actual - expected).max() / scale
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


def assert_params_close(net_a, net_b, rtol):
    wa, ba = net_a.get_parameters()
    wb, bb = net_b.get_parameters()
    for l, (x, y) in enumerate(zip(wa + ba, wb + bb)):
        assert_close(x, y, rtol, f"parameter {l}")


def assert_params_equal(params_a, params_b):
    for x, y in zip(params_a[0] + params_a[1], params_b[0] + params_b[1]):
        np.testing.assert_array_equal(x, y)


def train(backend, dtype, data, layer_sizes=(64, 24, 16, 10), output="softmax", net_seed=3, **config):
    """Fit a fresh network (initial weights from ``net_seed``); ``config`` holds TrainConfig fields, the
    trainer's ``seed`` (shuffling, dropout masks) among them."""
    X, y, X_val, y_val = data
    net = MLP(list(layer_sizes), output=output, seed=net_seed, dtype=dtype, backend=backend)
    config.setdefault("epochs", 3)
    config.setdefault("batch_size", 50)
    config.setdefault("learning_rate", 0.1)
    # The lecture's plain SGD under what a test names: the checks below are worked from its update rule.
    history = Trainer(net, **{**PLAIN_SGD, **config}).fit(X, y, X_val=X_val, y_val=y_val)
    return net, history


# ---------------------------------------------------------------- learning
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_training_lowers_the_loss_on_digits(digits, backend):
    net, history = train(backend, np.float32, digits, layer_sizes=(64, 32, 10), epochs=8, momentum=0.9,
                         learning_rate=0.05)
    train_losses = history.column("train_loss")
    val_losses = history.column("val_loss")
    assert train_losses[-1] < 0.5 * train_losses[0]
    assert val_losses[-1] < 0.5 * val_losses[0]
    assert history.records[-1]["val_accuracy"] > 0.85
    assert history.stop_reason == "max_epochs" and len(history) == 8
    assert set(history.records[0]) == {"epoch", "train_loss", "val_loss", "val_accuracy", "seconds",
                                       "learning_rate", "threads"}


MODES = {
    "plain": {},
    "per_sample_dropout": {"keep_prob": [0.8, 0.6, 0.7]},
    "per_batch_dropout": {"keep_prob": [0.8, 0.5, 0.7], "dropout_mode": "per_batch"},
    "momentum": {"momentum": 0.9, "lr_decay": 0.5},
    "l1_l2": {"l2": [1e-3, 2e-3, 0.0], "l1": 1e-4},
    "everything_per_batch": {"keep_prob": [0.7, 0.6, 1.0], "dropout_mode": "per_batch", "momentum": 0.5,
                             "l2": 1e-3, "l1": 1e-4},
    "everything_per_sample": {"keep_prob": [0.7, 1.0, 0.6], "momentum": 0.5, "l2": 1e-3, "l1": 1e-4},
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_cpu_epoch_matches_the_numpy_loop(digits, mode, dtype):
    ref, ref_history = train("numpy", dtype, digits, **MODES[mode])
    cpu, cpu_history = train("cpu", dtype, digits, **MODES[mode])
    assert_params_close(cpu, ref, RTOL[dtype])
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert_close(cpu_history.column(key), ref_history.column(key), RTOL[dtype], key)
    # training really moved the parameters (the comparison is not between two initial nets)
    init = MLP([64, 24, 16, 10], seed=3, dtype=dtype, backend="numpy")
    assert np.abs(cpu.get_parameters()[0][0] - init.get_parameters()[0][0]).max() > 1e-3


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_regression_output_cpu_matches_numpy_and_learns(dtype):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((230, 6))
    Y = np.stack([np.sin(X[:, 0]) + X[:, 1] ** 2, X[:, 2] * X[:, 3]], axis=1)
    data = (X[:180], Y[:180], X[180:], Y[180:])
    kw = dict(layer_sizes=(6, 20, 2), output="identity", epochs=6, batch_size=32, learning_rate=0.05,
              momentum=0.5, keep_prob=[1.0, 0.8])
    ref, ref_history = train("numpy", dtype, data, **kw)
    cpu, cpu_history = train("cpu", dtype, data, **kw)
    assert_params_close(cpu, ref, RTOL[dtype])
    assert cpu_history.records[-1]["val_accuracy"] is None
    assert cpu_history.records[-1]["val_loss"] < cpu_history.records[0]["val_loss"]


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("mode", ["per_sample_dropout", "everything_per_batch"])
def test_same_seed_twice_gives_identical_parameters(digits, backend, mode):
    a, ha = train(backend, np.float32, digits, **MODES[mode])
    b, hb = train(backend, np.float32, digits, **MODES[mode])
    assert_params_equal(a.get_parameters(), b.get_parameters())
    assert ha.column("train_loss") == hb.column("train_loss")
    c, _ = train(backend, np.float32, digits, **dict(MODES[mode], seed=1))  # the trainer seed
    assert not np.array_equal(a.get_parameters()[0][0], c.get_parameters()[0][0])
    d, _ = train(backend, np.float32, digits, net_seed=4, **MODES[mode])  # the network's seed
    assert not np.array_equal(a.get_parameters()[0][0], d.get_parameters()[0][0])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_each_epoch_visits_the_examples_in_its_own_seeded_order(digits, backend):
    """Epoch e's order is default_rng([seed, e]).permutation(n), another one each epoch, and the step
    count runs on across epochs: a fit equals its engine driven epoch by epoch with those orders."""
    X, y = digits[0][:100], digits[1][:100]
    config = TrainConfig(epochs=3, batch_size=16, learning_rate=0.1, lr_schedule="decay", momentum=0.5,
                         keep_prob=[0.9, 0.7], seed=7)
    fitted = MLP([64, 16, 10], seed=0, backend=backend)
    Trainer(fitted, config).fit(X, y)

    orders = [np.random.default_rng([7, epoch]).permutation(100) for epoch in range(3)]
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    by_hand = MLP([64, 16, 10], seed=0, backend=backend)
    engine = make_engine(by_hand, config, X, y, 16, *config.per_layer(by_hand))
    for epoch, order in enumerate(orders):
        engine.run_epoch(order, config.learning_rate, epoch * 7)  # 7 minibatches of 16 (the last of 4) per epoch
    assert_params_equal(fitted.get_parameters(), by_hand.get_parameters())


# ---------------------------------------------------------------- one step by hand
def _softmax(Z):
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("dropout", [False, True])
def test_one_sgd_step_equals_the_lecture_worked_by_hand(backend, dropout):
    """One full-batch step: forward, (y_hat - y), g = (delta W2) * relu'(z) * mask, W -= lr (grad + l2 W + l1 sign W)."""
    rng = np.random.default_rng(11)
    n, d, h, k = 12, 7, 5, 3
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    lr, l2, l1, keep = 0.3, [0.01, 0.02], [0.001, 0.0], [0.75, 0.5]
    net = MLP([d, h, k], seed=2, dtype=np.float64, backend=backend)
    net.set_parameters(net.get_parameters()[0], [rng.standard_normal(h), rng.standard_normal(k)])
    (W1, W2), (b1, b2) = net.get_parameters()
    config = dict(epochs=1, batch_size=n, learning_rate=lr, l2=l2, l1=l1, seed=9)
    if dropout:
        config["keep_prob"] = keep
    Trainer(net, **config).fit(X, y)

    # the single minibatch is the whole set, visited in epoch 0's order
    order = np.random.default_rng([9, 0]).permutation(n)
    Xb, yb = X[order], y[order]
    M0, M1 = np.ones((n, d)), np.ones((n, h))
    if dropout:  # step 0: stream 0 for the input, stream 1 for the hidden layer
        kernels.numpy_backend.dropout_mask(9, 0, keep[0], M0)
        kernels.numpy_backend.dropout_mask(9, 1, keep[1], M1)
        assert 0 < (M0 == 0).sum() < M0.size and 0 < (M1 == 0).sum() < M1.size
    A0 = Xb * M0
    Z1 = A0 @ W1.T + b1
    H1 = np.maximum(Z1, 0) * M1
    P = _softmax(H1 @ W2.T + b2)
    delta2 = (P - np.eye(k)[yb]) / n
    g = (delta2 @ W2) * (Z1 > 0) * M1
    expected_W2 = W2 - lr * (delta2.T @ H1 + l2[1] * W2 + l1[1] * np.sign(W2))
    expected_W1 = W1 - lr * (g.T @ A0 + l2[0] * W1 + l1[0] * np.sign(W1))
    (new_W1, new_W2), (new_b1, new_b2) = net.get_parameters()
    assert_close(new_W2, expected_W2, 1e-10, "W2")
    assert_close(new_W1, expected_W1, 1e-10, "W1")
    assert_close(new_b2, b2 - lr * delta2.sum(axis=0), 1e-10, "b2")
    assert_close(new_b1, b1 - lr * g.sum(axis=0), 1e-10, "b1")


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_per_batch_step_adjusts_only_the_retained_weights(backend):
    """The lecture's reduced network: one mask per minibatch; removed units' weights, biases and
    velocities stay exactly as they were (regularisation included); retained ones take the
    full network's gradient step under that mask."""
    rng = np.random.default_rng(4)
    n, d, h, k = 16, 10, 12, 4
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    lr, l2, keep, seed = 0.2, 0.05, [0.6, 0.5], 21
    net = MLP([d, h, k], seed=1, dtype=np.float64, backend=backend)
    before = net.get_parameters()
    Trainer(net, epochs=1, batch_size=n, learning_rate=lr, l2=l2, keep_prob=keep, dropout_mode="per_batch",
            seed=seed).fit(X, y)
    (W1, W2), (b1, b2) = net.get_parameters()

    m_in, m_hid = np.empty(d), np.empty(h)
    kernels.numpy_backend.dropout_mask(seed, 0, keep[0], m_in)
    kernels.numpy_backend.dropout_mask(seed, 1, keep[1], m_hid)
    kept_in, kept_hid = m_in != 0, m_hid != 0
    assert 0 < kept_in.sum() < d and 0 < kept_hid.sum() < h
    (W1_0, W2_0), (b1_0, b2_0) = before
    # removed units: untouched, bit for bit
    np.testing.assert_array_equal(W1[~kept_hid], W1_0[~kept_hid])
    np.testing.assert_array_equal(W1[:, ~kept_in], W1_0[:, ~kept_in])
    np.testing.assert_array_equal(W2[:, ~kept_hid], W2_0[:, ~kept_hid])
    np.testing.assert_array_equal(b1[~kept_hid], b1_0[~kept_hid])
    # retained: the full network's gradient under the broadcast mask, plus l2 on those weights only
    reference = MLP([d, h, k], dtype=np.float64, backend="numpy")
    reference.set_parameters(*before)
    order = np.random.default_rng([seed, 0]).permutation(n)
    _, grads = reference.loss_and_gradients(X[order], y[order], masks=[m_in, m_hid])
    (dW1, db1), (dW2, db2) = grads
    retained = np.ix_(kept_hid, kept_in)
    assert_close(W1[retained], (W1_0 - lr * (dW1 + l2 * W1_0))[retained], 1e-10, "W1 retained")
    assert_close(W2[:, kept_hid], (W2_0 - lr * (dW2 + l2 * W2_0))[:, kept_hid], 1e-10, "W2 retained")
    assert_close(b1[kept_hid], (b1_0 - lr * db1)[kept_hid], 1e-10, "b1 retained")
    assert_close(b2, b2_0 - lr * db2, 1e-10, "b2")


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_per_batch_survives_a_layer_with_every_unit_removed(backend):
    # keep 0.05 on 3 hidden units: some minibatches have no hidden unit at all (output = bias only)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    net = MLP([5, 3, 3], seed=0, dtype=np.float64, backend=backend)
    history = Trainer(net, epochs=2, batch_size=4, keep_prob=[1.0, 0.05], dropout_mode="per_batch").fit(X, y)
    assert history.stop_reason == "max_epochs"
    assert all(np.isfinite(P).all() for P in net.get_parameters()[0] + net.get_parameters()[1])


# ---------------------------------------------------------------- stopping rules
def _recording_callback(net, store, interrupt_at=None, stop_at=None):
    def callback(record):
        store[record["epoch"]] = net.get_parameters()
        if record["epoch"] == interrupt_at:
            raise KeyboardInterrupt
        return record["epoch"] == stop_at
    return callback


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_early_stopping_restores_the_best_epoch(digits, backend):
    X, y, _, _ = digits
    # validation labels shifted by one class: the better the net fits y, the worse it does on them,
    # so the validation loss rises after the first epochs
    y_bad = (y + 1) % 10
    net = MLP([64, 32, 10], seed=0, dtype=np.float64, backend=backend)
    store = {}
    history = Trainer(net, epochs=30, batch_size=32, learning_rate=0.1, early_stopping=True, patience=3) \
        .fit(X, y, X_val=X, y_val=y_bad, callback=_recording_callback(net, store))
    val = history.column("val_loss")
    assert history.stop_reason == "early_stopping"
    assert history.best_epoch == int(np.argmin(val))
    assert len(val) == history.best_epoch + 1 + 3 < 30
    assert val[-1] > val[history.best_epoch]
    assert_params_equal(net.get_parameters(), store[history.best_epoch])
    final_val_loss, _ = evaluate(net, X.astype(np.float64), y_bad)
    assert final_val_loss == pytest.approx(val[history.best_epoch], rel=1e-12)


def test_early_stopping_on_val_accuracy_and_without_validation_data(digits):
    X, y, X_val, y_val = digits
    net = MLP([64, 16, 10], seed=0, backend="cpu")
    history = Trainer(net, epochs=40, batch_size=32, learning_rate=0.5, early_stopping=True, patience=2,
                      monitor="val_accuracy", tol=0.0).fit(X, y, X_val=X_val, y_val=y_val)
    acc = history.column("val_accuracy")
    assert history.best_epoch == int(np.argmax(acc))
    # no validation data: the training loss is monitored
    net = MLP([64, 16, 10], seed=0, backend="cpu")
    history = Trainer(net, epochs=5, early_stopping=True, tol=10.0, patience=2).fit(X, y)
    assert history.stop_reason == "early_stopping" and history.best_epoch == 0 and len(history) == 3


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("mode", ["plain", "per_batch_dropout"])
def test_divergence_is_caught_and_the_last_good_parameters_kept(digits, backend, mode):
    X, y, _, _ = digits
    net = MLP([64, 24, 16, 10], seed=3, dtype=np.float32, backend=backend)
    store = {}
    with pytest.warns(RuntimeWarning, match="diverged"):
        history = Trainer(net, epochs=10, batch_size=50, learning_rate=1e30, **MODES[mode]) \
            .fit(X, y, callback=_recording_callback(net, store))
    assert history.stop_reason == "diverged"
    weights, biases = net.get_parameters()
    assert all(np.isfinite(P).all() for P in weights + biases)
    if history.records:
        assert_params_equal((weights, biases), store[history.records[-1]["epoch"]])
    else:
        assert_params_equal((weights, biases), MLP([64, 24, 16, 10], seed=3, dtype=np.float32).get_parameters())


def test_divergence_after_good_epochs_restores_the_previous_epoch(tmp_path):
    # identity output on growing targets: SGD with a learning rate just above stability diverges
    # after a few epochs, not at once
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    Y = X @ rng.standard_normal((4, 1))
    net = MLP([4, 8, 1], output="identity", seed=0, dtype=np.float64, backend="cpu")
    store = {}
    ckpt = tmp_path / "ckpt.npz"
    with pytest.warns(RuntimeWarning, match="diverged"):
        history = Trainer(net, epochs=100, batch_size=64, learning_rate=0.8) \
            .fit(X, Y, callback=_recording_callback(net, store), checkpoint_path=ckpt)
    assert history.stop_reason == "diverged" and len(history) >= 2
    last = history.records[-1]["epoch"]
    assert_params_equal(net.get_parameters(), store[last])
    assert_params_equal(mlp.load(ckpt).get_parameters(), store[last])  # NaN never saved


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_keyboard_interrupt_keeps_the_best_parameters(digits, backend, tmp_path):
    X, y, X_val, y_val = digits
    net = MLP([64, 32, 10], seed=0, backend=backend)
    store = {}
    ckpt = tmp_path / "run.ckpt"
    history = Trainer(net, epochs=10, batch_size=50, learning_rate=0.3, momentum=0.9) \
        .fit(X, y, X_val=X_val, y_val=y_val, checkpoint_path=ckpt,
             callback=_recording_callback(net, store, interrupt_at=3))
    assert history.stop_reason == "interrupted" and len(history) == 4
    assert history.best_epoch == int(np.argmin(history.column("val_loss")))
    assert_params_equal(net.get_parameters(), store[history.best_epoch])
    assert ckpt.exists()


def test_callback_returning_true_stops(digits):
    X, y, _, _ = digits
    net = MLP([64, 16, 10], seed=0, backend="cpu")
    history = net.fit(X, y, epochs=10, callback=lambda record: record["epoch"] == 1)
    assert history.stop_reason == "callback" and len(history) == 2


RESUMED_OPTIMIZERS = {
    "momentum": dict(learning_rate=0.1, momentum=0.8, lr_decay=0.1, patience=10),
    "adam": dict(learning_rate=0.01, optimizer="adam", alpha=0.1, lr_schedule="adaptive", patience=1, tol=0.5),
}


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("optimizer", sorted(RESUMED_OPTIMIZERS))
def test_resume_from_checkpoint_equals_uninterrupted_training(digits, backend, optimizer, tmp_path):
    """The optimizer state (velocities; Adam's moments, its step count from the epoch) and the adaptive
    schedule's rate come back from the checkpoint: the resumed run is bit for bit the uninterrupted one."""
    X, y, X_val, y_val = digits
    config = dict(epochs=6, batch_size=50, keep_prob=[0.9, 0.6], early_stopping=optimizer == "momentum",
                  **RESUMED_OPTIMIZERS[optimizer])
    full = MLP([64, 32, 10], seed=0, backend=backend)
    full_history = Trainer(full, **config).fit(X, y, X_val=X_val, y_val=y_val)

    ckpt = tmp_path / "ckpt.npz"
    first = MLP([64, 32, 10], seed=0, backend=backend)
    store = {}
    Trainer(first, **config).fit(X, y, X_val=X_val, y_val=y_val, checkpoint_path=ckpt,
                                 callback=_recording_callback(first, store, interrupt_at=2))
    resumed = MLP([64, 32, 10], seed=123, backend=backend)  # parameters come from the checkpoint
    history = Trainer(resumed, **config).fit(X, y, X_val=X_val, y_val=y_val, checkpoint_path=ckpt, resume=True)
    assert_params_equal(resumed.get_parameters(), full.get_parameters())
    assert history.column("train_loss") == full_history.column("train_loss")
    assert history.column("val_loss") == full_history.column("val_loss")
    assert history.best_epoch == full_history.best_epoch and history.stop_reason == "max_epochs"
    assert history.column("learning_rate") == full_history.column("learning_rate")
    # the divergence check's reference comes from the checkpoint, not from the trained parameters it holds
    # (measured under "auto" threads: equal to BLAS's summation order)
    assert history.start_loss == pytest.approx(full_history.start_loss, rel=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_learning_rate_schedules(digits, backend):
    X, y, _, _ = digits
    n = len(X)
    _, history = train(backend, np.float64, digits, epochs=3, lr_schedule="invscaling", power_t=0.5)
    assert history.column("learning_rate") == [0.1, 0.1 / (n + 1) ** 0.5, 0.1 / (2 * n + 1) ** 0.5]
    # adaptive: a tol no epoch can beat, so after the first (the best so far) every `patience` epochs
    # without improvement divide the rate by 5
    _, history = train(backend, np.float64, digits, epochs=6, lr_schedule="adaptive", patience=2, tol=10.0)
    assert history.column("learning_rate") == pytest.approx([0.1, 0.1, 0.1, 0.02, 0.02, 0.004])
    _, history = train(backend, np.float64, digits, epochs=30, learning_rate=3e-6, lr_schedule="adaptive",
                       patience=1, tol=10.0)
    assert history.stop_reason == "early_stopping" and history.column("learning_rate")[-1] <= 1e-6
    # cosine, after a linear warm-up: 0.1 * (e + 1) / 2 for e < 2, then 0.1 * (1 + cos(pi (e - 2) / 4)) / 2
    _, history = train(backend, np.float64, digits, epochs=6, lr_schedule="cosine", warmup_epochs=2)
    c = np.cos(np.pi / 4)
    assert history.column("learning_rate") == pytest.approx([0.05, 0.1, 0.1, 0.05 * (1 + c), 0.05, 0.05 * (1 - c)],
                                                            rel=1e-15)
    with pytest.raises(ValueError, match="warmup_epochs applies to lr_schedule decay or cosine"):
        Trainer(MLP([4, 3, 2], backend="numpy"), lr_schedule="invscaling", warmup_epochs=1)
    # decay counts its epochs from the end of the warm-up
    _, history = train(backend, np.float64, digits, epochs=4, lr_decay=0.5, warmup_epochs=1)
    assert history.column("learning_rate") == pytest.approx([0.1, 0.1, 0.1 / 1.5, 0.1 / 2], rel=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
def test_adam_and_nesterov_learn_with_every_activation(digits, backend, activation):
    X, y, X_val, y_val = digits
    for optimizer in (dict(optimizer="adam", learning_rate=0.01), dict(momentum=0.9, nesterov=True)):
        net = MLP([64, 24, 10], activation=activation, seed=0, dtype=np.float64, backend=backend)
        history = Trainer(net, **{**PLAIN_SGD, "epochs": 10, "batch_size": 50, **optimizer}).fit(
            X, y, X_val=X_val, y_val=y_val)
        losses = history.column("train_loss")
        # logistic units learn slowest (its derivative is at most 1/4): 0.77 after 10 epochs of Nesterov
        assert history.column("val_accuracy")[-1] > 0.7 and losses[-1] < 0.7 * losses[0], (activation, optimizer)


def test_alpha_is_l2_divided_by_the_minibatch_rows(digits):
    """alpha = l2 * rows gives the same steps when every minibatch has the same rows (360 / 40)."""
    X, y, _, _ = digits
    nets = [MLP([64, 16, 10], seed=0, dtype=np.float64, backend="cpu") for _ in range(2)]
    Trainer(nets[0], **{**PLAIN_SGD, "epochs": 2, "batch_size": 40, "alpha": 0.4}).fit(X, y)
    Trainer(nets[1], **{**PLAIN_SGD, "epochs": 2, "batch_size": 40, "l2": 0.01}).fit(X, y)
    assert_params_close(nets[0], nets[1], 1e-12)


def test_resume_rejects_a_different_configuration(digits, tmp_path):
    X, y, _, _ = digits
    ckpt = tmp_path / "ckpt.npz"
    Trainer(MLP([64, 8, 10], seed=0, backend="cpu"), epochs=1).fit(X, y, checkpoint_path=ckpt)
    with pytest.raises(ValueError, match="learning_rate"):
        Trainer(MLP([64, 8, 10], backend="cpu"), epochs=2, learning_rate=0.5).fit(
            X, y, checkpoint_path=ckpt, resume=True)
    with pytest.raises(ValueError, match=r"\[64, 9, 10\]"):
        Trainer(MLP([64, 9, 10], backend="cpu"), epochs=2).fit(X, y, checkpoint_path=ckpt, resume=True)
    # the cosine schedule's rates depend on the number of epochs: changing it cannot resume
    ckpt = tmp_path / "cosine.npz"
    Trainer(MLP([64, 8, 10], seed=0, backend="cpu"), epochs=2, lr_schedule="cosine").fit(X, y, checkpoint_path=ckpt)
    with pytest.raises(ValueError, match="epochs"):
        Trainer(MLP([64, 8, 10], backend="cpu"), epochs=4, lr_schedule="cosine").fit(
            X, y, checkpoint_path=ckpt, resume=True)


# ---------------------------------------------------------------- configuration and data
BAD_CONFIGS = [
    ("epochs", 0, ValueError), ("epochs", 2.0, TypeError), ("batch_size", 0, ValueError),
    ("batch_size", True, TypeError), ("learning_rate", 0.0, ValueError), ("learning_rate", float("nan"), ValueError),
    ("momentum", 1.0, ValueError), ("momentum", "0.9", TypeError), ("lr_decay", -0.1, ValueError),
    ("l2", -1e-3, ValueError), ("l2", [0.1, 0.1, 0.1], ValueError), ("l1", "big", TypeError),
    ("keep_prob", 0.0, ValueError), ("keep_prob", [0.5], ValueError), ("keep_prob", 1.5, ValueError),
    ("dropout_mode", "per_minibatch", ValueError), ("validation_fraction", 1.0, ValueError),
    ("early_stopping", "yes", TypeError), ("patience", 0, ValueError), ("tol", -1.0, ValueError),
    ("monitor", "loss", ValueError), ("seed", -1, ValueError), ("seed", 1.5, TypeError),
    ("optimizer", "rmsprop", ValueError), ("nesterov", 1, TypeError), ("beta_1", 1.0, ValueError),
    ("beta_2", -0.1, ValueError), ("epsilon", 0.0, ValueError), ("lr_schedule", "step", ValueError),
    ("power_t", -1.0, ValueError), ("alpha", -1.0, ValueError), ("warmup_epochs", -1, ValueError),
    ("warmup_epochs", TRAINING["epochs"], ValueError), ("warmup_epochs", 1.0, TypeError),
]


@pytest.mark.parametrize("field,value,exc", BAD_CONFIGS, ids=[f"{f}={v!r}" for f, v, _ in BAD_CONFIGS])
def test_bad_config_values_raise_naming_the_field(field, value, exc):
    net = MLP([4, 3, 2], backend="numpy")
    with pytest.raises(exc, match=f"TrainConfig.{field}"):
        Trainer(net, **{field: value})


def test_config_overrides_and_to_dict():
    base = TrainConfig(epochs=2, l2=(1e-3, 0), keep_prob=np.array([0.8, 0.5]))
    trainer = Trainer(MLP([4, 3, 2], backend="numpy"), base, learning_rate=0.5)
    assert trainer.config.learning_rate == 0.5 and trainer.config.epochs == 2
    assert base.learning_rate == 0.05  # the caller's config is not modified
    d = trainer.config.to_dict()
    assert d["l2"] == [1e-3, 0.0] and d["keep_prob"] == [0.8, 0.5]
    assert json.loads(json.dumps(d)) == d


def test_config_errors_that_need_the_network():
    with pytest.raises(ValueError, match="monitor"):
        Trainer(MLP([4, 3, 2], output="identity", backend="numpy"), monitor="val_accuracy")
    with pytest.raises(TypeError, match="learning_rat"):
        Trainer(MLP([4, 3, 2], backend="numpy"), learning_rat=0.1)
    with pytest.raises(TypeError, match="config"):
        Trainer(MLP([4, 3, 2], backend="numpy"), config={"epochs": 2})
    net = MLP([4, 3, 2], backend="numpy")
    with pytest.raises(ValueError, match="X_val and y_val"):
        Trainer(net).fit(np.ones((5, 4)), np.zeros(5, int), X_val=np.ones((2, 4)))
    with pytest.raises(ValueError, match="4 columns"):
        Trainer(net).fit(np.ones((5, 3)), np.zeros(5, int))
    with pytest.raises(ValueError, match="checkpoint_path"):
        Trainer(net).fit(np.ones((5, 4)), np.zeros(5, int), resume=True)


def test_validation_fraction_carves_a_validation_set_and_batch_size_is_clamped(digits):
    X, y, _, _ = digits
    net = MLP([64, 16, 10], seed=0, backend="cpu")
    history = Trainer(net, epochs=2, batch_size=10_000, validation_fraction=0.25).fit(X, y)
    assert all(r["val_loss"] is not None and r["val_accuracy"] is not None for r in history.records)
    assert net.metadata["n_train"] == 270 and net.metadata["train_config"]["validation_fraction"] == 0.25


def test_history_round_trips_through_json(digits, tmp_path):
    X, y, X_val, y_val = digits
    history = mlp.fit(MLP([64, 8, 10], seed=0, backend="cpu"), X, y, epochs=2, X_val=X_val, y_val=y_val)
    path = tmp_path / "history.json"
    history.save_json(path)
    loaded = json.loads(path.read_text())
    assert loaded == history.to_dict()
    assert History.from_dict(loaded).column("val_loss") == history.column("val_loss")


# ---------------------------------------------------------------- inference helpers
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_predict_proba_and_mc_dropout(digits, backend):
    X, y, X_val, _ = digits
    net = MLP([64, 16, 10], seed=0, dtype=np.float64, backend=backend)
    net.fit(X, y, epochs=2, keep_prob=[0.9, 0.5])
    probs = net.predict_proba(X_val)
    np.testing.assert_allclose(probs, net.forward(X_val), rtol=1e-12)
    # keep 1: every sampled network is the full network
    np.testing.assert_allclose(net.mc_dropout_proba(X_val, 1.0, n_samples=2), probs, rtol=1e-12)
    mc = net.mc_dropout_proba(X_val, [0.9, 0.5], n_samples=3, seed=7)
    np.testing.assert_allclose(mc.sum(axis=1), 1.0, rtol=1e-12)
    # by hand: network k uses one mask (width,) per masked layer, stream k * n_layers + layer
    expected = np.zeros_like(probs)
    for k in range(3):
        masks = []
        for j, (width, keep) in enumerate(zip([64, 16], [0.9, 0.5])):
            m = np.empty(width)
            kernels.numpy_backend.dropout_mask(7, k * 2 + j, keep, m)
            masks.append(m)
        expected += net.forward(X_val, masks=masks) / 3
    assert_close(mc, expected, 1e-10, "mc dropout")
    assert not np.allclose(mc, net.mc_dropout_proba(X_val, [0.9, 0.5], n_samples=3, seed=8))
    with pytest.raises(ValueError, match="softmax"):
        MLP([4, 2], output="identity", backend=backend).predict_proba(np.ones((1, 4)))
    with pytest.raises(ValueError, match="n_samples"):
        net.mc_dropout_proba(X_val, 0.5, n_samples=0)


def test_per_batch_mode_needs_a_host_backend():
    with pytest.raises(ValueError, match="per_batch"):
        Trainer(MLP([4, 5, 3], backend="cuda"), keep_prob=0.5, dropout_mode="per_batch")


_ALLOCATION_PROBE = """
import json, numpy as np
from numba.core.runtime import rtsys
from mlp import MLP, Trainer
from mlp.engines import make_engine
rng = np.random.default_rng(0)
X, y = rng.standard_normal((400, 20)).astype(np.float32), rng.integers(0, 3, 400)
result = {}
for name, kw in {"plain": {}, "per_sample": {"keep_prob": [0.8, 0.5, 0.7], "momentum": 0.5},
                 "per_batch": {"keep_prob": [0.8, 0.5, 0.7], "dropout_mode": "per_batch", "momentum": 0.5}}.items():
    counts = []
    for n in (40, 400):
        trainer = Trainer(MLP([20, 16, 8, 3], seed=0, backend="cpu"), epochs=1, batch_size=10, **kw)
        l2, l1, keep = trainer.config.per_layer(trainer.net)
        engine = make_engine(trainer.net, trainer.config, X[:n], y[:n], 10, l2, l1, keep)
        engine.run_epoch(np.arange(n), 0.1, 0)  # compiles
        before = rtsys.get_allocation_stats().alloc
        engine.run_epoch(np.arange(n), 0.1, 0)
        counts.append(rtsys.get_allocation_stats().alloc - before)
    result[name] = counts
print(json.dumps(result))
"""


def test_the_compiled_epoch_allocates_nothing_per_minibatch():
    """numba's allocation counter over an epoch of 4 and of 40 minibatches: equal, so nothing is
    allocated inside the minibatch loop (what remains is the per-call argument handling)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_NRT_STATS="1")
    out = subprocess.run([sys.executable, "-c", _ALLOCATION_PROBE], env=env, capture_output=True, text=True,
                         timeout=600, check=True).stdout
    counts = json.loads(out.strip().splitlines()[-1])
    for mode, (short, long) in counts.items():
        assert short == long, f"{mode}: {short} allocations for 4 minibatches, {long} for 40"


def test_unscaled_pixels_warn_at_fit(digits):
    X, y, _, _ = digits
    net = MLP([64, 8, 10], seed=0, backend="numpy")
    # Raw pixels kill every unit of the hidden layer in the first epoch: the trainer says so too.
    with pytest.warns(mlp.UnscaledInputWarning, match="divide by 255"), \
            pytest.warns(RuntimeWarning, match="diverged in epoch 0: every unit of hidden layer 1"):
        history = net.fit(np.rint(X * 255).astype(np.uint8), y, epochs=1)
    assert history.stop_reason == "diverged"
