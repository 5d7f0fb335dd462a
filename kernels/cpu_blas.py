"""BLAS's general product, C <- alpha op(A) op(B) + beta C, callable from ``njit`` code.

The cpu backend's products (``kernels.cpu_backend``'s ``matmul_*``) call it, for two reasons:

* alpha and beta. ``np.dot`` inside ``njit`` computes only C = A B; with BLAS's own
  accumulation a training step writes its weight gradient straight into the weights,
  W <- (1 - lr l2) W - lr delta^T H, and neither the gradient buffer nor a separate
  update pass over W is needed (``gemm_tn``).
* the faster OpenBLAS. A process that imports NumPy and SciPy holds two OpenBLAS
  builds: NumPy's wheels bundle their own (``numpy.libs/libscipy_openblas64_*``, 64-bit
  integers) and SciPy's ``cython_blas`` (which numba's ``np.dot`` calls) another. On
  2026-11-30 NumPy's 0.3.31 took 166 us for the forward product of 784-256-10 at
  batch 64 where SciPy's 0.3.30 took 201 us (2-core Zen 3). NumPy's is used when it
  is there (Linux wheels); SciPy's otherwise, or when ``NUMBA_MLP_BLAS=scipy``.

The routine is called by a symbol name registered with LLVM at import, not by an address
baked into the code, which numba refuses to cache on disk. Which library was bound is part
of every cache key (``CACHE_KEY``, see ``kernels.jit``): code compiled for one library's
integer width is never loaded against the other. BLAS takes every argument by reference,
so each scalar is stored in a slot on the calling function's stack (``_address_of``): no
allocation, a product can run inside a compiled training loop.
"""
import ctypes
import functools
import os
import sys
from pathlib import Path

import numpy as np
from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from . import jit

_VOID_POINTER = ir.IntType(8).as_pointer()
_NO_TRANSPOSE, _TRANSPOSE = np.int8(ord("N")), np.int8(ord("T"))


def _numpy_openblas():
    """(file name, sgemm address, dgemm address) of NumPy's bundled OpenBLAS (64-bit integers), or None."""
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libs.glob("libscipy_openblas64_*.so*")):
        try:
            library = ctypes.CDLL(str(path))
            return path.name, *(ctypes.cast(getattr(library, f"scipy_{t}gemm_64_"), ctypes.c_void_p).value
                                for t in "sd")
        except (OSError, AttributeError):
            continue
    return None


def _bind_gemm():
    """(cache key, 64-bit integers?) after registering the chosen library's sgemm and dgemm with LLVM.

    ``NUMBA_MLP_BLAS=scipy`` in the environment picks SciPy's even where NumPy's is there.
    """
    found = None if os.environ.get("NUMBA_MLP_BLAS") == "scipy" else _numpy_openblas()
    if found is not None:
        name, sgemm, dgemm = found
        key, ilp64 = f"numpy's OpenBLAS {name}", True
    else:
        sgemm, dgemm = (get_cython_function_address("scipy.linalg.cython_blas", f"{t}gemm") for t in "sd")
        key, ilp64 = "scipy.linalg.cython_blas", False
    binding.add_symbol("numba_mlp_sgemm", sgemm)
    binding.add_symbol("numba_mlp_dgemm", dgemm)
    return key, ilp64


# Hashed into the cache key of every compiled function that calls this module (``kernels.jit``).
CACHE_KEY, _ILP64 = _bind_gemm()
njit = functools.partial(jit.njit, depends_on=(sys.modules[__name__],))


def _blas_routine(symbol):
    """An intrinsic calling ``symbol`` with 13 pointer arguments (?gemm's)."""
    @intrinsic
    def routine(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        def codegen(context, builder, signature, args):
            function_type = ir.FunctionType(ir.VoidType(), [_VOID_POINTER] * 13)
            builder.call(cgutils.get_or_insert_function(builder.module, function_type, symbol), args)
            return context.get_dummy_value()

        return types.void(*([types.voidptr] * 13)), codegen

    return routine


# ?gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): Fortran, every argument a pointer.
_sgemm = _blas_routine("numba_mlp_sgemm")
_dgemm = _blas_routine("numba_mlp_dgemm")


@intrinsic
def _address_of(typingctx, value):
    """A pointer to a copy of ``value`` in a stack slot of the calling function (alive until it returns)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(cgutils.alloca_once_value(builder, args[0]), _VOID_POINTER)

    return types.voidptr(value), codegen


@intrinsic
def _data(typingctx, array):
    """The pointer to an array's first element."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(context.make_array(signature.args[0])(context, builder, args[0]).data, _VOID_POINTER)

    return types.voidptr(array), codegen


@njit(inline="always")  # inlined: the slot must be in the caller's frame
def _integer(value):
    """A pointer to ``value`` as the library's integer (64-bit for NumPy's OpenBLAS, 32-bit for SciPy's)."""
    if _ILP64:
        return _address_of(np.int64(value))
    return _address_of(np.int32(value))


@njit
def _leading_dimension(a):
    """Row stride of a 2-D array in elements; ValueError unless its rows are contiguous."""
    if a.shape[1] > 1 and a.strides[1] != a.itemsize:
        raise ValueError("gemm: every operand's rows must be contiguous")
    return max(a.strides[0] // a.itemsize, a.shape[1], 1)


@njit
def _gemm(trans_left, trans_right, rows, cols, depth, alpha, left, lda, right, ldb, beta, out, ldc, single):
    """Column-major out (rows, cols) = alpha op(left) op(right) + beta out: ?gemm on data pointers.

    ``trans_*``: BLAS's "N" or "T" (``_NO_TRANSPOSE``, ``_TRANSPOSE``); ``single``: float32, else
    float64. A row-major array read as column-major is its transpose; the callers below pass the
    operands in the order and with the flags that make this the row-major product they name.
    Pointers and integers, not arrays, so that one compilation serves every caller (one per
    array type cost half a second each of a first fit's JIT). The wrappers stay functions of their
    own: inlined into the epoch's many call sites they doubled its compile time.
    """
    if rows == 0 or cols == 0:
        return
    args = (_address_of(trans_left), _address_of(trans_right), _integer(rows), _integer(cols), _integer(depth))
    if single:
        _sgemm(*args, _address_of(np.float32(alpha)), left, _integer(lda), right, _integer(ldb),
               _address_of(np.float32(beta)), out, _integer(ldc))
    else:
        _dgemm(*args, _address_of(np.float64(alpha)), left, _integer(lda), right, _integer(ldb),
               _address_of(np.float64(beta)), out, _integer(ldc))


@njit(inline="always")
def _call(trans_left, trans_right, rows, cols, depth, alpha, left, right, beta, out):
    """``_gemm`` on three row-major arrays of one float dtype, rows contiguous."""
    if out.itemsize != left.itemsize or out.itemsize != right.itemsize:
        raise TypeError("gemm: the operands must share one float dtype")
    _gemm(trans_left, trans_right, rows, cols, depth, np.float64(alpha), _data(left), _leading_dimension(left),
          _data(right), _leading_dimension(right), np.float64(beta), _data(out), _leading_dimension(out),
          out.itemsize == 4)


@njit
def gemm_nt(A, B, alpha, beta, out):
    """out = alpha A B^T + beta out, in place.  A (n, k), B (m, k), out (n, m); rows contiguous.

    beta = 0 ignores out's old values (NaN included), as BLAS does.
    """
    n, k = A.shape
    m = B.shape[0]
    if B.shape[1] != k or out.shape[0] != n or out.shape[1] != m:
        raise ValueError("gemm_nt: shapes do not agree: A (n, k), B (m, k), out (n, m)")
    # column-major out^T (m, n) = B (m, k) A^T (k, n)
    _call(_TRANSPOSE, _NO_TRANSPOSE, m, n, k, alpha, B, A, beta, out)


@njit
def gemm_tn(A, B, alpha, beta, out):
    """out = alpha A^T B + beta out, in place.  A (n, m), B (n, k), out (m, k); rows contiguous."""
    n, m = A.shape
    k = B.shape[1]
    if B.shape[0] != n or out.shape[0] != m or out.shape[1] != k:
        raise ValueError("gemm_tn: shapes do not agree: A (n, m), B (n, k), out (m, k)")
    # column-major out^T (k, m) = B^T (k, n) A (n, m)
    _call(_NO_TRANSPOSE, _TRANSPOSE, k, m, n, alpha, B, A, beta, out)


@njit
def gemm_nn(A, B, alpha, beta, out):
    """out = alpha A B + beta out, in place.  A (n, m), B (m, k), out (n, k); rows contiguous."""
    n, m = A.shape
    k = B.shape[1]
    if B.shape[0] != m or out.shape[0] != n or out.shape[1] != k:
        raise ValueError("gemm_nn: shapes do not agree: A (n, m), B (m, k), out (n, k)")
    # column-major out^T (k, n) = B^T (k, m) A^T (m, n)
    _call(_NO_TRANSPOSE, _NO_TRANSPOSE, k, n, m, alpha, B, A, beta, out)
