"""Weight initialisation schemes.

The lecture's scheme, "normal": each entry of W(j) drawn from a zero-mean
distribution with standard deviation 1/sqrt(cols(W(j))), biases zero. "zeros"
reproduces the lecture's exercises (a network that cannot learn). Two other
common schemes are offered beside them.
"""
import numpy as np

INITS = ("normal", "zeros", "he", "xavier")


def init_parameters(layer_sizes, init, rng, dtype):
    """Host arrays (weights, biases): weights[l] (fan_out, fan_in), biases[l] (fan_out,).

    normal : W ~ N(0, 1/fan_in)           (the lecture: std 1/sqrt(cols(W)))
    he     : W ~ N(0, 2/fan_in)           (He et al. 2015, for ReLU layers)
    xavier : W ~ U(+-sqrt(6/(fan_in + fan_out)))   (Glorot and Bengio 2010)
    zeros  : W = 0
    Biases start at zero in every scheme.
    """
    weights, biases = [], []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        if init == "normal":
            W = rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)
        elif init == "he":
            W = rng.standard_normal((fan_out, fan_in)) * np.sqrt(2.0 / fan_in)
        elif init == "xavier":
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-limit, limit, (fan_out, fan_in))
        elif init == "zeros":
            W = np.zeros((fan_out, fan_in))
        else:
            raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
        weights.append(np.ascontiguousarray(W, dtype=dtype))
        biases.append(np.zeros(fan_out, dtype=dtype))
    return weights, biases
