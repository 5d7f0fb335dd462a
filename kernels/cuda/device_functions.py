"""Device functions shared by the cuda backend's kernels, built per dtype.

Their constants (zero, one) are of the array dtype, so a float32 kernel that
calls them stays in float32.
"""
from typing import NamedTuple

import numpy as np
from numba import cuda

from ..counter_rng import GOLDEN, MIX1, MIX2, SHIFT_TOP24
from .launch import DEVICE_INLINE, per_dtype


class DeviceFunctions(NamedTuple):
    sign: object           # sign(x): -1, 0 or 1
    relu: object           # relu(x), with relu(0) = 0
    keep_value: object     # keep_value(key, index, threshold, kept): the dropout mask's element
    sgd_step: object       # sgd_step(p, g, lr, l2, l1, clip) -> the new parameter
    momentum_step: object  # momentum_step(p, g, v, lr, momentum, l2, l1, clip) -> (parameter, velocity)


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
    def relu(x):
        return x if x > zero else zero

    @cuda.jit(device=True, **DEVICE_INLINE)
    def keep_value(key, index, threshold, kept):
        # splitmix64 of the element counter, exactly as kernels.counter_rng.
        z = key + GOLDEN * (np.uint64(index) + ONE64U)
        z = (z ^ (z >> S30)) * MIX1
        z = (z ^ (z >> S27)) * MIX2
        z = z ^ (z >> S31)
        return kept if (z >> SHIFT_TOP24) < threshold else zero

    # With clip (l1 > 0), a weight the step would carry across zero stops at exactly 0
    # (and its velocity resets), as in the reference: L1 then yields exact zeros.
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

    return DeviceFunctions(sign, relu, keep_value, sgd_step, momentum_step)
