"""The model's gradients against central finite differences, and backends against each other."""
import numpy as np
import pytest

import mlp
from helpers import random_batch, random_masks, random_net

ARCHITECTURES = [[5, 4, 3], [5, 4, 6, 3]]  # one and two hidden layers
REGULARISATION = {
    "none": dict(l2=0.0, l1=0.0),
    "l2": dict(l2=0.3, l1=0.0),
    "l1": dict(l2=0.0, l1=0.05),
    "l1+l2 per layer": "per-layer",
}


def _regularisation(kind, n_layers):
    if REGULARISATION[kind] == "per-layer":
        return dict(l2=[0.1 * (j + 1) for j in range(n_layers)], l1=[0.02 * (n_layers - j) for j in range(n_layers)])
    return REGULARISATION[kind]


def _numerical_gradient(net, X, Y, masks, reg, eps=1e-6):
    """Central differences of the loss with respect to every parameter."""
    grads = []
    for params in (net.weights, net.biases):
        for P in params:
            G = np.empty(P.shape)
            flat = P.reshape(-1)
            for i in range(flat.size):
                keep = flat[i]
                flat[i] = keep + eps
                up, _ = net.loss_and_gradients(X, Y, masks=masks, **reg)
                flat[i] = keep - eps
                down, _ = net.loss_and_gradients(X, Y, masks=masks, **reg)
                flat[i] = keep
                G.reshape(-1)[i] = (up - down) / (2 * eps)
            grads.append(G)
    L = net.n_layers
    return list(zip(grads[:L], grads[L:]))


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("masked", [False, True], ids=["no-masks", "masks"])
@pytest.mark.parametrize("reg", list(REGULARISATION))
@pytest.mark.parametrize("output", ["softmax", "identity"])
@pytest.mark.parametrize("sizes", ARCHITECTURES, ids=["1-hidden", "2-hidden"])
def test_gradients_match_finite_differences(sizes, output, reg, masked, backend):
    net = random_net(sizes, output, backend, seed=len(sizes))
    X, Y = random_batch(net, 6, seed=2)
    masks = random_masks(net, 6, seed=3) if masked else None
    reg = _regularisation(reg, net.n_layers)
    _, analytic = net.loss_and_gradients(X, Y, masks=masks, **reg)
    numeric = _numerical_gradient(net, X, Y, masks, reg)
    for l, ((dW, db), (nW, nb)) in enumerate(zip(analytic, numeric)):
        # central differences in float64 with eps 1e-6: truncation ~1e-12, rounding ~1e-10
        np.testing.assert_allclose(dW, nW, rtol=1e-5, atol=1e-7, err_msg=f"dW[{l}]")
        np.testing.assert_allclose(db, nb, rtol=1e-5, atol=1e-7, err_msg=f"db[{l}]")


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
@pytest.mark.parametrize("output", ["softmax", "identity", "logistic", "exp"])
def test_every_activation_and_output_matches_finite_differences(output, activation, backend):
    net = random_net([5, 4, 3], output, backend, seed=5, activation=activation)
    X, Y = random_batch(net, 6, seed=2)
    masks = random_masks(net, 6, seed=3)
    reg = _regularisation("l1+l2 per layer", net.n_layers)
    _, analytic = net.loss_and_gradients(X, Y, masks=masks, **reg)
    numeric = _numerical_gradient(net, X, Y, masks, reg)
    for l, ((dW, db), (nW, nb)) in enumerate(zip(analytic, numeric)):
        np.testing.assert_allclose(dW, nW, rtol=1e-5, atol=1e-7, err_msg=f"dW[{l}]")
        np.testing.assert_allclose(db, nb, rtol=1e-5, atol=1e-7, err_msg=f"db[{l}]")


def _relative_error(got, want):
    return np.abs(np.asarray(got, np.float64) - want).max() / max(np.abs(want).max(), 1e-30)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-4)], ids=["float64", "float32"])
@pytest.mark.parametrize("output", ["softmax", "identity"])
@pytest.mark.parametrize("sizes", [[7, 257, 10], [257, 7, 1, 3], [1, 7, 2]])
def test_cpu_backend_matches_numpy_reference(sizes, output, dtype, tol):
    ref = random_net(sizes, output, "numpy", dtype=dtype, seed=5)
    cpu = ref.to_backend("cpu")
    X, Y = random_batch(ref, 33, seed=6)
    masks = random_masks(ref, 33, seed=7)
    reg = dict(l2=0.01, l1=0.001)
    assert _relative_error(cpu.forward(X, masks=masks), ref.forward(X, masks=masks)) <= tol
    loss_ref, grads_ref = ref.loss_and_gradients(X, Y, masks=masks, **reg)
    loss_cpu, grads_cpu = cpu.loss_and_gradients(X, Y, masks=masks, **reg)
    assert abs(loss_cpu - loss_ref) / abs(loss_ref) <= tol
    for (dW, db), (rW, rb) in zip(grads_cpu, grads_ref):
        assert _relative_error(dW, rW) <= tol
        assert _relative_error(db, rb) <= tol


def test_one_hot_labels_give_the_same_loss_and_gradients():
    net = random_net([4, 5, 3], "softmax", "numpy")
    X, y = random_batch(net, 8)
    loss_a, grads_a = net.loss_and_gradients(X, y)
    loss_b, grads_b = net.loss_and_gradients(X, np.eye(3)[y])
    assert loss_a == loss_b
    for (a, b), (c, d) in zip(grads_a, grads_b):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_a_mask_of_shape_width_applies_to_every_row():
    net = random_net([3, 4, 2], "identity", "numpy")
    X, _ = random_batch(net, 5)
    row_mask = [np.array([1.0, 0.0, 2.0]), np.array([0.5, 1.0, 0.0, 1.0])]
    full = [np.tile(m, (5, 1)) for m in row_mask]
    np.testing.assert_array_equal(net.forward(X, masks=row_mask), net.forward(X, masks=full))


def test_weights_are_live_and_shaped_as_in_the_lecture():
    net = mlp.MLP([784, 256, 10], seed=0, backend="cpu")
    assert [W.shape for W in net.weights] == [(256, 784), (10, 256)]
    assert [b.shape for b in net.biases] == [(256,), (10,)]
    X = np.random.default_rng(0).random((2, 784))
    before = net.forward(X)
    net.weights[1][...] = 0
    net.biases[1][...] = 0
    np.testing.assert_allclose(net.forward(X), 0.1, rtol=1e-6)  # uniform softmax
    assert not np.allclose(before, 0.1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_init_has_std_one_over_sqrt_cols(dtype):
    net = mlp.MLP([400, 300, 10], seed=1, dtype=dtype, backend="numpy")
    for W in net.weights:
        assert W.dtype == dtype
        # 3000+ samples: the sample std is within 5% of 1/sqrt(cols) with overwhelming probability
        assert abs(W.std() * np.sqrt(W.shape[1]) - 1) < 0.05
        assert abs(W.mean()) < 5 / np.sqrt(W.shape[1] * W.size)  # 5 standard errors of the mean
    assert all((b == 0).all() for b in net.biases)


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = (mlp.MLP([6, 5, 2], seed=s, backend="numpy") for s in (3, 3, 4))
    np.testing.assert_array_equal(a.weights[0], b.weights[0])
    assert not np.array_equal(a.weights[0], c.weights[0])


# ---------------------------------------------------------------- the model as a user meets it
def _summary_counts(text):
    """{layer name: parameter count} and the total, read back from ``net.summary()``."""
    counts, total = {}, None
    for line in text.splitlines():
        if line.startswith(("hidden", "output", "input")):
            name = " ".join(line.split()[:2]) if line.startswith("hidden") else line.split()[0]
            counts[name] = int(line.split()[-1].replace(",", ""))
        elif line.startswith("total parameters:"):
            total = int(line.split(":")[1].replace(",", ""))
    return counts, total


def test_summary_counts_every_parameter_and_print_shows_it(capsys):
    net = mlp.MLP([784, 256, 128, 10], activation="tanh", seed=0, dtype=np.float64, backend="numpy")
    text = net.summary()
    counts, total = _summary_counts(text)
    assert counts == {"input": 0, "hidden 1": 256 * 784 + 256, "hidden 2": 128 * 256 + 128, "output": 10 * 128 + 10}
    assert total == sum(W.size + b.size for W, b in zip(net.weights, net.biases)) == 235146
    assert "(256, 784)" in text and "(10,)" in text and "tanh" in text and "softmax" in text
    assert "float64" in text and "numpy" in text
    print(net)
    assert capsys.readouterr().out.strip() == text.strip()
    assert repr(net).startswith("MLP([784, 256, 128, 10], output='softmax'")  # repr unchanged


@pytest.mark.parametrize("output", ["softmax", "identity", "logistic"])
def test_evaluate_is_the_trainers_validation_loss_and_accuracy(output):
    net = random_net([6, 5, 3], output, "numpy")
    X, Y = random_batch(net, 40, seed=1)
    X_val, Y_val = random_batch(net, 30, seed=2)
    history = net.fit(X, Y, X_val=X_val, y_val=Y_val, epochs=1, batch_size=8, learning_rate=0.05,
                      l2=0.5, seed=0)
    loss, accuracy = net.evaluate(X_val, Y_val)
    record = history.records[-1]
    assert loss == pytest.approx(record["val_loss"], rel=1e-12)
    # the data loss only: the l2 penalty of loss_and_gradients is left out
    assert loss == pytest.approx(net.loss_and_gradients(X_val, Y_val)[0], rel=1e-12)
    assert loss < net.loss_and_gradients(X_val, Y_val, l2=0.5)[0]
    if output == "softmax":
        assert accuracy == record["val_accuracy"] == np.mean(net.predict(X_val) == Y_val)
    else:
        assert accuracy is None and record["val_accuracy"] is None


def test_evaluate_checks_its_arguments_as_the_trainer_does():
    net = random_net([4, 3, 2], "softmax", "numpy")
    with pytest.raises(ValueError, match="4 columns"):
        net.evaluate(np.zeros((5, 3)), np.zeros(5, int))
    with pytest.raises(ValueError, match="labels must lie in"):
        net.evaluate(np.zeros((5, 4)), np.full(5, 2))
    with pytest.raises(ValueError, match="Y has 4 labels"):
        net.evaluate(np.zeros((5, 4)), np.zeros(4, int))
    logistic = random_net([4, 3, 2], "logistic", "numpy")
    with pytest.raises(ValueError, match=r"targets in \[0, 1\]"):
        logistic.evaluate(np.zeros((5, 4)), np.full((5, 2), 2.0))


@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
def test_one_example_as_a_vector_gives_the_row_of_the_batch(output):
    net = random_net([5, 4, 3], output, "cpu")
    X, _ = random_batch(net, 6)
    for i in (0, 5):
        np.testing.assert_array_equal(net.forward(X[i]), net.forward(X)[i])
        assert net.forward(X[i]).shape == (3,)
        one = net.predict(X[i])
        np.testing.assert_array_equal(one, net.predict(X)[i])
        if output == "softmax":
            assert np.ndim(one) == 0
        if output != "identity":
            np.testing.assert_array_equal(net.predict_proba(X[i]), net.predict_proba(X)[i])
    with pytest.raises(ValueError, match="vector of 5 features; got shape \\(4,\\)"):
        net.predict(X[0, :4])


def test_a_vector_is_refused_when_the_network_has_one_input_feature():
    net = random_net([1, 4, 2], "softmax", "numpy")
    with pytest.raises(ValueError, match=r"ambiguous.*reshape\(-1, 1\)"):
        net.predict(np.zeros(3))
    with pytest.raises(ValueError, match="ambiguous"):
        net.forward(np.zeros(1))
    assert net.predict(np.zeros((3, 1))).shape == (3,)


def test_class_names_come_from_the_metadata_else_the_labels(tmp_path):
    net = mlp.MLP([4, 3], backend="numpy")
    assert net.class_names == ("0", "1", "2")
    net.metadata = {"class_names": ["cat", "dog", "bird"]}
    net.save(tmp_path / "m.npz")
    assert mlp.load(tmp_path / "m.npz").class_names == ("cat", "dog", "bird")
    net.metadata = {"class_names": ["cat", "dog"]}  # not one per output: not used
    assert net.class_names == ("0", "1", "2")


def test_fit_names_every_trainconfig_field_with_the_one_default():
    import dataclasses
    import inspect

    from mlp.defaults import TRAINING

    parameters = inspect.signature(mlp.MLP.fit).parameters
    for field in dataclasses.fields(mlp.TrainConfig):
        assert parameters[field.name].default == TRAINING[field.name] == field.default, field.name
        assert field.name in mlp.MLP.fit.__doc__, field.name


def test_fit_verbose_shows_the_progress_bar_and_still_calls_the_callback(capsys):
    from mlp.datasets import load_digits

    data = load_digits()
    net = mlp.MLP([64, 8, 10], seed=0, backend="numpy")
    seen = []
    history = net.fit(data.X_train, data.y_train, epochs=2, verbose=True, threads=1,
                      callback=lambda record: seen.append(record["epoch"]) or False)
    err = capsys.readouterr().err
    assert "training" in err and "2/2" in err and "threads=1" in err
    assert seen == [0, 1] and len(history) == 2
    net.fit(data.X_train, data.y_train, epochs=1, threads=1)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("masked", [False, True], ids=["no-masks", "masks"])
def test_forward_pass_keeps_the_lectures_z_h_and_y_hat(masked, dtype, backend):
    # two hidden layers of awkward widths: z(1), h(1), z(2), h(2), logits, y_hat written out in NumPy
    net = random_net([7, 5, 4, 3], "softmax", backend, dtype=dtype, seed=4, activation="tanh")
    X, _ = random_batch(net, 9, seed=5)
    masks = random_masks(net, 9, seed=6) if masked else [None, None, None]
    W, b = net.get_parameters()
    h, zs, hs = X * (1 if masks[0] is None else masks[0]), [], []
    for l in range(3):
        z = h @ W[l].T + b[l]
        zs.append(z)
        if l < 2:
            h = np.tanh(z) * (1 if masks[l + 1] is None else masks[l + 1])
            hs.append(h)
    e = np.exp(zs[-1] - zs[-1].max(axis=1, keepdims=True))
    y_hat = e / e.sum(axis=1, keepdims=True)
    passed = net.forward_pass(X.astype(dtype), masks=masks if masked else None)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    assert [z.shape for z in passed.z] == [(9, 5), (9, 4), (9, 3)] and [a.shape for a in passed.h] == [(9, 5), (9, 4)]
    for got, ref in zip(passed.z + passed.h + [passed.y_hat], zs + hs + [y_hat]):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(passed.y_hat, net.forward(X.astype(dtype), masks=masks if masked else None))
    # copies, not the buffers of the pass: a second pass leaves the first intact
    before = passed.z[0].copy()
    net.forward_pass(2 * X.astype(dtype))
    np.testing.assert_array_equal(passed.z[0], before)
