"""The cpu backend's engine: one compiled call runs every minibatch of an epoch.

``train_epoch`` (the full network, with per-example dropout masks) and
``train_epoch_reduced`` (the lecture's literal dropout: one mask per minibatch,
the reduced network gathered into compact matrices) are ``njit`` functions
that call the cpu backend's kernels (``kernels.cpu_backend``) step for step as
the numpy engine calls the reference ones, so the two agree to rounding.
``CpuEngine`` allocates every buffer once per fit and passes it in, so the
minibatch loop neither allocates nor returns to Python.

Any number of layers: the per-layer arrays travel as homogeneous tuples, which
numba indexes with a run-time layer number (one compilation per depth and
dtype, cached on disk).

Large products go to BLAS through the cpu matmuls; the elementwise work is
serial (BLAS owns the two cores, see ``kernels.cpu_backend``).

Compiled code is cached on disk. numba invalidates a cached function only when
its own source file changes, so the epoch functions declare the kernel modules
they compile in (``depends_on``, ``kernels.jit``): editing a kernel recompiles
them too.
"""
import numpy as np

from kernels import counter_rng
from kernels import cpu_backend as C
from kernels.jit import njit

from ..propagation import Workspace
from .base import Engine, EpochResult

# What the compiled epochs compile in: an edit to either must invalidate their cache.
KERNEL_MODULES = (C, counter_rng)


# ---------------------------------------------------------------- full network
@njit(depends_on=KERNEL_MODULES)
def train_epoch(X, labels, targets, is_softmax, perm, batch_size,
                weights, biases, vel_w, vel_b,
                A, Z, delta, dW, db, masks, yb, Tb, probs, loss, epoch_stats,
                lr, momentum, l2, l1, keep, seed, step0):
    """Run one epoch of minibatch SGD on the full network, in place.

    Parameters
    ----------
    X : (n, d_in) training inputs; ``labels`` (n,) int64 for softmax or
        ``targets`` (n, k) for identity output (the other one is a dummy).
    perm : (n,) int64, this epoch's order of the examples.
    weights, biases, vel_w, vel_b : tuples of L arrays, updated in place
        (the velocities only when ``momentum > 0``).
    A : tuple of L buffers (batch_size, layer_sizes[l]): the layer inputs;
        A[0] receives the gathered (and masked) minibatch.
    Z, delta : tuples of L buffers (batch_size, layer_sizes[l+1]).
    dW, db : tuples of L gradient buffers with the parameters' shapes.
    masks : tuple of L buffers (batch_size, layer_sizes[l]); only those of
        hidden layers with keep < 1 are written (the input mask is applied by
        the gather and never stored).
    yb (batch_size,) int64, Tb (batch_size, k), probs (batch_size, k), loss (1,) float64.
    epoch_stats : (2,) float64, the epoch's loss sum and first diverging step
        (see ``kernels.numpy_backend.softmax_cross_entropy_accumulate``).
    l2, l1, keep : float64 arrays, one per weight matrix / masked layer.
    seed, step0 : dropout generator seed and the global index of this epoch's first step.

    Returns
    -------
    (sum over steps of the minibatch data loss times its size, steps done, diverged)
    A non-finite minibatch loss stops the epoch at once with ``diverged`` True.
    """
    n = X.shape[0]
    L = len(weights)
    n_steps = (n + batch_size - 1) // batch_size
    epoch_stats[0] = 0.0
    epoch_stats[1] = -1.0
    for s in range(n_steps):
        start = s * batch_size
        nb = min(batch_size, n - start)
        step = step0 + s
        if is_softmax:
            C.gather_minibatch(X, perm, start, A[0][:nb], labels, yb[:nb], seed, step * L, keep[0])
        else:
            C.gather_minibatch(X, perm, start, A[0][:nb], None, None, seed, step * L, keep[0])
            C.gather_minibatch(targets, perm, start, Tb[:nb])
        _forward(weights, biases, A, Z, masks, nb, keep, seed, step)
        if is_softmax:
            C.softmax_cross_entropy_accumulate(Z[L - 1][:nb], yb[:nb], probs[:nb], delta[L - 1][:nb], loss,
                                               epoch_stats, s)
        else:
            C.squared_error_accumulate(Z[L - 1][:nb], Tb[:nb], delta[L - 1][:nb], loss, epoch_stats, s)
        if epoch_stats[1] >= 0.0:
            return epoch_stats[0], s, True
        # backward and update, last layer first (the update of W[l] must come
        # after delta[l] W[l] has been back-propagated through it)
        for l in range(L - 1, -1, -1):
            d = delta[l][:nb]
            C.matmul_tn(d, A[l][:nb], dW[l])
            C.bias_grad(d, db[l])
            if l > 0 and keep[l] < 1.0:
                C.linear_relu_dropout_backward(d, weights[l], Z[l - 1][:nb], masks[l][:nb], delta[l - 1][:nb])
            elif l > 0:
                C.linear_relu_backward(d, weights[l], Z[l - 1][:nb], delta[l - 1][:nb])
            _update(weights[l], dW[l], vel_w[l], biases[l], db[l], vel_b[l], lr, momentum, l2[l], l1[l])
    return epoch_stats[0], n_steps, False


@njit(depends_on=KERNEL_MODULES)
def _forward(weights, biases, A, Z, masks, nb, keep, seed, step):
    """One minibatch's forward pass from A[0]: fused linear(+ReLU(+dropout)) per layer."""
    L = len(weights)
    for l in range(L - 1):
        if keep[l + 1] < 1.0:
            m = masks[l + 1][:nb]
            C.dropout_mask(seed, step * L + l + 1, keep[l + 1], m)
            C.linear_relu_dropout_forward(A[l][:nb], weights[l], biases[l], m, Z[l][:nb], A[l + 1][:nb])
        else:
            C.linear_relu_forward(A[l][:nb], weights[l], biases[l], Z[l][:nb], A[l + 1][:nb])
    C.linear_forward(A[L - 1][:nb], weights[L - 1], biases[L - 1], Z[L - 1][:nb])


@njit(depends_on=KERNEL_MODULES)
def _update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1):
    """One layer's SGD step: momentum when > 0 (then VW, Vb are its velocities, else never touched)."""
    if momentum > 0.0:
        C.layer_sgd_momentum_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1)
    else:
        C.layer_sgd_update(W, dW, b, db, lr, l2, l1)


# ---------------------------------------------------------------- reduced network
# The reduced network's data movement: which units a step keeps, and the gathers
# and scatters between the full parameters and the compact ones.
@njit(depends_on=KERNEL_MODULES)
def _kept_units(seed, stream, keep, mask, idx):
    """Draw the (width,) mask and write the kept unit numbers into idx; return how many."""
    width = mask.shape[0]
    if keep >= 1.0:
        for i in range(width):
            idx[i] = i
        return width
    C.dropout_mask(seed, stream, keep, mask)
    count = 0
    for i in range(width):
        if mask[i] != 0:
            idx[count] = i
            count += 1
    return count


@njit(depends_on=KERNEL_MODULES)
def _gather_inputs(X, perm, start, cols, n_cols, scale, out):
    """out[i, c] = X[perm[start + i], cols[c]] * scale: the minibatch restricted to the kept inputs."""
    n = out.shape[0]
    for i in range(n):
        src = perm[start + i]
        for c in range(n_cols):
            out[i, c] = X[src, cols[c]] * scale


@njit(depends_on=KERNEL_MODULES)
def _gather_labels(labels, perm, start, out):
    for i in range(out.shape[0]):
        out[i] = labels[perm[start + i]]


@njit(depends_on=KERNEL_MODULES)
def _gather_matrix(W, rows, n_rows, cols, n_cols, Wc):
    """Wc[r, c] = W[rows[r], cols[c]]."""
    for r in range(n_rows):
        src = rows[r]
        for c in range(n_cols):
            Wc[r, c] = W[src, cols[c]]


@njit(depends_on=KERNEL_MODULES)
def _scatter_matrix(Wc, rows, n_rows, cols, n_cols, W):
    """W[rows[r], cols[c]] = Wc[r, c]."""
    for r in range(n_rows):
        dst = rows[r]
        for c in range(n_cols):
            W[dst, cols[c]] = Wc[r, c]


@njit(depends_on=KERNEL_MODULES)
def _gather_params(W, b, VW, Vb, rows, n_rows, cols, n_cols, Wc, bc, VWc, Vbc, with_velocity):
    """The reduced network's weights, biases (and velocities) of one layer, into compact buffers."""
    _gather_matrix(W, rows, n_rows, cols, n_cols, Wc)
    for r in range(n_rows):
        bc[r] = b[rows[r]]
    if with_velocity:
        _gather_matrix(VW, rows, n_rows, cols, n_cols, VWc)
        for r in range(n_rows):
            Vbc[r] = Vb[rows[r]]


@njit(depends_on=KERNEL_MODULES)
def _scatter_params(W, b, VW, Vb, rows, n_rows, cols, n_cols, Wc, bc, VWc, Vbc, with_velocity):
    """The inverse of ``_gather_params``: updated compact parameters back into the full network."""
    _scatter_matrix(Wc, rows, n_rows, cols, n_cols, W)
    for r in range(n_rows):
        b[rows[r]] = bc[r]
    if with_velocity:
        _scatter_matrix(VWc, rows, n_rows, cols, n_cols, VW)
        for r in range(n_rows):
            Vb[rows[r]] = Vbc[r]


@njit(depends_on=KERNEL_MODULES)
def _view(flat, rows, cols):
    """The first rows*cols values of a flat buffer as a C-contiguous (rows, cols) matrix."""
    return flat[:rows * cols].reshape((rows, cols))


@njit(depends_on=KERNEL_MODULES)
def train_epoch_reduced(X, labels, targets, is_softmax, perm, batch_size,
                        weights, biases, vel_w, vel_b,
                        A, Z, delta, Wc, bc, VWc, Vbc, dWc, dbc, kept, widths, mask_vec,
                        yb, Tb, probs, loss, epoch_stats,
                        lr, momentum, l2, l1, keep, seed, step0):
    """One epoch of SGD with per-minibatch dropout, on the physically reduced network.

    For each minibatch one (width,) mask per masked layer decides which units
    exist; the kept rows/columns of every weight matrix (and the kept biases
    and velocities) are gathered into compact matrices, forward and backward
    propagation and the update run on those, and the compact parameters are
    scattered back. Removed units' weights, biases and velocities are left
    exactly as they were, regularisation included (the lecture: "adjust the
    weights of only those neurons that were retained"). Kept activations are
    scaled by 1/keep (inverted dropout), so inference uses the full network.

    Buffers are flat (1-D) and viewed at each step's compact shapes:
    A[l] holds batch_size * layer_sizes[l] values, Z[l] and delta[l]
    batch_size * layer_sizes[l+1]; Wc, VWc, dWc the size of weights[l]; bc,
    Vbc, dbc of biases[l]. kept is a tuple of L+1 int64 arrays (width_j,)
    receiving the kept unit numbers, widths (L+1,) int64 their counts,
    mask_vec[j] (width_j,) the drawn masks. Other arguments and the return
    value as in ``train_epoch``.
    """
    n = X.shape[0]
    L = len(weights)
    n_steps = (n + batch_size - 1) // batch_size
    with_velocity = momentum > 0.0
    n_out = weights[L - 1].shape[0]
    widths[L] = n_out
    epoch_stats[0] = 0.0
    epoch_stats[1] = -1.0
    for s in range(n_steps):
        start = s * batch_size
        nb = min(batch_size, n - start)
        step = step0 + s
        for j in range(L):
            widths[j] = _kept_units(seed, step * L + j, keep[j], mask_vec[j], kept[j])
        _gather_inputs(X, perm, start, kept[0], widths[0], X.dtype.type(1.0 / keep[0]),
                       _view(A[0], nb, widths[0]))
        # forward on the compact parameters
        for l in range(L):
            n_rows = widths[l + 1]
            n_cols = widths[l]
            w = _view(Wc[l], n_rows, n_cols)
            _gather_params(weights[l], biases[l], vel_w[l], vel_b[l], kept[l + 1], n_rows, kept[l], n_cols,
                           w, bc[l], _view(VWc[l], n_rows, n_cols), Vbc[l], with_velocity)
            z = _view(Z[l], nb, n_rows)
            C.matmul_nt(_view(A[l], nb, n_cols), w, z)
            if l == L - 1:
                C.bias_add(z, bc[l][:n_rows])
            else:
                C.bias_relu_scale_forward(z, bc[l][:n_rows], z.dtype.type(1.0 / keep[l + 1]),
                                          _view(A[l + 1], nb, n_rows))
        logits = _view(Z[L - 1], nb, n_out)
        if is_softmax:
            _gather_labels(labels, perm, start, yb[:nb])
            C.softmax_cross_entropy_accumulate(logits, yb[:nb], probs[:nb], _view(delta[L - 1], nb, n_out), loss,
                                               epoch_stats, s)
        else:
            C.gather_minibatch(targets, perm, start, Tb[:nb])
            C.squared_error_accumulate(logits, Tb[:nb], _view(delta[L - 1], nb, n_out), loss, epoch_stats, s)
        if epoch_stats[1] >= 0.0:
            return epoch_stats[0], s, True
        # backward, update and scatter, last layer first
        for l in range(L - 1, -1, -1):
            n_rows = widths[l + 1]
            n_cols = widths[l]
            w = _view(Wc[l], n_rows, n_cols)
            vw = _view(VWc[l], n_rows, n_cols)
            dw = _view(dWc[l], n_rows, n_cols)
            d = _view(delta[l], nb, n_rows)
            C.matmul_tn(d, _view(A[l], nb, n_cols), dw)
            C.bias_grad(d, dbc[l][:n_rows])
            if l > 0:
                dp = _view(delta[l - 1], nb, n_cols)
                C.matmul_nn(d, w, dp)
                C.relu_scale_backward(dp, _view(Z[l - 1], nb, n_cols), dp.dtype.type(1.0 / keep[l]), dp)
            _update(w, dw, vw, bc[l][:n_rows], dbc[l][:n_rows], Vbc[l][:n_rows], lr, momentum, l2[l], l1[l])
            _scatter_params(weights[l], biases[l], vel_w[l], vel_b[l], kept[l + 1], n_rows, kept[l], n_cols,
                            w, bc[l], vw, Vbc[l], with_velocity)
    return epoch_stats[0], n_steps, False


# ---------------------------------------------------------------- the engine
class CpuEngine(Engine):
    """The cpu backend's engine: every buffer made once per fit, one compiled call per epoch."""

    backend = "cpu"
    dropout_modes = ("per_sample", "per_batch")

    def __init__(self, net, config, X, y, batch, l2, l1, keep):
        super().__init__(net, config, X, y, batch, l2, l1, keep)
        dtype = net.dtype
        k = net.n_outputs
        self.is_softmax = net.output == "softmax"
        # the compiled signature takes both kinds of targets: the unused one is a dummy
        self.labels = y if self.is_softmax else np.zeros(1, np.int64)
        self.targets = np.zeros((1, k), dtype) if self.is_softmax else y
        self.yb = np.empty(batch, np.int64)
        self.Tb = np.empty((batch, k), dtype)
        self.probs = np.empty((batch, k), dtype)
        self.loss = np.zeros(1, np.float64)
        self.epoch_stats = np.zeros(2, np.float64)
        self.l2_arr = np.array(l2, np.float64)
        self.l1_arr = np.array(l1, np.float64)
        self.keep_arr = np.array(keep, np.float64)
        if self.reduced:
            self._allocate_reduced(net.layer_sizes, batch, dtype)
        else:
            self._allocate_full(net.layer_sizes, batch, dtype)

    def _allocate_full(self, sizes, batch, dtype):
        L = len(sizes) - 1
        hidden_masked = [j for j in range(1, L) if self.keep[j] < 1]
        ws = Workspace(self.K, sizes, batch, dtype, hidden_masked)
        self.A, self.Z, self.delta = tuple(ws.A), tuple(ws.Z), tuple(ws.delta)
        self.dW, self.db = tuple(ws.dW), tuple(ws.db)
        # numba wants a homogeneous tuple: layers without a mask get a (1, 1) stand-in
        self.masks = tuple(np.empty((1, 1), dtype) if m is None else m for m in ws.masks)

    def _allocate_reduced(self, sizes, batch, dtype):
        """Flat buffers, viewed at each step's compact shapes (see ``train_epoch_reduced``)."""
        L = len(sizes) - 1
        self.A = tuple(np.empty(batch * sizes[l], dtype) for l in range(L))
        self.Z = tuple(np.empty(batch * sizes[l + 1], dtype) for l in range(L))
        self.delta = tuple(np.empty(batch * sizes[l + 1], dtype) for l in range(L))
        self.Wc = tuple(np.empty(sizes[l + 1] * sizes[l], dtype) for l in range(L))
        self.VWc = tuple(np.empty(sizes[l + 1] * sizes[l], dtype) for l in range(L))
        self.dWc = tuple(np.empty(sizes[l + 1] * sizes[l], dtype) for l in range(L))
        self.bc = tuple(np.empty(sizes[l + 1], dtype) for l in range(L))
        self.Vbc = tuple(np.empty(sizes[l + 1], dtype) for l in range(L))
        self.dbc = tuple(np.empty(sizes[l + 1], dtype) for l in range(L))
        self.kept = tuple(np.arange(sizes[j], dtype=np.int64) for j in range(L + 1))
        self.widths = np.zeros(L + 1, np.int64)
        self.mask_vec = tuple(np.empty(sizes[j], dtype) for j in range(L))

    def run_epoch(self, order, learning_rate, first_step):
        net = self.net
        weights = tuple(net.weights)
        biases = tuple(net.biases)
        # without momentum the velocity arguments are never touched; the
        # parameters stand in so the compiled signature stays the same
        vel_w = weights if self.vel_w is None else tuple(self.vel_w)
        vel_b = biases if self.vel_b is None else tuple(self.vel_b)
        head = (self.X, self.labels, self.targets, self.is_softmax, order, self.batch, weights, biases, vel_w, vel_b)
        tail = (self.yb, self.Tb, self.probs, self.loss, self.epoch_stats, learning_rate, self.momentum,
                self.l2_arr, self.l1_arr, self.keep_arr, self.seed, first_step)
        if self.reduced:
            result = train_epoch_reduced(*head, self.A, self.Z, self.delta, self.Wc, self.bc, self.VWc, self.Vbc,
                                         self.dWc, self.dbc, self.kept, self.widths, self.mask_vec, *tail)
        else:
            result = train_epoch(*head, self.A, self.Z, self.delta, self.dW, self.db, self.masks, *tail)
        return EpochResult(*result)
