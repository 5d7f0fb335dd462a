"""Small builders shared by the model tests."""
import numpy as np

import mlp


def random_net(layer_sizes, output, backend, dtype=np.float64, seed=0, activation="relu"):
    """A net whose weights and biases are all random and nonzero."""
    net = mlp.MLP(layer_sizes, output=output, activation=activation, seed=seed, dtype=dtype, backend=backend)
    rng = np.random.default_rng(seed + 1)
    weights, biases = net.get_parameters()
    net.set_parameters(weights, [0.1 * rng.standard_normal(b.shape) for b in biases])
    return net


def random_batch(net, n, seed=0):
    """X (n, d_in) and targets of the right kind for the net's output."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, net.n_features))
    if net.output == "softmax":
        Y = rng.integers(0, net.n_outputs, n)
    elif net.output == "logistic":
        Y = (rng.random((n, net.n_outputs)) < 0.5).astype(np.float64)
    elif net.output == "exp":
        Y = rng.poisson(1.5, (n, net.n_outputs)).astype(np.float64)
    else:
        Y = rng.standard_normal((n, net.n_outputs))
    return X, Y


def random_masks(net, n, keep=0.6, seed=0):
    """One inverted-dropout mask (n, width) per non-output layer."""
    rng = np.random.default_rng(seed)
    return [np.where(rng.random((n, w)) < keep, 1 / keep, 0.0) for w in net.layer_sizes[:-1]]
