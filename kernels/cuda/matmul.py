"""The cuda backend's matrix products and the fused layer kernels built on them.

The products are shared-memory tiled and register blocked: a block of 16x16
threads computes a BM x BN tile of ``out`` with each thread holding TM x TN
accumulators in registers (4x4 for large outputs, 2x2 otherwise, so that the
small products of an MLP still spread over every SM). One kernel template,
``matmul_blocked_kernel``, serves the plain products and the fused layer
kernels alike: only its epilogue, a device function writing each finished
output element, differs (``matmul_store`` here for ``matmul_*``,
``matmul_update_epilogue`` for ``matmul_tn_update``, and ``<fused kernel>_epilogue``
in ``.fused`` for each fused one). A naive one-thread-per-output kernel and a
plain 16x16 shared-memory tiled kernel are kept as ``ALTERNATIVES`` for tests and
benchmarks.

Orientation: out (M, N) = L R, where L (M, K) is A or A^T and R (K, N) is B^T or B.
"""
import functools

import numpy as np
from numba import cuda

from .launch import DEVICE_INLINE, cdiv, grid_2d, per_dtype

ORIENTATIONS = {"nt": (False, True), "tn": (True, False), "nn": (False, False)}
NAIVE_BLOCK = (16, 16)
TILE = 16               # the plain tiled alternative


class MatmulConfig(tuple):
    """Register-blocking shape: (TY, TX) threads, each computing TM x TN outputs, K slices of BK.

    A block computes a (TY*TM) x (TX*TN) tile of ``out``; thread (ty, tx) owns rows
    ``ty + TY*a`` and columns ``tx + TX*b`` (strided, so a warp's shared-memory reads
    are conflict free and its stores to ``out`` coalesce).
    """

    __slots__ = ()

    def __new__(cls, ty, tx, tm, tn, bk):
        return super().__new__(cls, (ty, tx, tm, tn, bk))

    ty = property(lambda self: self[0])
    tx = property(lambda self: self[1])
    tm = property(lambda self: self[2])
    tn = property(lambda self: self[3])
    bk = property(lambda self: self[4])
    bm = property(lambda self: self[0] * self[2])
    bn = property(lambda self: self[1] * self[3])


MATMUL_LARGE = MatmulConfig(16, 16, 4, 4, 16)   # 64x64 tiles, 16 outputs per thread
MATMUL_SMALL = MatmulConfig(16, 16, 2, 2, 16)   # 32x32 tiles, 4 outputs per thread


@functools.lru_cache(maxsize=None)
def sm_count():
    # The simulator's fake device has no SM count; 128 is numba-cuda's own rule of thumb.
    return int(getattr(cuda.get_current_device(), "MULTIPROCESSOR_COUNT", 128))


def matmul_config(m, n):
    """64x64 tiles once they alone fill every SM, else 32x32 tiles for more blocks."""
    if cdiv(m, MATMUL_LARGE.bm) * cdiv(n, MATMUL_LARGE.bn) >= sm_count():
        return MATMUL_LARGE
    return MATMUL_SMALL


# ---------------------------------------------------------------- the alternatives' kernels
@functools.lru_cache(maxsize=None)
def matmul_naive_kernel(dtype, trans_a, trans_b):
    zero = np.dtype(dtype).type(0)

    @cuda.jit
    def matmul_naive(A, B, out):
        j, i = cuda.grid(2)
        if i < out.shape[0] and j < out.shape[1]:
            K = A.shape[0] if trans_a else A.shape[1]
            acc = zero
            for p in range(K):
                a = A[p, i] if trans_a else A[i, p]
                b = B[j, p] if trans_b else B[p, j]
                acc += a * b
            out[i, j] = acc

    return matmul_naive


@functools.lru_cache(maxsize=None)
def matmul_tiled_kernel(dtype, trans_a, trans_b):
    DT = np.dtype(dtype).type
    zero = DT(0)
    TILE_PAD = TILE + 1  # shared-array shapes must be compile-time constants, not expressions

    @cuda.jit
    def matmul_tiled(A, B, out):
        # Ls[i, p] = L[row0 + i, k0 + p], Rs[p, j] = R[k0 + p, col0 + j]. Each operand is
        # read along its contiguous axis by consecutive tx; the +1 column of padding
        # keeps the transposed shared-memory writes free of bank conflicts.
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row0 = cuda.blockIdx.y * TILE
        col0 = cuda.blockIdx.x * TILE
        M = out.shape[0]
        N = out.shape[1]
        K = A.shape[0] if trans_a else A.shape[1]
        Ls = cuda.shared.array((TILE, TILE_PAD), DT)
        Rs = cuda.shared.array((TILE, TILE_PAD), DT)
        acc = zero
        for k0 in range(0, K, TILE):
            if trans_a:   # A (K, M)
                r = k0 + ty
                c = row0 + tx
                Ls[tx, ty] = A[r, c] if r < K and c < M else zero
            else:         # A (M, K)
                r = row0 + ty
                c = k0 + tx
                Ls[ty, tx] = A[r, c] if r < M and c < K else zero
            if trans_b:   # B (N, K)
                r = col0 + ty
                c = k0 + tx
                Rs[tx, ty] = B[r, c] if r < N and c < K else zero
            else:         # B (K, N)
                r = k0 + ty
                c = col0 + tx
                Rs[ty, tx] = B[r, c] if r < K and c < N else zero
            cuda.syncthreads()
            for p in range(TILE):
                acc += Ls[ty, p] * Rs[p, tx]
            cuda.syncthreads()
        i = row0 + ty
        j = col0 + tx
        if i < M and j < N:
            out[i, j] = acc

    return matmul_tiled


# ---------------------------------------------------------------- the register-blocked template
@functools.lru_cache(maxsize=None)
def matmul_mainloop(dtype, trans_a, trans_b, cfg):
    """The device function accumulating a thread's TM x TN outputs of L R (see the module docstring)."""
    DT = np.dtype(dtype).type
    zero = DT(0)
    TY, TX, TM, TN, BK = cfg
    BM, BN = cfg.bm, cfg.bn
    BM_PAD, BN_PAD = BM + 1, BN + 1  # shared-array shapes must be constants, not expressions
    NT = TY * TX
    A_TILE = BM * BK
    B_TILE = BN * BK
    LOADS_A = cdiv(A_TILE, NT)
    LOADS_B = cdiv(B_TILE, NT)

    @cuda.jit(device=True, **DEVICE_INLINE)
    def mainloop(A, B, acc, M, N):
        """acc[a, b] = sum_p L[row0 + ty + TY*a, p] R[p, col0 + tx + TX*b]."""
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TX + tx
        row0 = cuda.blockIdx.y * BM
        col0 = cuda.blockIdx.x * BN
        K = A.shape[0] if trans_a else A.shape[1]
        # Stored k-major (Ls[p, i]) so the inner product reads rows of both tiles;
        # +1 padding avoids bank conflicts when a load writes along p.
        Ls = cuda.shared.array((BK, BM_PAD), DT)
        Rs = cuda.shared.array((BK, BN_PAD), DT)
        ra = cuda.local.array(TM, DT)
        rb = cuda.local.array(TN, DT)
        for a in range(TM):
            for b in range(TN):
                acc[a, b] = zero
        for k0 in range(0, K, BK):
            for e in range(LOADS_A):
                idx = tid + e * NT
                if idx < A_TILE:
                    if trans_a:   # A (K, M): consecutive threads walk i, A's contiguous axis
                        i = idx % BM
                        p = idx // BM
                        gi = row0 + i
                        gp = k0 + p
                        Ls[p, i] = A[gp, gi] if gi < M and gp < K else zero
                    else:         # A (M, K): consecutive threads walk p
                        p = idx % BK
                        i = idx // BK
                        gi = row0 + i
                        gp = k0 + p
                        Ls[p, i] = A[gi, gp] if gi < M and gp < K else zero
            for e in range(LOADS_B):
                idx = tid + e * NT
                if idx < B_TILE:
                    if trans_b:   # B (N, K): consecutive threads walk p
                        p = idx % BK
                        j = idx // BK
                        gj = col0 + j
                        gp = k0 + p
                        Rs[p, j] = B[gj, gp] if gj < N and gp < K else zero
                    else:         # B (K, N): consecutive threads walk j
                        j = idx % BN
                        p = idx // BN
                        gj = col0 + j
                        gp = k0 + p
                        Rs[p, j] = B[gp, gj] if gj < N and gp < K else zero
            cuda.syncthreads()
            for p in range(BK):
                for a in range(TM):
                    ra[a] = Ls[p, ty + TY * a]
                for b in range(TN):
                    rb[b] = Rs[p, tx + TX * b]
                for a in range(TM):
                    for b in range(TN):
                        acc[a, b] += ra[a] * rb[b]
            cuda.syncthreads()

    return mainloop


@functools.lru_cache(maxsize=None)
def matmul_blocked_kernel(dtype, trans_a, trans_b, cfg, epilogue):
    """The register-blocked product L R whose elements ``epilogue(dtype)`` writes.

    The kernel is ``matmul_blocked(A, B, out, operands)``: ``out`` sets the shape,
    ``operands`` is the tuple of the epilogue's other arrays.
    """
    DT = np.dtype(dtype).type
    TY, TX, TM, TN, _ = cfg
    BM, BN = cfg.bm, cfg.bn
    mainloop = matmul_mainloop(dtype, trans_a, trans_b, cfg)
    finish = epilogue(dtype)

    @cuda.jit
    def matmul_blocked(A, B, out, operands):
        M = out.shape[0]
        N = out.shape[1]
        acc = cuda.local.array((TM, TN), DT)
        mainloop(A, B, acc, M, N)
        for a in range(TM):
            i = cuda.blockIdx.y * BM + cuda.threadIdx.y + TY * a
            for b in range(TN):
                j = cuda.blockIdx.x * BN + cuda.threadIdx.x + TX * b
                if i < M and j < N:
                    finish(acc[a, b], i, j, out, operands)

    return matmul_blocked


# ---------------------------------------------------------------- the plain epilogue
# An epilogue writes element (i, j) of L R, ``value``; the fused ones are in .fused.
@per_dtype
def matmul_store(dtype):
    @cuda.jit(device=True, **DEVICE_INLINE)
    def matmul_store(value, i, j, out, operands):
        out[i, j] = value

    return matmul_store


@per_dtype
def matmul_update_epilogue(dtype):
    @cuda.jit(device=True, **DEVICE_INLINE)
    def matmul_update_epilogue(value, i, j, out, operands):
        alpha, beta = operands
        if beta == 0:  # BLAS's convention: out's old values are not read
            out[i, j] = alpha * value
        else:
            out[i, j] = alpha * value + beta * out[i, j]

    return matmul_update_epilogue


# ---------------------------------------------------------------- launching
def check_matmul(A, B, out, orient):
    """(M, N) of ``out`` after checking the shapes and dtypes of a product on the host."""
    trans_a, trans_b = ORIENTATIONS[orient]
    m, k = (A.shape[1], A.shape[0]) if trans_a else (A.shape[0], A.shape[1])
    kb, n = (B.shape[1], B.shape[0]) if trans_b else (B.shape[0], B.shape[1])
    # Out-of-range reads on a GPU are silent, so shapes are checked on the host.
    if k != kb or tuple(out.shape) != (m, n):
        raise ValueError(f"matmul_{orient}: shapes A {tuple(A.shape)}, B {tuple(B.shape)}, "
                         f"out {tuple(out.shape)} do not agree")
    if A.dtype != out.dtype or B.dtype != out.dtype:
        raise TypeError(f"matmul_{orient}: dtypes differ ({A.dtype}, {B.dtype}, out {out.dtype})")
    return m, n


def launch_blocked(A, B, out, orient, epilogue, operands, cfg=None):
    """The register-blocked product with ``epilogue``; ``cfg`` defaults to ``matmul_config``."""
    m, n = check_matmul(A, B, out, orient)
    if m == 0 or n == 0:
        return
    cfg = cfg or matmul_config(m, n)
    kernel = matmul_blocked_kernel(out.dtype, *ORIENTATIONS[orient], cfg, epilogue)
    kernel[(cdiv(n, cfg.bn), cdiv(m, cfg.bm)), (cfg.tx, cfg.ty)](A, B, out, operands)


def matmul_blocked(A, B, out, orient, cfg=None):
    """``matmul_<orient>`` (orient "nt", "tn" or "nn") with the register blocking ``cfg``."""
    launch_blocked(A, B, out, orient, matmul_store, (), cfg)


def matmul_tiled(A, B, out, orient):
    """``matmul_<orient>`` with the plain 16x16 tiled kernel."""
    m, n = check_matmul(A, B, out, orient)
    if m and n:
        matmul_tiled_kernel(out.dtype, *ORIENTATIONS[orient])[grid_2d(m, n, (TILE, TILE)), (TILE, TILE)](A, B, out)


def matmul_naive(A, B, out, orient):
    """``matmul_<orient>`` with one thread per output element."""
    m, n = check_matmul(A, B, out, orient)
    if m and n:
        matmul_naive_kernel(out.dtype, *ORIENTATIONS[orient])[grid_2d(m, n, NAIVE_BLOCK), NAIVE_BLOCK](A, B, out)


# ---------------------------------------------------------------- the standard products
def matmul_nt(A, B, out):
    """out = A B^T.  A (n, k), B (m, k), out (n, m): the forward product X W^T."""
    matmul_blocked(A, B, out, "nt")


def matmul_tn(A, B, out):
    """out = A^T B.  A (n, m), B (n, k), out (m, k): the weight gradient delta^T H."""
    matmul_blocked(A, B, out, "tn")


def matmul_nn(A, B, out):
    """out = A B.  A (n, m), B (m, k), out (n, k): back-propagating delta W."""
    matmul_blocked(A, B, out, "nn")


def matmul_tn_update(A, B, alpha, beta, out):
    """out = alpha A^T B + beta out, in place (BLAS's gemm): the epilogue reads and writes each element once."""
    scalar = np.dtype(out.dtype).type
    launch_blocked(A, B, out, "tn", matmul_update_epilogue, (scalar(alpha), scalar(beta)))


def matmul_nt_naive(A, B, out):
    """``matmul_nt`` with one thread per output element and no shared memory."""
    matmul_naive(A, B, out, "nt")


def matmul_tn_naive(A, B, out):
    """``matmul_tn`` with one thread per output element and no shared memory."""
    matmul_naive(A, B, out, "tn")


def matmul_nn_naive(A, B, out):
    """``matmul_nn`` with one thread per output element and no shared memory."""
    matmul_naive(A, B, out, "nn")


def matmul_nt_tiled(A, B, out):
    """``matmul_nt`` with 16x16 shared-memory tiles, one output element per thread."""
    matmul_tiled(A, B, out, "nt")


def matmul_tn_tiled(A, B, out):
    """``matmul_tn`` with 16x16 shared-memory tiles, one output element per thread."""
    matmul_tiled(A, B, out, "tn")


def matmul_nn_tiled(A, B, out):
    """``matmul_nn`` with 16x16 shared-memory tiles, one output element per thread."""
    matmul_tiled(A, B, out, "nn")


# Alternative implementations beside the standard set, each mapped to the standard
# kernel it must agree with. Tests and benchmarks walk it.
ALTERNATIVES = {
    "matmul_nt_naive": "matmul_nt",
    "matmul_tn_naive": "matmul_tn",
    "matmul_nn_naive": "matmul_nn",
    "matmul_nt_tiled": "matmul_nt",
    "matmul_tn_tiled": "matmul_tn",
    "matmul_nn_tiled": "matmul_nn",
}
