"""``njit`` with an on-disk cache that never makes importing the library fail.

``numba.njit(cache=True)`` raises ``RuntimeError: cannot cache function ...: no
locator available`` at decoration time when neither the package directory,
``$HOME`` nor ``NUMBA_CACHE_DIR`` is writable (read-only installs, locked-down
containers). Compiling without the cache is slower to start but correct, so we
fall back to it and say so once.
"""
import warnings

import numba

_warned = False


def njit(func=None, **options):
    """``numba.njit(cache=True, **options)``, or without the cache when it cannot be stored."""

    def decorate(f):
        global _warned
        try:
            return numba.njit(cache=True, **options)(f)
        except RuntimeError as exc:
            if "no locator available" not in str(exc):
                raise
            if not _warned:
                _warned = True
                warnings.warn(
                    f"numba-mlp: compiled kernels cannot be cached ({exc}); compiling "
                    "without a cache. Set NUMBA_CACHE_DIR to a writable directory to "
                    "keep compiled kernels between runs.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return numba.njit(cache=False, **options)(f)

    return decorate(func) if func is not None else decorate
