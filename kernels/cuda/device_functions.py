"""Device functions shared by the cuda backend's kernels, built per dtype.

Their constants (zero, one) are of the array dtype, so a float32 kernel that
calls them stays in float32.
"""
import math
from typing import NamedTuple

import numpy as np
from numba import cuda

from ..codes import LOGISTIC, RELU, TANH
from ..counter_rng import GOLDEN, MIX1, MIX2, SHIFT_TOP24
from .launch import DEVICE_INLINE, per_dtype


class DeviceFunctions(NamedTuple):
    sign: object           # sign(x): -1, 0 or 1
    activate: object       # activate(z, activation) -> f(z) for an activation code of kernels.codes
    derivative: object     # derivative(z, activation) -> f'(z), with relu'(0) = 0
    sigmoid: object        # sigmoid(z) = 1 / (1 + exp(-z)), finite and NaN-free for every z
    keep_value: object     # keep_value(key, index, threshold, kept): the dropout mask's element
    sgd_step: object       # sgd_step(p, g, lr, l2, l1, clip) -> the new parameter
    momentum_step: object  # momentum_step(p, g, v, lr, momentum, l2, l1, clip) -> (parameter, velocity)
    nesterov_step: object  # nesterov_step(p, g, v, lr, momentum, l2, l1, clip) -> (parameter, velocity)
    adam_step: object      # adam_step(p, g, m, v, step_size, beta_1, one_minus_beta_1, beta_2,
    #                                  one_minus_beta_2, epsilon, l2, l1, clip) -> (parameter, m, v)


@per_dtype
def device_functions(dtype):
    """The device functions for arrays of ``dtype``."""
    DT = dtype.type
    zero = DT(0)
    one = DT(1)
    S30, S27, S31 = np.uint64(30), np.uint64(27), np.uint64(31)
    ONE64U = np.uint64(1)

    @cuda.jit(device=True, **DEVICE_INLINE)
    def sign(x):
        if x > zero:
            return one
        if x < zero:
            return -one
        return zero

    @cuda.jit(device=True, **DEVICE_INLINE)
    def sigmoid(z):
        # exp of a non-positive number only: no overflow, so no inf / inf
        if z >= zero:
            return one / (one + math.exp(-z))
        e = math.exp(z)
        return e / (one + e)

    # The activation code is a kernel argument (the same for every thread, so the branch
    # never diverges); the codes are those of kernels.codes.ACTIVATIONS, identity otherwise.
    @cuda.jit(device=True, **DEVICE_INLINE)
    def activate(z, activation):
        if activation == RELU:
            return z if z > zero else zero
        if activation == TANH:
            return math.tanh(z)
        if activation == LOGISTIC:
            return sigmoid(z)
        return z

    @cuda.jit(device=True, **DEVICE_INLINE)
    def derivative(z, activation):
        if activation == RELU:
            return one if z > zero else zero
        if activation == TANH:
            t = math.tanh(z)
            return one - t * t
        if activation == LOGISTIC:
            s = sigmoid(z)
            return s * (one - s)
        return one

    @cuda.jit(device=True, **DEVICE_INLINE)
    def keep_value(key, index, threshold, kept):
        # splitmix64 of the element counter, exactly as kernels.counter_rng.
        z = key + GOLDEN * (np.uint64(index) + ONE64U)
        z = (z ^ (z >> S30)) * MIX1
        z = (z ^ (z >> S27)) * MIX2
        z = z ^ (z >> S31)
        return kept if (z >> SHIFT_TOP24) < threshold else zero

    # With clip (l1 > 0), a weight the step would carry across zero stops at exactly 0
    # (and its velocity resets; Adam's moments keep their values), as in the reference:
    # L1 then yields exact zeros.
    @cuda.jit(device=True, **DEVICE_INLINE)
    def sgd_step(p, g, lr, l2, l1, clip):
        new = p - lr * (g + l2 * p + l1 * sign(p))
        return zero if clip and new * p < zero else new

    @cuda.jit(device=True, **DEVICE_INLINE)
    def momentum_step(p, g, v, lr, momentum, l2, l1, clip):
        v = momentum * v - lr * (g + l2 * p + l1 * sign(p))
        new = p + v
        if clip and new * p < zero:
            return zero, zero
        return new, v

    @cuda.jit(device=True, **DEVICE_INLINE)
    def nesterov_step(p, g, v, lr, momentum, l2, l1, clip):
        # scikit-learn's form: v = momentum v - lr g;  p += momentum v - lr g
        step = lr * (g + l2 * p + l1 * sign(p))
        v = momentum * v - step
        new = p + (momentum * v - step)
        if clip and new * p < zero:
            return zero, zero
        return new, v

    @cuda.jit(device=True, **DEVICE_INLINE)
    def adam_step(p, g, m, v, step_size, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, epsilon,
                  l2, l1, clip):
        # 1 - beta is passed in, rounded once from the Python float as the reference rounds it
        grad = g + l2 * p + l1 * sign(p)
        m = beta_1 * m + one_minus_beta_1 * grad
        v = beta_2 * v + one_minus_beta_2 * (grad * grad)
        new = p - step_size * m / (math.sqrt(v) + epsilon)
        if clip and new * p < zero:
            return zero, m, v
        return new, m, v

    return DeviceFunctions(sign, activate, derivative, sigmoid, keep_value, sgd_step, momentum_step,
                           nesterov_step, adam_step)
