"""Counter-based random bits shared by every backend, so they all draw the same dropout masks.

Element ``i`` of the mask for stream ``s`` under ``seed`` is decided by
``mix64(mix64(seed + GOLDEN*(s+1)) + GOLDEN*(i+1))``: a pure function of
(seed, stream, i). Unlike a sequential generator it gives the same mask
whatever the thread count or launch shape, and it is written the same way in
NumPy, Numba and CUDA (splitmix64's finaliser, Steele et al. 2014).

An element is kept when its top 24 bits are below ``keep_threshold(keep)``:
an integer comparison, so no backend can round differently.
"""
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
SHIFT_TOP24 = np.uint64(40)
MASK64 = (1 << 64) - 1


def keep_threshold(keep):
    """Integer threshold in [0, 2**24]: an element is kept when ``bits >> 40 < threshold``."""
    # floor(x + 0.5) rather than round(): Python rounds halves to even, the kernels cannot.
    return int(np.floor(float(keep) * (1 << 24) + 0.5))


def stream_key(seed, stream):
    """``mix64(seed + GOLDEN*(stream+1))`` as a Python int (host side, exact)."""
    z = (int(seed) + 0x9E3779B97F4A7C15 * (int(stream) + 1)) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)
