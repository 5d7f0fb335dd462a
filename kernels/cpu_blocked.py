"""The cpu backend's hand-written matrix products: its ``ALTERNATIVES`` to the BLAS ones.

The one parallel (``prange``) code path of the cpu backend, kept beside BLAS to
be benchmarked, not used by default (see ``kernels.cpu_backend`` on threads).
Row blocks of the output are spread over the threads; the innermost loop runs
along contiguous memory so LLVM vectorises it.
"""
from numba import prange

from .jit import njit

_ROW_BLOCK = 16


@njit(parallel=True, fastmath=True)
def matmul_nt_blocked(A, B, out):
    """out = A B^T by blocked dot products along the contiguous k axis.  A (n, k), B (m, k)."""
    n, k = A.shape
    m = B.shape[0]
    for ib in prange((n + _ROW_BLOCK - 1) // _ROW_BLOCK):
        for j in range(m):
            for i in range(ib * _ROW_BLOCK, min(n, (ib + 1) * _ROW_BLOCK)):
                acc = A.dtype.type(0)
                for p in range(k):
                    acc += A[i, p] * B[j, p]
                out[i, j] = acc


@njit(parallel=True, fastmath=True)
def matmul_nn_blocked(A, B, out):
    """out = A B as rank-1 row updates (i, p, j order).  A (n, m), B (m, k)."""
    n, m = A.shape
    k = B.shape[1]
    for ib in prange((n + _ROW_BLOCK - 1) // _ROW_BLOCK):
        for i in range(ib * _ROW_BLOCK, min(n, (ib + 1) * _ROW_BLOCK)):
            for j in range(k):
                out[i, j] = 0
            for p in range(m):
                a = A[i, p]
                for j in range(k):
                    out[i, j] += a * B[p, j]


@njit(parallel=True, fastmath=True)
def matmul_tn_blocked(A, B, out):
    """out = A^T B as rank-1 updates over the batch (p, i, j order).  A (n, m), B (n, k)."""
    n, m = A.shape
    k = B.shape[1]
    for ib in prange((m + _ROW_BLOCK - 1) // _ROW_BLOCK):
        i0 = ib * _ROW_BLOCK
        i1 = min(m, i0 + _ROW_BLOCK)
        for i in range(i0, i1):
            for j in range(k):
                out[i, j] = 0
        for p in range(n):
            for i in range(i0, i1):
                a = A[p, i]
                for j in range(k):
                    out[i, j] += a * B[p, j]
