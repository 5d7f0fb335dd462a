"""The fused layer kernels: a matrix product and the elementwise kernel after it, in one launch.

Each is the register-blocked product of ``.matmul`` with its own epilogue, the
device function that writes each finished element of the product; each equals
its chain of standard kernels (``kernels.spec``) bit for bit, since the chain's
product runs the same template with the plain ``matmul_store`` epilogue, and
the activation and its derivative are ``device_functions``' ``activate`` /
``derivative``, as in the elementwise kernels. The activation's code travels in
the epilogue's operands.
"""
from numba import cuda

from .device_functions import device_functions
from .launch import DEVICE_INLINE, per_dtype
from .matmul import launch_blocked


# ---------------------------------------------------------------- epilogues: element (i, j) of the product is ``value``
@per_dtype
def linear_forward_epilogue(dtype):
    @cuda.jit(device=True, **DEVICE_INLINE)
    def linear_forward_epilogue(value, i, j, Z, operands):
        bias = operands[0]
        Z[i, j] = value + bias[j]

    return linear_forward_epilogue


@per_dtype
def linear_activation_forward_epilogue(dtype):
    activate = device_functions(dtype).activate

    @cuda.jit(device=True, **DEVICE_INLINE)
    def linear_activation_forward_epilogue(value, i, j, Z, operands):
        bias, activation, H = operands
        z = value + bias[j]
        Z[i, j] = z
        H[i, j] = activate(z, activation)

    return linear_activation_forward_epilogue


@per_dtype
def linear_activation_dropout_forward_epilogue(dtype):
    activate = device_functions(dtype).activate

    @cuda.jit(device=True, **DEVICE_INLINE)
    def linear_activation_dropout_forward_epilogue(value, i, j, Z, operands):
        bias, activation, mask, H = operands
        z = value + bias[j]
        Z[i, j] = z
        H[i, j] = activate(z, activation) * mask[i, j]

    return linear_activation_dropout_forward_epilogue


@per_dtype
def linear_activation_backward_epilogue(dtype):
    derivative = device_functions(dtype).derivative

    @cuda.jit(device=True, **DEVICE_INLINE)
    def linear_activation_backward_epilogue(value, i, j, dZ, operands):
        Z, activation = operands
        dZ[i, j] = value * derivative(Z[i, j], activation)

    return linear_activation_backward_epilogue


@per_dtype
def linear_activation_dropout_backward_epilogue(dtype):
    derivative = device_functions(dtype).derivative

    @cuda.jit(device=True, **DEVICE_INLINE)
    def linear_activation_dropout_backward_epilogue(value, i, j, dZ, operands):
        Z, activation, mask = operands
        g = value * derivative(Z[i, j], activation)
        dZ[i, j] = g * mask[i, j]

    return linear_activation_dropout_backward_epilogue


# ---------------------------------------------------------------- the fused kernels
def linear_forward(X, W, b, Z):
    """Z = X W^T + b in one kernel: ``matmul_nt`` then ``bias_add``.  X (n, k), W (m, k), b (m,), Z (n, m)."""
    launch_blocked(X, W, Z, "nt", linear_forward_epilogue, (b,))


def linear_activation_forward(X, W, b, activation, Z, H):
    """Z = X W^T + b, H = f(Z) in one kernel: ``matmul_nt`` then ``bias_activation_forward``."""
    launch_blocked(X, W, Z, "nt", linear_activation_forward_epilogue, (b, int(activation), H))


def linear_activation_dropout_forward(X, W, b, activation, mask, Z, H):
    """Z = X W^T + b, H = f(Z) * mask in one kernel: ``matmul_nt`` then ``bias_activation_dropout_forward``."""
    launch_blocked(X, W, Z, "nt", linear_activation_dropout_forward_epilogue, (b, int(activation), mask, H))


def linear_activation_backward(dZ_next, W, Z, activation, dZ):
    """dZ = (dZ_next W) * f'(Z) in one kernel: ``matmul_nn`` then ``activation_backward``.

    dZ_next (n, m) the next layer's delta, W (m, k) its weights, Z, dZ (n, k).
    """
    launch_blocked(dZ_next, W, dZ, "nn", linear_activation_backward_epilogue, (Z, int(activation)))


def linear_activation_dropout_backward(dZ_next, W, Z, activation, mask, dZ):
    """dZ = (dZ_next W) * f'(Z) * mask in one kernel: ``matmul_nn`` then ``activation_dropout_backward``."""
    launch_blocked(dZ_next, W, dZ, "nn", linear_activation_dropout_backward_epilogue, (Z, int(activation), mask))
