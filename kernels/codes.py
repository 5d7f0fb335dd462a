"""The integer codes that kernels take for names: hidden activations and output layers.

Compiled kernels (numba, CUDA) branch on a small integer, not on a string, so every
backend and engine translates a name through these tuples: a name's code is its index.
The names are scikit-learn's (``MLPClassifier(activation=...)``, ``out_activation_``).
"""

#: Hidden-layer activations f, applied elementwise: H = f(Z).
ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
IDENTITY, LOGISTIC, TANH, RELU = range(len(ACTIVATIONS))

#: Output layers, each with the loss whose gradient with respect to the logits is (y_hat - y) / n:
#:   softmax   mean cross-entropy over integer labels        (classification)
#:   identity  (1/2n) sum ||y_hat - y||^2                      (regression)
#:   logistic  mean binary cross-entropy over 0/1 targets     (binary and multilabel classification)
#:   exp       mean half Poisson deviance, y_hat = exp(z)     (counts)
OUTPUTS = ("softmax", "identity", "logistic", "exp")
SOFTMAX, IDENTITY_OUTPUT, LOGISTIC_OUTPUT, EXP_OUTPUT = range(len(OUTPUTS))


def activation_code(name):
    """The code of a hidden activation's name; ValueError naming the choices."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS.index(name)


def output_code(name):
    """The code of an output layer's name; ValueError naming the choices."""
    if name not in OUTPUTS:
        raise ValueError(f"output must be one of {list(OUTPUTS)}; got {name!r}")
    return OUTPUTS.index(name)
