"""Launch configuration, device arrays and scratch buffers of the cuda backend.

Every function here only queues work on the default stream or allocates, except
``to_host``, ``synchronize`` and ``free_memory``.
"""
import functools

import numpy as np
from numba import cuda

try:  # the maintained target keeps its own config module
    from numba.cuda.core import config as cuda_config
except ImportError:  # pragma: no cover - older numba-cuda / numba's built-in target
    from numba.core import config as cuda_config

# True under numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), where kernels run as Python.
SIMULATOR = bool(getattr(cuda_config, "ENABLE_CUDASIM", False))
if not SIMULATOR:
    # Grids are sized to the problem, and an MLP's kernels are often smaller than the
    # 128 blocks below which numba-cuda warns about low occupancy: the warning would
    # fire on most launches, so it is switched off for this process.
    cuda_config.CUDA_LOW_OCCUPANCY_WARNINGS = 0

# Device functions are inlined at the NVVM level so that the local accumulator
# arrays they fill can live in registers; the simulator's jit takes no such option.
DEVICE_INLINE = {} if SIMULATOR else {"forceinline": True}

EW_BX, EW_BY = 32, 8    # (columns, rows) of a 2-D block: a warp reads 32 consecutive elements of a row
EW_BLOCK_2D = (EW_BX, EW_BY)
EW_BLOCK_1D = 256
REDUCE_BLOCK = 256      # threads of every block-level reduction; a power of two
ROWS_BLOCK = 128        # softmax: one thread per row


def cdiv(a, b):
    return (a + b - 1) // b


def grid_2d(rows, cols, block=EW_BLOCK_2D):
    """Blocks covering a (rows, cols) array with threads (x: columns, y: rows)."""
    return (cdiv(cols, block[0]), cdiv(rows, block[1]))


def grid_1d(size, block=EW_BLOCK_1D):
    return cdiv(size, block)


def launch_2d(kernel, out, *args):
    """Launch ``kernel`` with one thread per element of the 2-D ``out`` (nothing when it is empty)."""
    rows, cols = out.shape
    if rows and cols:
        kernel[grid_2d(rows, cols), EW_BLOCK_2D](*args)


def per_dtype(factory):
    """``factory(dtype)`` built once per dtype: its kernels' constants are of that dtype."""
    cached = functools.lru_cache(maxsize=None)(factory)

    @functools.wraps(factory)
    def build(dtype):
        return cached(np.dtype(dtype))

    return build


# ---------------------------------------------------------------- arrays
def is_device_array(a):
    return bool(getattr(a, "__cuda_ndarray__", False))


def to_device(a, dtype=None):
    """A C-contiguous device array with the contents of ``a`` (host or device array).

    A device array that is already C-contiguous and of the requested dtype is
    returned as is (no copy), as the reference does for host arrays.
    """
    if not is_device_array(a) and hasattr(a, "__cuda_array_interface__") and not SIMULATOR:
        a = cuda.as_cuda_array(a)  # a foreign GPU array (CuPy, PyTorch...): wrap, don't copy
    if is_device_array(a):
        if (dtype is None or np.dtype(dtype) == a.dtype) and a.is_c_contiguous():
            return a
        a = a.copy_to_host()  # a dtype change or a gather: rare, so done on the host
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


def to_host(a):
    """A NumPy array with the contents of ``a`` (waits for the work that writes it)."""
    if is_device_array(a):
        return a.copy_to_host()
    return np.asarray(a)


def empty(shape, dtype):
    """An uninitialised device array."""
    return cuda.device_array(shape, dtype=np.dtype(dtype))


def zeros(shape, dtype):
    """A device array of zeros (allocation is not in the hot loop, so a host copy is fine)."""
    return cuda.to_device(np.zeros(shape, dtype=dtype))


def synchronize():
    """Wait until all queued GPU work has finished."""
    cuda.synchronize()


def free_memory():
    """Free bytes on the current device, or None where it cannot tell (numba's simulator says inf)."""
    free, _ = cuda.current_context().get_memory_info()
    return int(free) if np.isfinite(free) else None


# ---------------------------------------------------------------- scratch buffers
# Per-block loss partials, the (1,) result of regularization_loss, and a stand-in for
# absent labels. Kernels on the default stream run in order, so one buffer of each
# serves every call.
scratch = {}


def partials_buffer(count):
    """A float64 device buffer of at least ``count`` slots, grown when a call needs more."""
    buf = scratch.get("partials")
    if buf is None or buf.shape[0] < count:
        buf = cuda.device_array(max(count, 1024), dtype=np.float64)
        scratch["partials"] = buf
    return buf


def scalar_buffer():
    """A (1,) float64 device buffer."""
    buf = scratch.get("scalar")
    if buf is None:
        buf = scratch["scalar"] = cuda.device_array(1, dtype=np.float64)
    return buf


def no_labels():
    """A (1,) int64 device array passed where a kernel's labels are absent (never read)."""
    buf = scratch.get("no_labels")
    if buf is None:
        buf = scratch["no_labels"] = cuda.device_array(1, dtype=np.int64)
    return buf
