"""BLAS's general product with its accumulation, C <- alpha A^T B + beta C, callable from ``njit`` code.

``np.dot`` inside ``njit`` reaches SciPy's OpenBLAS at full speed but only as
C = A B: BLAS's alpha and beta are not exposed. With them a training step writes
its weight gradient straight into the weights, W <- (1 - lr l2) W - lr delta^T H,
and neither the gradient buffer nor a separate update pass over W is needed.
This module calls SciPy's ``cython_blas`` ``sgemm`` / ``dgemm`` (the OpenBLAS
``np.dot`` uses) through their addresses, as numba's own ``np.dot`` does.

BLAS takes every argument by reference, so each scalar is stored in a slot on the
calling function's stack (``_address_of``): no allocation, the product can run
inside a compiled training loop.
"""
import numpy as np
from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from .jit import njit

_VOID_POINTER = ir.IntType(8).as_pointer()
_NO_TRANSPOSE, _TRANSPOSE = np.int8(ord("N")), np.int8(ord("T"))


def _blas_routine(name):
    """An intrinsic calling ``scipy.linalg.cython_blas.<name>`` with 13 pointer arguments (?gemm's).

    The routine is called by a symbol name registered with LLVM at import, not by an address
    baked into the code (a ctypes function pointer), which numba refuses to cache on disk.
    """
    symbol = f"numba_mlp_cython_blas_{name}"
    binding.add_symbol(symbol, get_cython_function_address("scipy.linalg.cython_blas", name))

    @intrinsic
    def routine(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        def codegen(context, builder, signature, args):
            function_type = ir.FunctionType(ir.VoidType(), [_VOID_POINTER] * 13)
            builder.call(cgutils.get_or_insert_function(builder.module, function_type, symbol), args)
            return context.get_dummy_value()

        return types.void(*([types.voidptr] * 13)), codegen

    return routine


# ?gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): Fortran, every argument a pointer.
_sgemm = _blas_routine("sgemm")
_dgemm = _blas_routine("dgemm")


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


@njit
def _leading_dimension(a):
    """Row stride of a 2-D array in elements; ValueError unless its rows are contiguous."""
    if a.shape[1] > 1 and a.strides[1] != a.itemsize:
        raise ValueError("gemm: every operand's rows must be contiguous")
    return max(a.strides[0] // a.itemsize, a.shape[1], 1)


@njit
def gemm_tn(A, B, alpha, beta, out):
    """out = alpha A^T B + beta out, in place, by one call to BLAS.  A (n, m), B (n, k), out (m, k).

    Row-major arrays read as column-major are their transposes, so this is the column-major
    out^T (k, m) = alpha B^T(k, n) A(n, m) + beta out^T: gemm("N", "T") on the same memory.
    The arrays share one float dtype, rows contiguous; beta = 0 ignores out's old values.
    """
    n, m = A.shape
    k = B.shape[1]
    if B.shape[0] != n or out.shape[0] != m or out.shape[1] != k:
        raise ValueError("gemm_tn: shapes do not agree: A (n, m), B (n, k), out (m, k)")
    if A.itemsize != out.itemsize or B.itemsize != out.itemsize:
        raise TypeError("gemm_tn: A, B and out must share one float dtype")
    if m == 0 or k == 0:
        return
    args = (_address_of(_NO_TRANSPOSE), _address_of(_TRANSPOSE),
            _address_of(np.int32(k)), _address_of(np.int32(m)), _address_of(np.int32(n)))
    ldb = _address_of(np.int32(_leading_dimension(B)))
    lda = _address_of(np.int32(_leading_dimension(A)))
    ldc = _address_of(np.int32(_leading_dimension(out)))
    if out.itemsize == 4:  # float32; else float64
        _sgemm(*args, _address_of(np.float32(alpha)), _data(B), ldb, _data(A), lda,
               _address_of(np.float32(beta)), _data(out), ldc)
    else:
        _dgemm(*args, _address_of(np.float64(alpha)), _data(B), ldb, _data(A), lda,
               _address_of(np.float64(beta)), _data(out), ldc)
