"""Each claim of the lecture (CS 4342, Class 22), checked on every host backend."""
import numpy as np
import pytest

import kernels
import mlp
from helpers import random_batch

BACKENDS = ["numpy", "cpu"]


def sgd_step(net, X, Y, lr, l2=0.0, l1=0.0):
    """One full-batch step of the lecture's regularised SGD through the backend's update kernel."""
    K = kernels.get_backend(net.backend)
    _, grads = net.loss_and_gradients(X, Y)  # data term only: the update kernel adds l2*W + l1*sign(W)
    for l, (dW, db) in enumerate(grads):
        K.sgd_update(net.weights[l], K.to_device(dW), lr, l2, l1)
        K.sgd_update(net.biases[l], K.to_device(db), lr, 0.0, 0.0)


def lecture_dropout_net(backend):
    net = mlp.MLP([3, 3, 2], output="identity", init="zeros", dtype=np.float64, backend=backend)
    net.weights[0][...] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    net.weights[1][...] = [[1, 2, 3], [4, 5, 6]]
    return net


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_example_reduced_network(backend):
    net = lecture_dropout_net(backend)
    x = np.array([[0.0, 1.0, 2.0]])
    # dropping the middle input and the middle hidden neuron (the lecture circles the rows and columns kept)
    np.testing.assert_array_equal(net.forward(x, masks=[[1, 0, 1], [1, 0, 1]]), [[60, 132]])
    np.testing.assert_array_equal(net.forward(x), [[120, 273]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_backprop_adjusts_only_retained_weights(backend):
    net = lecture_dropout_net(backend)
    x = np.array([[0.0, 1.0, 2.0]])
    _, [(dW1, db1), (dW2, db2)] = net.loss_and_gradients(x, [[1.0, 2.0]], masks=[[1, 0, 1], [1, 0, 1]])
    assert (dW1[1] == 0).all() and db1[1] == 0  # the removed hidden neuron's incoming weights
    assert (dW1[:, 1] == 0).all()  # the removed input's outgoing weights
    assert (dW2[:, 1] == 0).all()  # the removed hidden neuron's outgoing weights
    # the retained weights (the lecture circles W1's corners) do move; x[0] = 0 leaves column 0 still
    assert (dW1[[0, 2], 2] != 0).all() and (dW2[:, [0, 2]] != 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_zero_init_only_the_output_bias_gets_a_gradient(backend):
    net = mlp.MLP([6, 5, 3], init="zeros", dtype=np.float64, backend=backend)
    X, y = random_batch(net, 20)
    _, [(dW1, db1), (dW2, db2)] = net.loss_and_gradients(X, y)
    assert not dW1.any() and not db1.any() and not dW2.any()
    assert np.abs(db2).max() > 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_zero_init_output_approaches_the_label_frequencies(backend):
    net = mlp.MLP([4, 3, 3], init="zeros", dtype=np.float64, backend=backend)
    X = np.random.default_rng(0).standard_normal((10, 4))
    y = np.array([0] * 5 + [1] * 3 + [2] * 2)
    for _ in range(300):
        sgd_step(net, X, y, lr=1.0)
    assert not net.weights[0].any() and not net.weights[1].any() and not net.biases[0].any()
    np.testing.assert_allclose(net.forward(X), np.tile([0.5, 0.3, 0.2], (10, 1)), atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_exercise_1_zero_first_layer_only_output_bias_changes(backend):
    net = mlp.MLP([6, 5, 3], seed=1, dtype=np.float64, backend=backend)
    net.weights[0][...] = 0
    net.biases[1][...] = [0.3, -0.2, 0.1]
    W1, b1, W2, b2 = (np.array(a) for a in (net.weights[0], net.biases[0], net.weights[1], net.biases[1]))
    X, y = random_batch(net, 20)
    for _ in range(5):
        sgd_step(net, X, y, lr=0.5)
    np.testing.assert_array_equal(net.weights[0], W1)
    np.testing.assert_array_equal(net.biases[0], b1)
    np.testing.assert_array_equal(net.weights[1], W2)  # h = 0, so dW2 = (y_hat - y) h^T = 0
    assert np.abs(net.biases[1] - b2).max() > 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_exercise_2_zero_output_layer_recovers_after_one_step(backend):
    net = mlp.MLP([6, 5, 3], seed=2, dtype=np.float64, backend=backend)
    net.biases[0][...] = 0.1  # keep every hidden unit active so h != 0
    net.weights[1][...] = 0
    X, y = random_batch(net, 20)
    W1, b1, W2, b2 = (np.array(a) for a in (net.weights[0], net.biases[0], net.weights[1], net.biases[1]))
    sgd_step(net, X, y, lr=0.5)
    np.testing.assert_array_equal(net.weights[0], W1)  # g = (y_hat - y)^T W2 (.) relu' = 0
    np.testing.assert_array_equal(net.biases[0], b1)
    assert np.abs(net.weights[1] - W2).max() > 1e-3 and np.abs(net.biases[1] - b2).max() > 1e-3
    sgd_step(net, X, y, lr=0.5)
    assert np.abs(net.weights[0] - W1).max() > 1e-4 and np.abs(net.biases[0] - b1).max() > 1e-4


def _train(backend, l2=0.0, l1=0.0, steps=200):
    net = mlp.MLP([10, 8, 3], seed=3, dtype=np.float64, backend=backend)
    X, y = random_batch(net, 40, seed=4)
    for _ in range(steps):
        sgd_step(net, X, y, lr=0.2, l2=l2, l1=l1)
    return net


@pytest.mark.parametrize("backend", BACKENDS)
def test_larger_alpha_gives_smaller_weights(backend):
    small, large = _train(backend, l2=0.01), _train(backend, l2=0.1)
    for W_small, W_large in zip(small.weights, large.weights):
        assert np.linalg.norm(W_large) < 0.9 * np.linalg.norm(W_small)


@pytest.mark.parametrize("backend", BACKENDS)
def test_l1_drives_more_weights_to_exactly_zero_than_l2(backend):
    l1_net, l2_net = _train(backend, l1=0.05), _train(backend, l2=0.05)
    l1_zeros = sum(int((W == 0).sum()) for W in l1_net.weights)
    l2_zeros = sum(int((W == 0).sum()) for W in l2_net.weights)
    n_weights = sum(W.size for W in l1_net.weights)
    assert l1_zeros > 0.2 * n_weights
    assert l2_zeros < l1_zeros / 10
