"""The cpu backend's engine: one compiled call runs every minibatch of an epoch.

``train_epoch`` (the full network, with per-example dropout masks, here) and
``train_epoch_reduced`` (the lecture's literal dropout: one mask per minibatch,
the reduced network gathered into compact matrices, in ``mlp.engines.cpu_reduced``),
with the steps both share in ``mlp.engines.cpu_steps``, are ``njit`` functions
that call the cpu backend's kernels (``kernels.cpu_backend``) step for step as
the numpy engine calls the reference ones, so the two agree to rounding.
``CpuEngine`` allocates every buffer once per fit and passes it in, so the
minibatch loop neither allocates nor returns to Python.

The hidden activation, the output layer and the update rule travel as integer
codes (``kernels.codes``, ``cpu_steps.RULE_CODES``); each compiled epoch branches on
them, so one compilation per depth and dtype serves every combination.

Any number of layers: the per-layer arrays travel as homogeneous tuples, which
numba indexes with a run-time layer number (one compilation per depth and
dtype, cached on disk). The optimizer state travels as two pairs of tuples:
the first moment (momentum's and Nesterov's velocities, Adam's m) and the
second (Adam's v); a rule that has fewer gets the parameters as stand-ins,
never touched.

Large products go to BLAS through the cpu matmuls; the elementwise work is
serial (BLAS owns the two cores, see ``kernels.cpu_backend``).

Compiled code is cached on disk. numba invalidates a cached function only when
its own source file changes, so the epoch functions declare the kernel modules
they compile in (``depends_on``, ``kernels.jit``): editing a kernel recompiles
them too.
"""
import numpy as np

from kernels import cpu_backend as C
from kernels.codes import SOFTMAX
from kernels.jit import njit

from ..propagation import Workspace
from . import cpu_steps as S
from .base import Engine, EpochResult
from .cpu_reduced import train_epoch_reduced

# What the epoch compiles in: the kernels and the shared steps.
DEPENDS_ON = S.KERNEL_MODULES + (S,)

# The state pairs of each rule: (first moment W, first moment b), (second moment W, b) keys.
_FIRST = {"sgd": None, "momentum": ("vW", "vb"), "nesterov": ("vW", "vb"), "adam": ("mW", "mb")}
_SECOND = {"sgd": None, "momentum": None, "nesterov": None, "adam": ("vW", "vb")}


# ---------------------------------------------------------------- full network
@njit(depends_on=DEPENDS_ON)
def train_epoch(X, labels, targets, sample_weight, output, activation, perm, batch_size,
                weights, biases, mom_w, mom_b, sq_w, sq_b,
                A, Z, delta, dW, db, masks, yb, Tb, probs, loss, epoch_stats,
                rule, lr, momentum, beta_1, beta_2, epsilon, l2, l1, alpha, keep, seed, step0):
    """Run one epoch of minibatch training on the full network, in place.

    Parameters
    ----------
    X : (n, d_in) training inputs; ``labels`` (n,) int64 for softmax (``targets`` None) or
        ``targets`` (n, k) for the other outputs (``labels`` None). numba resolves ``targets is None``
        at compile time where targets is None: a classifier's epoch compiles no target loss (a
        regressor's compiles the softmax branch too, never run).
    sample_weight : (n,) float64 weights of the examples (``cpu_steps.weight_rows``), or None:
        every example counts once (resolved at compile time: an unweighted epoch has no weighting code).
    output, activation : the codes (``kernels.codes``) of the output layer and the hidden activation.
    perm : (n,) int64, this epoch's order of the examples.
    weights, biases : tuples of L arrays, updated in place.
    mom_w, mom_b, sq_w, sq_b : tuples of L arrays shaped like the weights / biases: the optimizer
        state (see ``cpu_steps.gradient_and_update``), updated in place; None for state the rule does not have
        (SGD has none, momentum and Nesterov's no second moment). numba resolves ``x is None`` at
        compile time where x is None, so an epoch compiles only the rules that have its state.
    A : tuple of L buffers (batch_size, layer_sizes[l]): the layer inputs;
        A[0] receives the gathered (and masked) minibatch.
    Z, delta : tuples of L buffers (batch_size, layer_sizes[l+1]).
    dW, db : tuples of L gradient buffers with the parameters' shapes.
    masks : tuple of L buffers (batch_size, layer_sizes[l]); only those of
        hidden layers with keep < 1 are written (the input mask is applied by
        the gather and never stored).
    yb (batch_size,) int64, Tb (batch_size, k), probs (batch_size, k): the
        output activations, loss (1,) float64.
    epoch_stats : (2,) float64, the epoch's loss sum and first diverging step
        (see ``kernels.numpy_backend.softmax_cross_entropy_accumulate``).
    rule : the update rule's code (``cpu_steps.RULE_CODES``); lr, momentum, beta_1, beta_2, epsilon its hyper-parameters.
    l2, l1, keep : float64 arrays, one per weight matrix / masked layer;
        alpha : scikit-learn's L2, alpha / nb added to each l2 (nb the minibatch's rows, or
        the sum of their sample weights).
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
        if targets is None:  # softmax, on labels
            C.gather_minibatch(X, perm, start, A[0][:nb], labels, yb[:nb], seed, step * L, keep[0])
        else:
            C.gather_minibatch(X, perm, start, A[0][:nb], None, None, seed, step * L, keep[0])
            # the arguments' types of the call above (keep 1: no mask), so that both share one compiled gather
            C.gather_minibatch(targets, perm, start, Tb[:nb], None, None, seed, step * L, 1.0)
        _forward(weights, biases, activation, A, Z, masks, nb, keep, seed, step)
        if targets is None:
            C.softmax_cross_entropy_accumulate(Z[L - 1][:nb], yb[:nb], probs[:nb], delta[L - 1][:nb], loss,
                                               epoch_stats, s)
        else:
            S.target_loss(output, Z[L - 1][:nb], Tb[:nb], probs[:nb], delta[L - 1][:nb], loss, epoch_stats, s)
        if epoch_stats[1] >= 0.0:
            return epoch_stats[0], s, True
        weight = np.float64(nb)
        if sample_weight is not None:
            weight = S.weight_rows(output, Z[L - 1][:nb], yb[:nb], Tb[:nb], sample_weight, perm, start,
                                  delta[L - 1][:nb], loss, epoch_stats)
        # backward and update, last layer first (the update of W[l] must come
        # after delta[l] W[l] has been back-propagated through it)
        for l in range(L - 1, -1, -1):
            d = delta[l][:nb]
            if l > 0 and keep[l] < 1.0:
                C.linear_activation_dropout_backward(d, weights[l], Z[l - 1][:nb], activation, masks[l][:nb],
                                                     delta[l - 1][:nb])
            elif l > 0:
                C.linear_activation_backward(d, weights[l], Z[l - 1][:nb], activation, delta[l - 1][:nb])
            l2_step = S.alpha_l2(l2[l], alpha, weight)
            if mom_w is None:  # plain SGD, the one rule without state
                S.sgd_step(d, A[l][:nb], weights[l], dW[l], biases[l], db[l], lr, l2_step, l1[l])
            elif sq_w is None:  # momentum or Nesterov's
                S.momentum_step(rule, d, A[l][:nb], weights[l], dW[l], mom_w[l], biases[l], db[l], mom_b[l], lr,
                                momentum, l2_step, l1[l])
            else:  # Adam
                S.adam_step(d, A[l][:nb], weights[l], dW[l], mom_w[l], sq_w[l], biases[l], db[l], mom_b[l],
                            sq_b[l], lr, beta_1, beta_2, epsilon, l2_step, l1[l], step)
    return epoch_stats[0], n_steps, False


@njit(depends_on=DEPENDS_ON, inline="always")
def _forward(weights, biases, activation, A, Z, masks, nb, keep, seed, step):
    """One minibatch's forward pass from A[0]: fused linear(+activation(+dropout)) per layer."""
    L = len(weights)
    for l in range(L - 1):
        if keep[l + 1] < 1.0:
            m = masks[l + 1][:nb]
            C.dropout_mask(seed, step * L + l + 1, keep[l + 1], m)
            C.linear_activation_dropout_forward(A[l][:nb], weights[l], biases[l], activation, m, Z[l][:nb],
                                                A[l + 1][:nb])
        else:
            C.linear_activation_forward(A[l][:nb], weights[l], biases[l], activation, Z[l][:nb], A[l + 1][:nb])
    C.linear_forward(A[L - 1][:nb], weights[L - 1], biases[L - 1], Z[L - 1][:nb])


# ---------------------------------------------------------------- the engine
class CpuEngine(Engine):
    """The cpu backend's engine: every buffer made once per fit, one compiled call per epoch."""

    backend = "cpu"
    dropout_modes = ("per_sample", "per_batch")
    weighted = True

    def __init__(self, net, config, X, y, batch, l2, l1, keep, sample_weight=None):
        super().__init__(net, config, X, y, batch, l2, l1, keep, sample_weight)
        dtype = net.dtype
        k = net.n_outputs
        is_softmax = self.output == SOFTMAX
        self.rule_code = S.RULE_CODES[self.rule]
        # labels for softmax, targets for the others; the other one None (see ``train_epoch``)
        self.labels = y if is_softmax else None
        self.targets = None if is_softmax else y
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

        def flat(size_of_layer):
            return tuple(np.empty(size_of_layer(l), dtype) for l in range(L))

        def weight_size(l):
            return sizes[l + 1] * sizes[l]

        def bias_size(l):
            return sizes[l + 1]

        self.A = tuple(np.empty(batch * sizes[l], dtype) for l in range(L))
        self.Z = flat(lambda l: batch * sizes[l + 1])
        self.delta = flat(lambda l: batch * sizes[l + 1])
        self.Wc, self.dWc = flat(weight_size), flat(weight_size)
        self.bc, self.dbc = flat(bias_size), flat(bias_size)
        # compact optimizer state, only for the state the rule has (else the compact parameters stand in)
        self.MWc, self.Mbc = (flat(weight_size), flat(bias_size)) if _FIRST[self.rule] else (self.Wc, self.bc)
        self.VWc, self.Vbc = (flat(weight_size), flat(bias_size)) if _SECOND[self.rule] else (self.Wc, self.bc)
        self.kept = tuple(np.arange(sizes[j], dtype=np.int64) for j in range(L + 1))
        self.widths = np.zeros(L + 1, np.int64)
        self.mask_vec = tuple(np.empty(sizes[j], dtype) for j in range(L))

    def _state_tuples(self, weights, biases):
        """(first W, first b, second W, second b): the rule's state as tuples; for state it does not have,
        None (``train_epoch``) or the parameters as stand-ins, never touched (``train_epoch_reduced``, which
        gathers and scatters them). Read at every epoch: ``set_optimizer_state`` replaces the arrays."""
        tuples = []
        for keys in (_FIRST[self.rule], _SECOND[self.rule]):
            if keys is not None:
                tuples += [tuple(self.state[keys[0]]), tuple(self.state[keys[1]])]
            elif self.reduced:
                tuples += [weights, biases]
            else:
                tuples += [None, None]
        return tuples

    def run_epoch(self, order, learning_rate, first_step):
        net = self.net
        weights = tuple(net.weights)
        biases = tuple(net.biases)
        head = (self.X, self.labels, self.targets, self.sample_weight, self.output, self.activation, order, self.batch,
                weights, biases, *self._state_tuples(weights, biases))
        tail = (self.yb, self.Tb, self.probs, self.loss, self.epoch_stats,
                self.rule_code, float(learning_rate), float(self.momentum), float(self.beta_1), float(self.beta_2),
                float(self.epsilon), self.l2_arr, self.l1_arr, float(self.alpha), self.keep_arr, self.seed,
                first_step)
        if self.reduced:
            result = train_epoch_reduced(*head, self.A, self.Z, self.delta, self.Wc, self.bc, self.MWc, self.Mbc,
                                         self.VWc, self.Vbc, self.dWc, self.dbc, self.kept, self.widths,
                                         self.mask_vec, *tail)
        else:
            result = train_epoch(*head, self.A, self.Z, self.delta, self.dW, self.db, self.masks, *tail)
        return EpochResult(*result)
