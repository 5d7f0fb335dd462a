"""The cpu backend's regularisation and parameter updates (``kernels.cpu_backend`` re-exports them).

Same functions and signatures as the reference, ``kernels.numpy_backend``; read the
equations there: SGD, momentum, Nesterov's momentum and Adam, each with L2 and the
clipped L1 step, and their whole-layer forms (weights regularised, biases not) for the
compiled training loops. Serial loops over flat views: BLAS owns the cores.

A cached function that calls these names this module in its ``depends_on`` (``kernels.jit``).
"""
import functools

import numpy as np

from . import jit

# NumPy's error model: a division by zero gives inf or NaN (which the training loops detect)
# instead of a check raising ZeroDivisionError, a branch per element that kept Adam's loop
# from vectorising (6.7x slower, measured 2026-11-30).
njit = functools.partial(jit.njit, error_model="numpy")


# ---------------------------------------------------------------- regularisation and update
# These take parameters of any shape (weights (m, k), biases (m,)) through flat
# views of the C-contiguous arrays.
@njit
def add_regularization_grad(W, dW, l2, l1):
    """dW += l2 * W + l1 * sign(W).  W, dW (m, k)."""
    w = W.reshape(W.size)
    g = dW.reshape(dW.size)
    a = W.dtype.type(l2)
    c = W.dtype.type(l1)
    for i in range(w.size):
        g[i] += a * w[i] + c * np.sign(w[i])


@njit
def regularization_loss(W, l2, l1):
    """(l2/2) ||W||_F^2 + l1 sum|W|, accumulated in float64."""
    w = W.reshape(W.size)
    squares = 0.0
    absolutes = 0.0
    for i in range(w.size):
        x = np.float64(w[i])
        squares += x * x
        absolutes += abs(x)
    return 0.5 * l2 * squares + l1 * absolutes


@njit
def sgd_update(P, dP, lr, l2, l1):
    """P -= lr * (dP + l2 * P + l1 * sign(P)), in place; with l1 > 0 a weight crossing zero stops at 0."""
    p = P.reshape(P.size)
    g = dP.reshape(dP.size)
    step = P.dtype.type(lr)
    a = P.dtype.type(l2)
    c = P.dtype.type(l1)
    zero = P.dtype.type(0)
    clip = l1 > 0
    for i in range(p.size):
        old = p[i]
        new = old - step * (g[i] + a * old + c * np.sign(old))
        p[i] = zero if clip and new * old < zero else new


@njit
def sgd_momentum_update(P, dP, V, lr, momentum, l2, l1):
    """V = momentum * V - lr * (dP + l2 * P + l1 * sign(P));  P += V, in place.

    With l1 > 0 a weight crossing zero stops at 0 and its velocity resets to 0.
    """
    p = P.reshape(P.size)
    g = dP.reshape(dP.size)
    v = V.reshape(V.size)
    step = P.dtype.type(lr)
    mu = P.dtype.type(momentum)
    a = P.dtype.type(l2)
    c = P.dtype.type(l1)
    zero = P.dtype.type(0)
    clip = l1 > 0
    for i in range(p.size):
        old = p[i]
        vel = mu * v[i] - step * (g[i] + a * old + c * np.sign(old))
        new = old + vel
        if clip and new * old < zero:
            new = zero
            vel = zero
        v[i] = vel
        p[i] = new


@njit
def sgd_nesterov_update(P, dP, V, lr, momentum, l2, l1):
    """g = dP + l2 * P + l1 * sign(P);  V = momentum * V - lr * g;  P += momentum * V - lr * g, in place.

    With l1 > 0 a weight crossing zero stops at 0 and its velocity resets to 0.
    """
    p = P.reshape(P.size)
    gr = dP.reshape(dP.size)
    v = V.reshape(V.size)
    step = P.dtype.type(lr)
    mu = P.dtype.type(momentum)
    a = P.dtype.type(l2)
    c = P.dtype.type(l1)
    zero = P.dtype.type(0)
    clip = l1 > 0
    for i in range(p.size):
        old = p[i]
        g = gr[i] + a * old + c * np.sign(old)
        vel = mu * v[i] - step * g
        new = old + (mu * vel - step * g)
        if clip and new * old < zero:
            new = zero
            vel = zero
        v[i] = vel
        p[i] = new


@njit
def adam_update(P, dP, M, V, step_size, beta_1, beta_2, epsilon, l2, l1):
    """Adam, in place, with g = dP + l2 * P + l1 * sign(P):

        M = beta_1 * M + (1 - beta_1) * g;   V = beta_2 * V + (1 - beta_2) * g * g
        P -= step_size * M / (sqrt(V) + epsilon)

    With l1 > 0 a weight crossing zero stops at 0 (the moments keep their values).
    """
    p = P.reshape(P.size)
    gr = dP.reshape(dP.size)
    m = M.reshape(M.size)
    v = V.reshape(V.size)
    step = P.dtype.type(step_size)
    b1 = P.dtype.type(beta_1)
    b2 = P.dtype.type(beta_2)
    c1 = P.dtype.type(1 - beta_1)
    c2 = P.dtype.type(1 - beta_2)
    eps = P.dtype.type(epsilon)
    a = P.dtype.type(l2)
    c = P.dtype.type(l1)
    zero = P.dtype.type(0)
    clip = l1 > 0
    for i in range(p.size):
        old = p[i]
        g = gr[i] + a * old + c * np.sign(old)
        mi = b1 * m[i] + c1 * g
        vi = b2 * v[i] + c2 * (g * g)
        m[i] = mi
        v[i] = vi
        new = old - step * mi / (np.sqrt(vi) + eps)
        p[i] = zero if clip and new * old < zero else new


# ---------------------------------------------------------------- whole layers
# The weights go to the update as flat views, as the biases are: one compiled update per rule, not two.
@njit(inline="always")
def layer_sgd_update(W, dW, b, db, lr, l2, l1):
    """``sgd_update`` of W (with l2, l1) and of b (without)."""
    sgd_update(W.reshape(W.size), dW.reshape(dW.size), lr, l2, l1)
    sgd_update(b, db, lr, 0.0, 0.0)


@njit(inline="always")
def layer_sgd_momentum_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1):
    """``sgd_momentum_update`` of W (with l2, l1) and of b (without)."""
    sgd_momentum_update(W.reshape(W.size), dW.reshape(dW.size), VW.reshape(VW.size), lr, momentum, l2, l1)
    sgd_momentum_update(b, db, Vb, lr, momentum, 0.0, 0.0)


@njit(inline="always")
def layer_sgd_nesterov_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1):
    """``sgd_nesterov_update`` of W (with l2, l1) and of b (without)."""
    sgd_nesterov_update(W.reshape(W.size), dW.reshape(dW.size), VW.reshape(VW.size), lr, momentum, l2, l1)
    sgd_nesterov_update(b, db, Vb, lr, momentum, 0.0, 0.0)


@njit(inline="always")
def layer_adam_update(W, dW, MW, VW, b, db, Mb, Vb, step_size, beta_1, beta_2, epsilon, l2, l1):
    """``adam_update`` of W (with l2, l1) and of b (without)."""
    adam_update(W.reshape(W.size), dW.reshape(dW.size), MW.reshape(MW.size), VW.reshape(VW.size), step_size,
                beta_1, beta_2, epsilon, l2, l1)
    adam_update(b, db, Mb, Vb, step_size, beta_1, beta_2, epsilon, 0.0, 0.0)
