"""Forward and backward propagation through the backend kernels, on preallocated buffers.

The model's ``forward`` / ``loss_and_gradients``, the evaluation and the numpy
engine's step share these functions; the buffers are a ``Workspace`` per batch
size (the one buffer class: the cpu and cuda engines allocate theirs as
Workspaces too). Indexing, for L weight matrices:

    A[0] = X * masks[0]                         the (masked) input
    Z[l] = A[l] W[l]^T + b[l]                   l = 0 .. L-1 (Z[L-1] are the logits)
    A[l+1] = f(Z[l]) * masks[l+1]               hidden layers, l = 0 .. L-2
    delta[l] = dloss/dZ[l]
    dW[l] = delta[l]^T A[l],  db[l] = sum_rows delta[l]
    delta[l-1] = (delta[l] W[l]) * f'(Z[l-1]) * masks[l]      (the lecture's g)

f is the hidden activation, given by its code (``kernels.codes.ACTIVATIONS``; the
lecture's is relu). ``masks`` is None or one entry per non-output layer (input
first); an entry may be None for a layer without dropout.
"""
from typing import NamedTuple

import numpy as np
from scipy.special import expit, xlogy

# Each output layer's fused loss kernel (``kernels.codes.OUTPUTS`` says which loss).
LOSS_KERNELS = {"softmax": "softmax_cross_entropy", "identity": "squared_error",
                "logistic": "sigmoid_cross_entropy", "exp": "poisson_loss"}


class Workspace:
    """Every buffer a forward/backward pass of ``n`` rows needs, allocated once with the backend's ``empty``.

    Attributes
    ----------
    A : list of L arrays (n, layer_sizes[l]): the layer inputs. A[0] receives
        the (masked) minibatch, A[l+1] = f(Z[l]) * masks[l+1].
    Z, delta : lists of L arrays (n, layer_sizes[l+1]): pre-activations (Z[L-1]
        the logits) and dloss/dZ.
    dW, db : lists of L gradient arrays shaped like the parameters.
    outputs : (n, layer_sizes[L]): the output activations (softmax, logistic or exp).
    loss : (1,) float64.
    masks : list of L entries, one per non-output layer (input first): an (n,
        width) array for the layers listed in ``masked`` (an engine draws the
        dropout masks there), else None.
    targets : an array shaped like ``n`` rows of ``targets_like`` (the
        minibatch's labels or regression targets, for an engine that gathers
        them), or None.
    """

    def __init__(self, K, layer_sizes, n, dtype, masked=(), targets_like=None):
        L = len(layer_sizes) - 1
        self.n = n
        self.A = [K.empty((n, layer_sizes[l]), dtype) for l in range(L)]
        self.Z = [K.empty((n, layer_sizes[l + 1]), dtype) for l in range(L)]
        self.outputs = K.empty((n, layer_sizes[-1]), dtype)
        self.delta = [K.empty((n, layer_sizes[l + 1]), dtype) for l in range(L)]
        self.dW = [K.empty((layer_sizes[l + 1], layer_sizes[l]), dtype) for l in range(L)]
        self.db = [K.empty((layer_sizes[l + 1],), dtype) for l in range(L)]
        self.loss = K.zeros((1,), np.float64)
        self.masks = [K.empty((n, layer_sizes[j]), dtype) if j in masked else None for j in range(L)]
        self.targets = (None if targets_like is None
                        else K.empty((n,) + tuple(targets_like.shape[1:]), targets_like.dtype))


def chunked_workspaces(K, layer_sizes, n, dtype, chunk, workspaces):
    """Yield (start, stop, workspace) over ``n`` rows, ``chunk`` at a time.

    ``workspaces`` (rows -> Workspace) keeps the buffers between calls, so a
    repeated evaluation allocates nothing.
    """
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        rows = stop - start
        ws = workspaces.get(rows)
        if ws is None:
            ws = workspaces[rows] = Workspace(K, layer_sizes, rows, dtype)
        yield start, stop, ws


def _mask(masks, j):
    return None if masks is None else masks[j]


def forward(K, weights, biases, X, ws, masks=None, *, activation):
    """Fill ws.Z and ws.A[1:]; return the layer inputs [A[0], ..., A[L-1]].  X (n, d_in) on the backend.

    ``activation``: the hidden activation's code.
    Without an input mask A[0] is X itself (no copy); with one, ws.A[0] = X * masks[0]
    (X may be ws.A[0]: the mask is then applied in place).
    """
    L = len(weights)
    a = X
    if _mask(masks, 0) is not None:
        K.apply_mask(X, masks[0], ws.A[0])
        a = ws.A[0]
    inputs = [a]
    for l in range(L):
        K.matmul_nt(a, weights[l], ws.Z[l])
        if l == L - 1:
            K.bias_add(ws.Z[l], biases[l])
            break
        m = _mask(masks, l + 1)
        if m is None:
            K.bias_activation_forward(ws.Z[l], biases[l], activation, ws.A[l + 1])
        else:
            K.bias_activation_dropout_forward(ws.Z[l], biases[l], activation, m, ws.A[l + 1])
        a = ws.A[l + 1]
        inputs.append(a)
    return inputs


def output_loss(K, output, ws, targets):
    """Output activations into ws.outputs (not for identity), data loss into ws.loss[0], dloss/dlogits into ws.delta[-1]."""
    if output == "identity":
        K.squared_error(ws.Z[-1], targets, ws.delta[-1], ws.loss)
    else:
        getattr(K, LOSS_KERNELS[output])(ws.Z[-1], targets, ws.outputs, ws.delta[-1], ws.loss)


def weight_rows(output, logits, targets, weights, delta):
    """Sample weights, scikit-learn's way, on a host minibatch: reweight its gradient in place, return its loss.

    The minibatch's loss becomes sum_i w_i l_i / sum_i w_i (l_i: row i's data loss) and
    its gradient with respect to the logits (w_i / sum_i w_i) (y_hat_i - y_i): ``delta``,
    which ``output_loss`` filled with (y_hat - y) / n, has row i scaled by
    w_i n / sum_i w_i. A minibatch whose weights are all zero contributes nothing.

    logits, delta (n, k) host arrays; targets: int labels (n,) (softmax) or (n, k);
    weights (n,) float64. Returns the weighted loss as a Python float.
    """
    n = logits.shape[0]
    total = float(weights.sum())
    if total == 0:
        delta[...] = 0
        return 0.0
    z = logits.astype(np.float64)
    if output == "softmax":
        top = z.max(axis=1)
        rows = top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - z[np.arange(n), targets]
    else:
        t = targets.astype(np.float64)
        per_element = {"identity": lambda: 0.5 * (z - t) ** 2,
                       "logistic": lambda: np.logaddexp(0.0, z) - t * z,
                       "exp": lambda: xlogy(t, t) - t * z - t + np.exp(z)}[output]()
        rows = per_element.sum(axis=1)
    delta *= (weights * (n / total)).astype(delta.dtype)[:, None]
    return float(weights @ rows / total)


def output_activations(K, output, ws):
    """The output layer's activations as a host array (n, n_outputs), from the logits ws.Z[-1].

    softmax runs its kernel; logistic and exp, needed only to predict, are applied on the host.
    """
    if output == "softmax":
        K.softmax(ws.Z[-1], ws.outputs)
        return K.to_host(ws.outputs).copy()
    logits = K.to_host(ws.Z[-1])
    if output == "logistic":
        return expit(logits)
    if output == "exp":
        return np.exp(logits)
    return logits.copy()


class ForwardPass(NamedTuple):
    """Everything a forward propagation produced, as host arrays: the lecture's z, h and y_hat.

    z : list of L arrays (n, layer_sizes[l+1]): z[0] is the lecture's z(1), z[-1] the logits
    h : list of L-1 arrays: h[l] = f(z[l]) times the mask of layer l+1 (if any), the lecture's h(l+1)
    y_hat : array (n, n_outputs): the output activations, as ``output_activations`` gives them
    """
    z: list
    h: list
    y_hat: np.ndarray


def forward_pass(K, output, ws):
    """The ``ForwardPass`` of the forward propagation ``forward`` has just run on ``ws`` (copies)."""
    return ForwardPass(z=[K.to_host(Z).copy() for Z in ws.Z], h=[K.to_host(A).copy() for A in ws.A[1:]],
                       y_hat=output_activations(K, output, ws))


def backward(K, weights, inputs, ws, masks=None, *, activation):
    """From ws.delta[-1], fill ws.dW and ws.db (data term only) for every layer; ``activation`` as in ``forward``."""
    for l in range(len(weights) - 1, -1, -1):
        K.matmul_tn(ws.delta[l], inputs[l], ws.dW[l])
        K.bias_grad(ws.delta[l], ws.db[l])
        if l == 0:
            break
        K.matmul_nn(ws.delta[l], weights[l], ws.delta[l - 1])
        m = _mask(masks, l)
        if m is None:
            K.activation_backward(ws.delta[l - 1], ws.Z[l - 1], activation, ws.delta[l - 1])
        else:
            K.activation_dropout_backward(ws.delta[l - 1], ws.Z[l - 1], activation, m, ws.delta[l - 1])
