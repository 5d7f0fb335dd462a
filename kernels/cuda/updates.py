"""The cuda backend's regularisation gradient and parameter updates.

Parameters are 1-D (biases) or 2-D (weights): each kernel comes in both ranks,
one thread per element, and the public function launches the one matching the
parameter. The step arithmetic is ``device_functions``' ``sgd_step``,
``momentum_step``, ``nesterov_step`` and ``adam_step``, shared with the layer
updates of ``.training``.
"""
from numba import cuda

from .device_functions import device_functions
from .launch import EW_BLOCK_1D, grid_1d, launch_2d, per_dtype


def launch_param(kernel_1d, kernel_2d, P, *args):
    """Launch ``kernel_1d(P.dtype)`` or ``kernel_2d(P.dtype)`` by the rank of ``P``."""
    if P.ndim == 1:
        if P.shape[0]:
            kernel_1d(P.dtype)[grid_1d(P.shape[0]), EW_BLOCK_1D](*args)
    elif P.ndim == 2:
        launch_2d(kernel_2d(P.dtype), P, *args)
    else:
        raise ValueError(f"parameters must be 1-D or 2-D; got shape {tuple(P.shape)}")


# ---------------------------------------------------------------- kernels
@per_dtype
def add_regularization_grad_1d(dtype):
    sign = device_functions(dtype).sign

    @cuda.jit
    def add_regularization_grad_1d(W, dW, l2, l1):
        i = cuda.grid(1)
        if i < W.shape[0]:
            w = W[i]
            dW[i] += l2 * w + l1 * sign(w)

    return add_regularization_grad_1d


@per_dtype
def add_regularization_grad_2d(dtype):
    sign = device_functions(dtype).sign

    @cuda.jit
    def add_regularization_grad_2d(W, dW, l2, l1):
        j, i = cuda.grid(2)
        if i < W.shape[0] and j < W.shape[1]:
            w = W[i, j]
            dW[i, j] += l2 * w + l1 * sign(w)

    return add_regularization_grad_2d


@per_dtype
def sgd_update_1d(dtype):
    sgd_step = device_functions(dtype).sgd_step

    @cuda.jit
    def sgd_update_1d(P, dP, lr, l2, l1, clip):
        i = cuda.grid(1)
        if i < P.shape[0]:
            P[i] = sgd_step(P[i], dP[i], lr, l2, l1, clip)

    return sgd_update_1d


@per_dtype
def sgd_update_2d(dtype):
    sgd_step = device_functions(dtype).sgd_step

    @cuda.jit
    def sgd_update_2d(P, dP, lr, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < P.shape[0] and j < P.shape[1]:
            P[i, j] = sgd_step(P[i, j], dP[i, j], lr, l2, l1, clip)

    return sgd_update_2d


@per_dtype
def sgd_momentum_update_1d(dtype):
    momentum_step = device_functions(dtype).momentum_step

    @cuda.jit
    def sgd_momentum_update_1d(P, dP, V, lr, momentum, l2, l1, clip):
        i = cuda.grid(1)
        if i < P.shape[0]:
            P[i], V[i] = momentum_step(P[i], dP[i], V[i], lr, momentum, l2, l1, clip)

    return sgd_momentum_update_1d


@per_dtype
def sgd_momentum_update_2d(dtype):
    momentum_step = device_functions(dtype).momentum_step

    @cuda.jit
    def sgd_momentum_update_2d(P, dP, V, lr, momentum, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < P.shape[0] and j < P.shape[1]:
            P[i, j], V[i, j] = momentum_step(P[i, j], dP[i, j], V[i, j], lr, momentum, l2, l1, clip)

    return sgd_momentum_update_2d


@per_dtype
def sgd_nesterov_update_1d(dtype):
    nesterov_step = device_functions(dtype).nesterov_step

    @cuda.jit
    def sgd_nesterov_update_1d(P, dP, V, lr, momentum, l2, l1, clip):
        i = cuda.grid(1)
        if i < P.shape[0]:
            P[i], V[i] = nesterov_step(P[i], dP[i], V[i], lr, momentum, l2, l1, clip)

    return sgd_nesterov_update_1d


@per_dtype
def sgd_nesterov_update_2d(dtype):
    nesterov_step = device_functions(dtype).nesterov_step

    @cuda.jit
    def sgd_nesterov_update_2d(P, dP, V, lr, momentum, l2, l1, clip):
        j, i = cuda.grid(2)
        if i < P.shape[0] and j < P.shape[1]:
            P[i, j], V[i, j] = nesterov_step(P[i, j], dP[i, j], V[i, j], lr, momentum, l2, l1, clip)

    return sgd_nesterov_update_2d


@per_dtype
def adam_update_1d(dtype):
    adam_step = device_functions(dtype).adam_step

    @cuda.jit
    def adam_update_1d(P, dP, M, V, step_size, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon,
                       l2, l1, clip):
        i = cuda.grid(1)
        if i < P.shape[0]:
            P[i], M[i], V[i] = adam_step(P[i], dP[i], M[i], V[i], step_size, beta_1, one_minus_beta_1,
                                         beta_2, one_minus_beta_2, epsilon, l2, l1, clip)

    return adam_update_1d


@per_dtype
def adam_update_2d(dtype):
    adam_step = device_functions(dtype).adam_step

    @cuda.jit
    def adam_update_2d(P, dP, M, V, step_size, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon,
                       l2, l1, clip):
        j, i = cuda.grid(2)
        if i < P.shape[0] and j < P.shape[1]:
            P[i, j], M[i, j], V[i, j] = adam_step(P[i, j], dP[i, j], M[i, j], V[i, j], step_size, beta_1,
                                                  one_minus_beta_1, beta_2, one_minus_beta_2, epsilon, l2, l1, clip)

    return adam_update_2d


def adam_scalars(t, step_size, beta_1, beta_2, epsilon):
    """Adam's scalars in the parameters' dtype ``t``: step_size, beta_1, 1 - beta_1, beta_2, 1 - beta_2, epsilon.

    1 - beta is computed in Python floats and rounded once, as the reference's
    ``(1 - beta_1) * g`` rounds it.
    """
    return t(step_size), t(beta_1), t(1 - beta_1), t(beta_2), t(1 - beta_2), t(epsilon)


# ---------------------------------------------------------------- the public kernels
def add_regularization_grad(W, dW, l2, l1):
    """dW += l2 * W + l1 * sign(W): the gradient of (l2/2)||W||_F^2 + l1 |W|.  W, dW (m, k) or (m,)."""
    t = W.dtype.type
    launch_param(add_regularization_grad_1d, add_regularization_grad_2d, W, W, dW, t(l2), t(l1))


def sgd_update(P, dP, lr, l2, l1):
    """P -= lr * (dP + l2 * P + l1 * sign(P)) in place, the L1 step clipped at zero.

    With l1 > 0 a weight that the step would carry across zero stops at exactly 0
    (see the reference). Biases pass l2 = l1 = 0.  P, dP (m, k) or (m,).
    """
    t = P.dtype.type
    launch_param(sgd_update_1d, sgd_update_2d, P, P, dP, t(lr), t(l2), t(l1), bool(l1 > 0))


def sgd_momentum_update(P, dP, V, lr, momentum, l2, l1):
    """V = momentum * V - lr * (dP + l2 * P + l1 * sign(P));  P += V, in place.

    With l1 > 0, a weight the step carries across zero stops at exactly 0 and its
    velocity is reset to 0.  P, dP, V (m, k) or (m,).
    """
    t = P.dtype.type
    launch_param(sgd_momentum_update_1d, sgd_momentum_update_2d, P, P, dP, V, t(lr), t(momentum), t(l2), t(l1),
                 bool(l1 > 0))


def sgd_nesterov_update(P, dP, V, lr, momentum, l2, l1):
    """Nesterov's momentum as scikit-learn writes it, in place, with g = dP + l2 * P + l1 * sign(P):

        V = momentum * V - lr * g;   P += momentum * V - lr * g

    With l1 > 0, a weight the step carries across zero stops at exactly 0 and its
    velocity is reset to 0.  P, dP, V (m, k) or (m,).
    """
    t = P.dtype.type
    launch_param(sgd_nesterov_update_1d, sgd_nesterov_update_2d, P, P, dP, V, t(lr), t(momentum), t(l2), t(l1),
                 bool(l1 > 0))


def adam_update(P, dP, M, V, step_size, beta_1, beta_2, epsilon, l2, l1):
    """Adam as scikit-learn writes it, in place, with g = dP + l2 * P + l1 * sign(P):

        M = beta_1 * M + (1 - beta_1) * g;   V = beta_2 * V + (1 - beta_2) * g * g
        P -= step_size * M / (sqrt(V) + epsilon)

    ``step_size`` is ``adam_step_size(learning_rate, beta_1, beta_2, t)`` (the reference's).
    With l1 > 0, a weight the step carries across zero stops at exactly 0 (the moments
    keep their values).  P, dP, M, V (m, k) or (m,).
    """
    t = P.dtype.type
    launch_param(adam_update_1d, adam_update_2d, P, P, dP, M, V, *adam_scalars(t, step_size, beta_1, beta_2, epsilon),
                 t(l2), t(l1), bool(l1 > 0))
