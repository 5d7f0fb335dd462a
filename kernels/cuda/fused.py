"""The fused layer kernels: a matrix product and the elementwise kernel after it, in one launch.

Each is the register-blocked product of ``.matmul`` with its own epilogue, the
device function that writes each finished element of the product; each equals
its chain of standard kernels (``kernels.spec``) bit for bit, since the chain's
product runs the same template with the plain ``matmul_store`` epilogue.
"""
from numba import cuda

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
def linear_relu_forward_epilogue(dtype):
    zero = dtype.type(0)

    @cuda.jit(device=True, **DEVICE_INLINE)
    def linear_relu_forward_epilogue(value, i, j, Z, operands):
        bias, H = operands
        z = value + bias[j]
        Z[i, j] = z
        H[i, j] = z if z > zero else zero

    return linear_relu_forward_epilogue


@per_dtype
def linear_relu_dropout_forward_epilogue(dtype):
    zero = dtype.type(0)

    @cuda.jit(device=True, **DEVICE_INLINE)
    def linear_relu_dropout_forward_epilogue(value, i, j, Z, operands):
        bias, mask, H = operands
        z = value + bias[j]
        Z[i, j] = z
        H[i, j] = (z if z > zero else zero) * mask[i, j]

    return linear_relu_dropout_forward_epilogue


@per_dtype
def linear_relu_backward_epilogue(dtype):
    zero = dtype.type(0)

    @cuda.jit(device=True, **DEVICE_INLINE)
    def linear_relu_backward_epilogue(value, i, j, dZ, operands):
        Z = operands[0]
        dZ[i, j] = value if Z[i, j] > zero else zero

    return linear_relu_backward_epilogue


@per_dtype
def linear_relu_dropout_backward_epilogue(dtype):
    zero = dtype.type(0)

    @cuda.jit(device=True, **DEVICE_INLINE)
    def linear_relu_dropout_backward_epilogue(value, i, j, dZ, operands):
        Z, mask = operands
        g = value if Z[i, j] > zero else zero
        dZ[i, j] = g * mask[i, j]

    return linear_relu_dropout_backward_epilogue


# ---------------------------------------------------------------- the fused kernels
def linear_forward(X, W, b, Z):
    """Z = X W^T + b in one kernel: ``matmul_nt`` then ``bias_add``.  X (n, k), W (m, k), b (m,), Z (n, m)."""
    launch_blocked(X, W, Z, "nt", linear_forward_epilogue, (b,))


def linear_relu_forward(X, W, b, Z, H):
    """Z = X W^T + b, H = relu(Z) in one kernel: ``matmul_nt`` then ``bias_relu_forward``."""
    launch_blocked(X, W, Z, "nt", linear_relu_forward_epilogue, (b, H))


def linear_relu_dropout_forward(X, W, b, mask, Z, H):
    """Z = X W^T + b, H = relu(Z) * mask in one kernel: ``matmul_nt`` then ``bias_relu_dropout_forward``."""
    launch_blocked(X, W, Z, "nt", linear_relu_dropout_forward_epilogue, (b, mask, H))


def linear_relu_backward(dZ_next, W, Z, dZ):
    """dZ = (dZ_next W) * relu'(Z) in one kernel: ``matmul_nn`` then ``relu_backward``.

    dZ_next (n, m) the next layer's delta, W (m, k) its weights, Z, dZ (n, k).
    """
    launch_blocked(dZ_next, W, dZ, "nn", linear_relu_backward_epilogue, (Z,))


def linear_relu_dropout_backward(dZ_next, W, Z, mask, dZ):
    """dZ = (dZ_next W) * relu'(Z) * mask in one kernel: ``matmul_nn`` then ``relu_dropout_backward``."""
    launch_blocked(dZ_next, W, dZ, "nn", linear_relu_dropout_backward_epilogue, (Z, mask))
