"""The cpu engine's epoch with per-minibatch dropout: the lecture's reduced network, compiled.

``train_epoch_reduced`` gathers, for each minibatch, the kept rows and columns of every
weight matrix (and the kept biases and optimizer state) into compact matrices, trains
those and scatters them back; ``mlp.engines.cpu.CpuEngine`` calls it when the dropout
mode is "per_batch". Its steps are ``mlp.engines.cpu_steps``'.
"""
import numpy as np

from kernels import cpu_backend as C
from kernels.jit import njit

from . import cpu_steps as S

# What the epoch compiles in: the kernels and the shared steps.
DEPENDS_ON = S.KERNEL_MODULES + (S,)


# The reduced network's data movement: which units a step keeps, and the gathers
# and scatters between the full parameters and the compact ones.
@njit(depends_on=DEPENDS_ON)
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


@njit(depends_on=DEPENDS_ON)
def _gather_inputs(X, perm, start, cols, n_cols, scale, out):
    """out[i, c] = X[perm[start + i], cols[c]] * scale: the minibatch restricted to the kept inputs."""
    n = out.shape[0]
    for i in range(n):
        src = perm[start + i]
        for c in range(n_cols):
            out[i, c] = X[src, cols[c]] * scale


@njit(depends_on=DEPENDS_ON)
def _gather_labels(labels, perm, start, out):
    for i in range(out.shape[0]):
        out[i] = labels[perm[start + i]]


@njit(depends_on=DEPENDS_ON)
def _gather_matrix(W, rows, n_rows, cols, n_cols, Wc):
    """Wc[r, c] = W[rows[r], cols[c]]."""
    for r in range(n_rows):
        src = rows[r]
        for c in range(n_cols):
            Wc[r, c] = W[src, cols[c]]


@njit(depends_on=DEPENDS_ON)
def _scatter_matrix(Wc, rows, n_rows, cols, n_cols, W):
    """W[rows[r], cols[c]] = Wc[r, c]."""
    for r in range(n_rows):
        dst = rows[r]
        for c in range(n_cols):
            W[dst, cols[c]] = Wc[r, c]


@njit(depends_on=DEPENDS_ON)
def _gather_vector(b, rows, n_rows, bc):
    """bc[r] = b[rows[r]]."""
    for r in range(n_rows):
        bc[r] = b[rows[r]]


@njit(depends_on=DEPENDS_ON)
def _scatter_vector(bc, rows, n_rows, b):
    """b[rows[r]] = bc[r]."""
    for r in range(n_rows):
        b[rows[r]] = bc[r]


@njit(depends_on=DEPENDS_ON)
def _gather_params(W, b, MW, Mb, VW, Vb, rows, n_rows, cols, n_cols, Wc, bc, MWc, Mbc, VWc, Vbc, n_state):
    """One layer's reduced weights and biases, and the first ``n_state`` state pairs (M, V), into compact buffers."""
    _gather_matrix(W, rows, n_rows, cols, n_cols, Wc)
    _gather_vector(b, rows, n_rows, bc)
    if n_state >= 1:
        _gather_matrix(MW, rows, n_rows, cols, n_cols, MWc)
        _gather_vector(Mb, rows, n_rows, Mbc)
    if n_state >= 2:
        _gather_matrix(VW, rows, n_rows, cols, n_cols, VWc)
        _gather_vector(Vb, rows, n_rows, Vbc)


@njit(depends_on=DEPENDS_ON)
def _scatter_params(W, b, MW, Mb, VW, Vb, rows, n_rows, cols, n_cols, Wc, bc, MWc, Mbc, VWc, Vbc, n_state):
    """The inverse of ``_gather_params``: updated compact parameters (and state) back into the full network."""
    _scatter_matrix(Wc, rows, n_rows, cols, n_cols, W)
    _scatter_vector(bc, rows, n_rows, b)
    if n_state >= 1:
        _scatter_matrix(MWc, rows, n_rows, cols, n_cols, MW)
        _scatter_vector(Mbc, rows, n_rows, Mb)
    if n_state >= 2:
        _scatter_matrix(VWc, rows, n_rows, cols, n_cols, VW)
        _scatter_vector(Vbc, rows, n_rows, Vb)


@njit(depends_on=DEPENDS_ON)
def _view(flat, rows, cols):
    """The first rows*cols values of a flat buffer as a C-contiguous (rows, cols) matrix."""
    return flat[:rows * cols].reshape((rows, cols))


@njit(depends_on=DEPENDS_ON)
def train_epoch_reduced(X, labels, targets, sample_weight, output, activation, perm, batch_size,
                        weights, biases, mom_w, mom_b, sq_w, sq_b,
                        A, Z, delta, Wc, bc, MWc, Mbc, VWc, Vbc, dWc, dbc, kept, widths, mask_vec,
                        yb, Tb, probs, loss, epoch_stats,
                        rule, lr, momentum, beta_1, beta_2, epsilon, l2, l1, alpha, keep, seed, step0):
    """One epoch with per-minibatch dropout, on the physically reduced network.

    For each minibatch one (width,) mask per masked layer decides which units
    exist; the kept rows/columns of every weight matrix (and the kept biases
    and optimizer state) are gathered into compact matrices, forward and
    backward propagation and the update run on those, and the compact
    parameters and state are scattered back. Removed units' weights, biases and
    state are left exactly as they were, regularisation included (the lecture:
    "adjust the weights of only those neurons that were retained"). Kept
    activations are scaled by 1/keep (inverted dropout), so inference uses the
    full network.

    Buffers are flat (1-D) and viewed at each step's compact shapes:
    A[l] holds batch_size * layer_sizes[l] values, Z[l] and delta[l]
    batch_size * layer_sizes[l+1]; Wc, MWc, VWc, dWc the size of weights[l];
    bc, Mbc, Vbc, dbc of biases[l] (the state buffers of a rule without that
    state may be stand-ins, never touched). kept is a tuple of L+1 int64 arrays
    (width_j,) receiving the kept unit numbers, widths (L+1,) int64 their
    counts, mask_vec[j] (width_j,) the drawn masks. Other arguments and the
    return value as in ``train_epoch``.
    """
    n = X.shape[0]
    L = len(weights)
    n_steps = (n + batch_size - 1) // batch_size
    n_state = 2 if rule == S.ADAM else (1 if rule == S.MOMENTUM or rule == S.NESTEROV else 0)
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
            _gather_params(weights[l], biases[l], mom_w[l], mom_b[l], sq_w[l], sq_b[l],
                           kept[l + 1], n_rows, kept[l], n_cols,
                           w, bc[l], _view(MWc[l], n_rows, n_cols), Mbc[l], _view(VWc[l], n_rows, n_cols), Vbc[l],
                           n_state)
            z = _view(Z[l], nb, n_rows)
            C.matmul_nt(_view(A[l], nb, n_cols), w, z)
            if l == L - 1:
                C.bias_add(z, bc[l][:n_rows])
            else:
                C.bias_activation_scale_forward(z, bc[l][:n_rows], activation, z.dtype.type(1.0 / keep[l + 1]),
                                                _view(A[l + 1], nb, n_rows))
        logits = _view(Z[L - 1], nb, n_out)
        if targets is None:  # softmax, on labels (see ``train_epoch``)
            if labels is not None:  # always true here, but numba types this branch for targets too
                _gather_labels(labels, perm, start, yb[:nb])
            C.softmax_cross_entropy_accumulate(logits, yb[:nb], probs[:nb], _view(delta[L - 1], nb, n_out), loss,
                                               epoch_stats, s)
        else:
            C.gather_minibatch(targets, perm, start, Tb[:nb])
            S.target_loss(output, logits, Tb[:nb], probs[:nb], _view(delta[L - 1], nb, n_out), loss, epoch_stats, s)
        if epoch_stats[1] >= 0.0:
            return epoch_stats[0], s, True
        weight = np.float64(nb)
        if sample_weight is not None:
            weight = S.weight_rows(output, logits, yb[:nb], Tb[:nb], sample_weight, perm, start,
                                  _view(delta[L - 1], nb, n_out), loss, epoch_stats)
        # backward, update and scatter, last layer first
        for l in range(L - 1, -1, -1):
            n_rows = widths[l + 1]
            n_cols = widths[l]
            w = _view(Wc[l], n_rows, n_cols)
            mw = _view(MWc[l], n_rows, n_cols)
            vw = _view(VWc[l], n_rows, n_cols)
            dw = _view(dWc[l], n_rows, n_cols)
            d = _view(delta[l], nb, n_rows)
            if l > 0:
                dp = _view(delta[l - 1], nb, n_cols)
                C.matmul_nn(d, w, dp)
                C.activation_scale_backward(dp, _view(Z[l - 1], nb, n_cols), activation,
                                            dp.dtype.type(1.0 / keep[l]), dp)
            S.gradient_and_update(rule, d, _view(A[l], nb, n_cols), w, dw, mw, vw, bc[l][:n_rows], dbc[l][:n_rows],
                                  Mbc[l][:n_rows], Vbc[l][:n_rows], lr, momentum, beta_1, beta_2, epsilon,
                                  S.alpha_l2(l2[l], alpha, weight), l1[l], step)
            _scatter_params(weights[l], biases[l], mom_w[l], mom_b[l], sq_w[l], sq_b[l],
                            kept[l + 1], n_rows, kept[l], n_cols, w, bc[l], mw, Mbc[l], vw, Vbc[l], n_state)
    return epoch_stats[0], n_steps, False
