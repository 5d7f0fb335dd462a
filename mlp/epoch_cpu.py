"""The cpu backend's training epoch: one compiled call runs every minibatch of an epoch.

``train_epoch`` (full network, optionally with per-example dropout masks) and
``train_epoch_reduced`` (the lecture's literal dropout: one mask per minibatch,
the reduced network gathered into compact matrices) are ``njit`` functions.
``mlp.trainer`` allocates every buffer once per fit (``EpochBuffers``) and
passes it in, so the minibatch loop neither allocates nor returns to Python.

Any number of layers: the per-layer arrays travel as homogeneous tuples, which
numba indexes with a run-time layer number (one compilation per depth and
dtype, cached on disk).

The arithmetic is the generic loop's in ``mlp.trainer`` (the NumPy reference),
step for step, so the two agree to rounding:

* step ``t`` (counted from the first epoch) draws the mask of masked layer ``j``
  (0 = input, then the hidden layers) from stream ``t * n_layers + j`` of the
  counter-based generator ``kernels.cpu_backend.dropout_mask``;
* per-example masks have shape (nb, width), per-minibatch masks (width,);
* the update is ``sgd_update`` / ``sgd_momentum_update`` with the layer's l2/l1
  on weights and none on biases.

Large products go to BLAS through the ``kernels.cpu_backend`` matmuls; the
elementwise work is serial (BLAS owns the two cores, see that module).

Compiled code is cached on disk. numba invalidates a cached function only
when its own source file changes, not when a kernel it calls does: after
editing ``kernels/cpu_backend.py``, touch this file (or clear its
``__pycache__``) so the epoch functions are recompiled with the new kernels.
"""
import numpy as np

from kernels import cpu_backend as C
from kernels.jit import njit


# ---------------------------------------------------------------- shared pieces
@njit
def _gather_rows(X, perm, start, out):
    """out[i] = X[perm[start + i]] for every row of ``out``."""
    n, d = out.shape
    for i in range(n):
        src = perm[start + i]
        for k in range(d):
            out[i, k] = X[src, k]


@njit
def _gather_labels(labels, perm, start, out):
    for i in range(out.shape[0]):
        out[i] = labels[perm[start + i]]


@njit
def _update(P, dP, V, lr, momentum, l2, l1):
    if momentum > 0.0:
        C.sgd_momentum_update(P, dP, V, lr, momentum, l2, l1)
    else:
        C.sgd_update(P, dP, lr, l2, l1)


@njit
def _output_loss(is_softmax, logits, yb, Tb, probs, dlogits, loss):
    if is_softmax:
        C.softmax_cross_entropy(logits, yb, probs, dlogits, loss)
    else:
        C.squared_error(logits, Tb, dlogits, loss)


# ---------------------------------------------------------------- full network
@njit
def train_epoch(X, labels, targets, is_softmax, perm, batch_size,
                weights, biases, vel_w, vel_b,
                A, Z, delta, dW, db, masks, yb, Tb, probs, loss,
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
        layers with keep < 1 are written.
    yb (batch_size,) int64, Tb (batch_size, k), probs (batch_size, k), loss (1,) float64.
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
    total = 0.0
    for s in range(n_steps):
        start = s * batch_size
        nb = min(batch_size, n - start)
        step = step0 + s
        x = A[0][:nb]
        _gather_rows(X, perm, start, x)
        if is_softmax:
            _gather_labels(labels, perm, start, yb[:nb])
        else:
            _gather_rows(targets, perm, start, Tb[:nb])
        if keep[0] < 1.0:
            m = masks[0][:nb]
            C.dropout_mask(seed, step * L, keep[0], m)
            C.apply_mask(x, m, x)
        # forward
        for l in range(L):
            z = Z[l][:nb]
            C.matmul_nt(A[l][:nb], weights[l], z)
            if l == L - 1:
                C.bias_add(z, biases[l])
            elif keep[l + 1] < 1.0:
                m = masks[l + 1][:nb]
                C.dropout_mask(seed, step * L + l + 1, keep[l + 1], m)
                C.bias_relu_dropout_forward(z, biases[l], m, A[l + 1][:nb])
            else:
                C.bias_relu_forward(z, biases[l], A[l + 1][:nb])
        _output_loss(is_softmax, Z[L - 1][:nb], yb[:nb], Tb[:nb], probs[:nb], delta[L - 1][:nb], loss)
        if not np.isfinite(loss[0]):
            return total, s, True
        total += loss[0] * nb
        # backward and update, last layer first (the update of W[l] must come
        # after delta[l] W[l] has been back-propagated through it)
        for l in range(L - 1, -1, -1):
            d = delta[l][:nb]
            C.matmul_tn(d, A[l][:nb], dW[l])
            C.bias_grad(d, db[l])
            if l > 0:
                dp = delta[l - 1][:nb]
                C.matmul_nn(d, weights[l], dp)
                if keep[l] < 1.0:
                    C.relu_dropout_backward(dp, Z[l - 1][:nb], masks[l][:nb], dp)
                else:
                    C.relu_backward(dp, Z[l - 1][:nb], dp)
            _update(weights[l], dW[l], vel_w[l], lr, momentum, l2[l], l1[l])
            _update(biases[l], db[l], vel_b[l], lr, momentum, 0.0, 0.0)
    return total, n_steps, False


# ---------------------------------------------------------------- reduced network
@njit
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


@njit
def _gather_inputs(X, perm, start, cols, n_cols, scale, out):
    """out[i, c] = X[perm[start + i], cols[c]] * scale: the minibatch restricted to the kept inputs."""
    n = out.shape[0]
    for i in range(n):
        src = perm[start + i]
        for c in range(n_cols):
            out[i, c] = X[src, cols[c]] * scale


@njit
def _gather_matrix(W, rows, n_rows, cols, n_cols, Wc):
    """Wc[r, c] = W[rows[r], cols[c]]."""
    for r in range(n_rows):
        src = rows[r]
        for c in range(n_cols):
            Wc[r, c] = W[src, cols[c]]


@njit
def _scatter_matrix(Wc, rows, n_rows, cols, n_cols, W):
    """W[rows[r], cols[c]] = Wc[r, c]."""
    for r in range(n_rows):
        dst = rows[r]
        for c in range(n_cols):
            W[dst, cols[c]] = Wc[r, c]


@njit
def _gather_params(W, b, VW, Vb, rows, n_rows, cols, n_cols, Wc, bc, VWc, Vbc, with_velocity):
    """The reduced network's weights, biases (and velocities) of one layer, into compact buffers."""
    _gather_matrix(W, rows, n_rows, cols, n_cols, Wc)
    for r in range(n_rows):
        bc[r] = b[rows[r]]
    if with_velocity:
        _gather_matrix(VW, rows, n_rows, cols, n_cols, VWc)
        for r in range(n_rows):
            Vbc[r] = Vb[rows[r]]


@njit
def _scatter_params(W, b, VW, Vb, rows, n_rows, cols, n_cols, Wc, bc, VWc, Vbc, with_velocity):
    """The inverse of ``_gather_params``: updated compact parameters back into the full network."""
    _scatter_matrix(Wc, rows, n_rows, cols, n_cols, W)
    for r in range(n_rows):
        b[rows[r]] = bc[r]
    if with_velocity:
        _scatter_matrix(VWc, rows, n_rows, cols, n_cols, VW)
        for r in range(n_rows):
            Vb[rows[r]] = Vbc[r]


@njit
def _bias_relu_scale(Z, b, scale, H):
    """Z += b, H = relu(Z) * scale: a hidden layer of the reduced network (inverted dropout scaling)."""
    n, d = Z.shape
    zero = Z.dtype.type(0)
    for i in range(n):
        for j in range(d):
            z = Z[i, j] + b[j]
            Z[i, j] = z
            H[i, j] = z * scale if z > zero else zero


@njit
def _relu_scale_backward(dH, Z, scale, dZ):
    """dZ = dH * relu'(Z) * scale, in place when dZ is dH."""
    n, d = Z.shape
    zero = Z.dtype.type(0)
    for i in range(n):
        for j in range(d):
            dZ[i, j] = dH[i, j] * scale if Z[i, j] > zero else zero


@njit
def _view(flat, rows, cols):
    """The first rows*cols values of a flat buffer as a C-contiguous (rows, cols) matrix."""
    return flat[:rows * cols].reshape((rows, cols))


@njit
def train_epoch_reduced(X, labels, targets, is_softmax, perm, batch_size,
                        weights, biases, vel_w, vel_b,
                        A, Z, delta, Wc, bc, VWc, Vbc, dWc, dbc, kept, widths, mask_vec,
                        yb, Tb, probs, loss,
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
    receiving the kept unit numbers (kept[L] = all outputs, filled by the
    caller), widths (L+1,) int64 their counts, mask_vec[j] (width_j,) the
    drawn masks. Other arguments and the return value as in ``train_epoch``.
    """
    n = X.shape[0]
    L = len(weights)
    n_steps = (n + batch_size - 1) // batch_size
    with_velocity = momentum > 0.0
    n_out = weights[L - 1].shape[0]
    widths[L] = n_out
    total = 0.0
    for s in range(n_steps):
        start = s * batch_size
        nb = min(batch_size, n - start)
        step = step0 + s
        for j in range(L):
            widths[j] = _kept_units(seed, step * L + j, keep[j], mask_vec[j], kept[j])
        _gather_inputs(X, perm, start, kept[0], widths[0], X.dtype.type(1.0 / keep[0]),
                       _view(A[0], nb, widths[0]))
        if is_softmax:
            _gather_labels(labels, perm, start, yb[:nb])
        else:
            _gather_rows(targets, perm, start, Tb[:nb])
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
                _bias_relu_scale(z, bc[l][:n_rows], z.dtype.type(1.0 / keep[l + 1]), _view(A[l + 1], nb, n_rows))
        _output_loss(is_softmax, _view(Z[L - 1], nb, n_out), yb[:nb], Tb[:nb], probs[:nb],
                     _view(delta[L - 1], nb, n_out), loss)
        if not np.isfinite(loss[0]):
            return total, s, True
        total += loss[0] * nb
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
                _relu_scale_backward(dp, _view(Z[l - 1], nb, n_cols), dp.dtype.type(1.0 / keep[l]), dp)
            _update(w, dw, vw, lr, momentum, l2[l], l1[l])
            _update(bc[l][:n_rows], dbc[l][:n_rows], Vbc[l][:n_rows], lr, momentum, 0.0, 0.0)
            _scatter_params(weights[l], biases[l], vel_w[l], vel_b[l], kept[l + 1], n_rows, kept[l], n_cols,
                            w, bc[l], vw, Vbc[l], with_velocity)
    return total, n_steps, False
