"""``njit`` with an on-disk cache that never makes importing the library fail, and that
knows which other source files a compiled function depends on.

The cache fallback: ``numba.njit(cache=True)`` raises ``RuntimeError: cannot
cache function ...: no locator available`` at decoration time when neither the
package directory, ``$HOME`` nor ``NUMBA_CACHE_DIR`` is writable (read-only
installs, locked-down containers). Compiling without the cache is slower to
start but correct, so we fall back to it and say so once.

The dependencies: numba keys a cached function on its own source file only. A
compiled function that calls njit functions of another file (or reads another
module's constants) has their machine code compiled into its own, and after
they change it keeps loading the stale code from the cache. The rule, for
every cached function that calls into another file: name those modules in
``depends_on``; their sources are hashed into the cache key, so editing any of
them recompiles it::

    from kernels import counter_rng, cpu_backend
    from kernels.jit import njit

    @njit(depends_on=(cpu_backend, counter_rng))
    def train_epoch(...): ...

List the modules whose code ends up in the function, transitively: a
function calling ``cpu_backend`` names ``counter_rng`` too, since
``cpu_backend``'s dropout kernels compile its constants in.

Kernels that only chain other kernels take ``inline="always"``: numba then
inlines them into a compiled caller before typing instead of compiling each
into a library of its own, in which LLVM optimises and emits again the
machine code of everything it calls, once per level of nesting (inlining
them took the cpu epoch's cold compilation from 18 s to 12 s, 2-core Zen 3,
measured 2026-11-30). Called from Python they compile as usual; the kernels
with loops stay functions of their own, compiled once each.
"""
import hashlib
import warnings

import numba
from numba.core.caching import FunctionCache

_warned = False


def sources_digest(modules):
    """SHA-256 of the source files of ``modules`` (module objects), in order, as hex.

    A module's ``CACHE_KEY`` string, where it has one, is hashed with its source: what the
    module decided at import that its compiled code depends on (``kernels.cpu_blas``: which
    BLAS library it bound).
    """
    hasher = hashlib.sha256()
    for module in modules:
        with open(module.__file__, "rb") as source:
            hasher.update(source.read())
        hasher.update(getattr(module, "CACHE_KEY", "").encode())
    return hasher.hexdigest()


class DependentFunctionCache(FunctionCache):
    """numba's per-function cache with a digest of other source files added to every index key."""

    def __init__(self, py_func, digest):
        super().__init__(py_func)
        self.digest = digest

    def _index_key(self, sig, codegen):
        return super()._index_key(sig, codegen) + (self.digest,)


def dependency_digest(dispatcher):
    """The digest of the ``depends_on`` sources in ``dispatcher``'s cache key, or None."""
    return getattr(dispatcher._cache, "digest", None)


def reset_warning():
    """Let the next cache fallback warn again (the warning is given once per process)."""
    global _warned
    _warned = False


def njit(func=None, *, depends_on=(), **options):
    """``numba.njit(cache=True, **options)``, keyed on the sources of ``depends_on`` too.

    ``depends_on``: module objects whose source files' contents are part of the
    cache key (hashed once, here). Without a writable cache location the
    function compiles without a cache, with a RuntimeWarning the first time.
    """
    digest = sources_digest(depends_on) if depends_on else None

    def decorate(f):
        global _warned
        try:
            dispatcher = numba.njit(cache=True, **options)(f)
            if digest is not None:
                # numba has no public hook for the key; its dispatcher holds the cache here.
                dispatcher._cache = DependentFunctionCache(f, digest)
            return dispatcher
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
