"""Kernels for training multilayer perceptrons, one module per backend.

Every backend module offers the same functions with the same signatures (see
``KERNELS`` and the reference, ``kernels.numpy_backend``), so a model or a test
can take any of them from the registry:

>>> import kernels
>>> K = kernels.get_backend("cpu")
>>> K.matmul_nt(X, W, Z)          # Z = X W^T, written in place

Backends: ``"numpy"`` (reference and fallback), ``"cpu"`` (Numba ``@njit``),
``"cuda"`` (Numba CUDA; needs the ``numba-cuda`` package and a GPU, or numba's
simulator), and ``"auto"``: cuda when a real GPU is usable, else cpu.

Kernel groups (``kernels.spec.GROUPS``): the standard set ``KERNELS``, which every
backend has; the fused layer kernels and the training-loop kernels, which each
merge a chain of standard kernels; and the reduced network's kernels (the
lecture's per-minibatch dropout). ``BACKEND_GROUPS`` says which backend offers
which groups, ``kernel_names`` lists a backend's kernels.

Adding a kernel:
1. its reference in ``kernels/numpy_backend.py`` (a fused or training kernel
   written as the chain of standard kernels it merges);
2. one entry in ``kernels/spec.py``: its arguments, what it writes, how it is
   checked, its cost (and, for a standard kernel, where a training step runs it);
3. its implementation in every backend offering its group:
   ``kernels/cpu_backend.py`` and a module of ``kernels/cuda/`` (exported by
   ``kernels/cuda/__init__.py``).
The kernel tests of every backend (tests/test_kernels.py, tests/test_cuda_backend.py)
and the kernel benchmarks (benchmarks/cases.py) pick it up from the spec.
"""
import importlib

from . import spec

BACKENDS = ("numpy", "cpu", "cuda")

# The standard kernel set: every backend module defines each of these.
KERNELS = spec.ARRAY_FUNCTIONS + spec.names("standard")

# The kernel groups each backend implements, every kernel of each.
BACKEND_GROUPS = {
    "numpy": ("standard", "fused", "training", "reduced"),
    "cpu": ("standard", "fused", "training", "reduced"),
    "cuda": ("standard", "fused", "training"),
}

_MODULES = {
    "numpy": "kernels.numpy_backend",
    "cpu": "kernels.cpu_backend",
    "cuda": "kernels.cuda",
}


def kernel_names(backend):
    """Every function the backend called ``backend`` must have: array functions, then its groups' kernels."""
    names = spec.ARRAY_FUNCTIONS
    for group in BACKEND_GROUPS[resolve_backend_name(backend)]:
        names += spec.names(group)
    return names


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run on this machine; the message says what is missing."""


def cuda_unavailable_reason(allow_simulator=True):
    """None when the cuda backend can run here, else a sentence saying why it cannot.

    With ``allow_simulator=False`` numba's CUDA simulator does not count: that is
    what ``"auto"`` uses, since the simulator is for tests, not for speed.
    """
    try:
        from numba import config
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba is a core dependency
        return f"numba.cuda cannot be imported ({exc})"
    if config.ENABLE_CUDASIM:
        return None if allow_simulator else "only numba's CUDA simulator is active (NUMBA_ENABLE_CUDASIM=1)"
    try:
        import numba_cuda  # noqa: F401  (the maintained target; numba's built-in one is deprecated)
    except ImportError:
        return ("the cuda backend needs the numba-cuda package: "
                "pip install 'numba-mlp[cuda]' (or pip install numba-cuda)")
    try:
        if not cuda.is_available():
            return "no usable CUDA GPU was found (numba.cuda.is_available() is False)"
    except Exception as exc:  # driver present but broken
        return f"the CUDA driver could not be initialised ({exc})"
    return None


def resolve_backend_name(name):
    """The concrete backend name for ``name`` (``"auto"`` resolved), or ValueError for an unknown one."""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, one of {BACKENDS + ('auto',)}; got {type(name).__name__}")
    if name == "auto":
        return "cuda" if cuda_unavailable_reason(allow_simulator=False) is None else "cpu"
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS + ('auto',)}")
    return name


def get_backend(name="auto"):
    """The backend module called ``name``: one of "numpy", "cpu", "cuda" or "auto".

    Raises
    ------
    ValueError
        ``name`` is not a known backend.
    BackendUnavailableError
        the backend cannot run here (for cuda: no numba-cuda, or no GPU).
    """
    name = resolve_backend_name(name)
    if name == "cuda":
        reason = cuda_unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(f"backend 'cuda' is unavailable: {reason}")
    return importlib.import_module(_MODULES[name])


def available_backends(include_simulator=True):
    """Names of the backends that can run here, in registry order."""
    names = ["numpy", "cpu"]
    if cuda_unavailable_reason(allow_simulator=include_simulator) is None:
        names.append("cuda")
    return names
