"""What both compiled cpu epochs (``mlp.engines.cpu``, ``mlp.engines.cpu_reduced``) do at every step.

The update rule, the output layer's loss, sample weights and alpha's L2, as ``njit``
functions the epochs call with no Python between. The hidden activation, the output
layer and the update rule travel as integer codes (``kernels.codes``, ``RULE_CODES``).
"""
import numpy as np

from kernels import codes, counter_rng, cpu_blas, cpu_losses, cpu_updates
from kernels import cpu_backend as C
from kernels.codes import EXP_OUTPUT, LOGISTIC_OUTPUT, SOFTMAX
from kernels.jit import njit

from .base import UPDATE_RULES

# What these functions compile in: an edit to any must invalidate their cache.
KERNEL_MODULES = (C, cpu_blas, cpu_losses, cpu_updates, counter_rng, codes)

# The update rules as the compiled epochs take them: a rule's code is its index in UPDATE_RULES.
RULE_CODES = {rule: code for code, rule in enumerate(UPDATE_RULES)}
SGD, MOMENTUM, NESTEROV, ADAM = (RULE_CODES[rule] for rule in ("sgd", "momentum", "nesterov", "adam"))


@njit(depends_on=KERNEL_MODULES, inline="always")
def adam_step_size(learning_rate, beta_1, beta_2, t):
    """``kernels.numpy_backend.adam_step_size``: lr * sqrt(1 - beta_2**t) / (1 - beta_1**t), t >= 1.

    t as a float: Python's float ** int is pow() of doubles, and so is this.
    """
    tf = np.float64(t)
    return learning_rate * np.sqrt(1.0 - beta_2 ** tf) / (1.0 - beta_1 ** tf)


# One layer's gradients (dW = delta^T A, db) and its step of the update rule, by kind of optimizer
# state; each is called after delta has been back-propagated through W. The full epoch picks one by
# which state it was given (``mlp.engines.cpu.train_epoch``), so that it compiles only those its rule
# may need; the reduced epoch, which has stand-ins for every state, calls ``gradient_and_update``.
@njit(depends_on=KERNEL_MODULES, inline="always")
def sgd_step(delta, A, W, dW, b, db, lr, l2, l1):
    """Plain SGD. Without L1, BLAS writes the step into W (``matmul_tn_update``: W <- (1 - lr l2) W
    - lr delta^T A), with neither the dW buffer nor a pass over it and W; the L1 step's clip needs dW."""
    if l1 == 0.0:
        C.matmul_tn_update(delta, A, -lr, 1.0 - lr * l2, W)
        C.bias_grad(delta, db)
        C.sgd_update(b, db, lr, 0.0, 0.0)
    else:
        C.matmul_tn(delta, A, dW)
        C.bias_grad(delta, db)
        C.layer_sgd_update(W, dW, b, db, lr, l2, l1)


@njit(depends_on=KERNEL_MODULES, inline="always")
def momentum_step(rule, delta, A, W, dW, VW, b, db, Vb, lr, momentum, l2, l1):
    """SGD with momentum, or Nesterov's (``rule``); VW, Vb the velocities."""
    C.matmul_tn(delta, A, dW)
    C.bias_grad(delta, db)
    if rule == NESTEROV:
        C.layer_sgd_nesterov_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1)
    else:
        C.layer_sgd_momentum_update(W, dW, VW, b, db, Vb, lr, momentum, l2, l1)


@njit(depends_on=KERNEL_MODULES, inline="always")
def adam_step(delta, A, W, dW, MW, VW, b, db, Mb, Vb, lr, beta_1, beta_2, epsilon, l2, l1, step):
    """Adam at global step ``step`` (from 0); MW, Mb and VW, Vb its first and second moments."""
    C.matmul_tn(delta, A, dW)
    C.bias_grad(delta, db)
    C.layer_adam_update(W, dW, MW, VW, b, db, Mb, Vb, adam_step_size(lr, beta_1, beta_2, step + 1),
                        beta_1, beta_2, epsilon, l2, l1)


@njit(depends_on=KERNEL_MODULES, inline="always")
def gradient_and_update(rule, delta, A, W, dW, MW, VW, b, db, Mb, Vb, lr, momentum, beta_1, beta_2, epsilon,
                        l2, l1, step):
    """The step of the update rule (``RULE_CODES``); MW, Mb the first moment (velocities, Adam's m),
    VW, Vb Adam's v: a rule without them never touches them."""
    if rule == ADAM:
        adam_step(delta, A, W, dW, MW, VW, b, db, Mb, Vb, lr, beta_1, beta_2, epsilon, l2, l1, step)
    elif rule == SGD:
        sgd_step(delta, A, W, dW, b, db, lr, l2, l1)
    else:
        momentum_step(rule, delta, A, W, dW, MW, b, db, Mb, lr, momentum, l2, l1)


@njit(depends_on=KERNEL_MODULES, inline="always")
def target_loss(output, logits, Tb, outputs, dlogits, loss, epoch_stats, s):
    """The loss kernel of an output layer trained on (rows, k) targets, with the epoch's bookkeeping.

    logistic, exp or identity (``kernels.codes.OUTPUTS``); outputs receives the output activations
    (logistic, exp). Softmax takes labels instead: the epochs call its kernel themselves, on a branch
    numba prunes at compile time (their ``targets`` is None then), so a classifier's epoch compiles
    none of these.
    """
    if output == LOGISTIC_OUTPUT:
        C.sigmoid_cross_entropy_accumulate(logits, Tb, outputs, dlogits, loss, epoch_stats, s)
    elif output == EXP_OUTPUT:
        C.poisson_loss_accumulate(logits, Tb, outputs, dlogits, loss, epoch_stats, s)
    else:
        C.squared_error_accumulate(logits, Tb, dlogits, loss, epoch_stats, s)


@njit(depends_on=KERNEL_MODULES)
def weight_rows(output, logits, yb, Tb, sample_weight, perm, start, dlogits, loss, epoch_stats):
    """``mlp.propagation.weight_rows`` on a gathered minibatch, after its loss kernel; returns the weight sum.

    Row i's weight is sample_weight[perm[start + i]]; dlogits rows are scaled by w_i nb / sum(w), and the
    epoch's loss sum takes the weighted minibatch loss instead of the plain one (while no loss diverged).
    """
    nb, k = logits.shape
    total = 0.0
    for i in range(nb):
        total += sample_weight[perm[start + i]]
    weighted = 0.0
    for i in range(nb):
        w = sample_weight[perm[start + i]]
        row = 0.0
        if output == SOFTMAX:
            top = np.float64(logits[i, 0])
            for c in range(1, k):
                top = max(top, np.float64(logits[i, c]))
            norm = 0.0
            for c in range(k):
                norm += np.exp(np.float64(logits[i, c]) - top)
            row = top + np.log(norm) - np.float64(logits[i, yb[i]])
        else:
            for c in range(k):
                z, t = np.float64(logits[i, c]), np.float64(Tb[i, c])
                if output == LOGISTIC_OUTPUT:
                    row += max(z, 0.0) + np.log1p(np.exp(-abs(z))) - t * z
                elif output == EXP_OUTPUT:
                    row += (t * np.log(t) if t > 0 else 0.0) - t * z - t + np.exp(z)
                else:
                    row += 0.5 * (z - t) * (z - t)
        weighted += w * row
        scale = dlogits.dtype.type(w * nb / total) if total != 0 else dlogits.dtype.type(0)
        for c in range(k):
            dlogits[i, c] *= scale
    weighted = weighted / total if total != 0 else 0.0
    if epoch_stats[1] < 0:
        epoch_stats[0] += (weighted - loss[0]) * nb
    loss[0] = weighted
    return total


@njit(depends_on=KERNEL_MODULES, inline="always")
def alpha_l2(l2, alpha, weight):
    """A layer's L2 strength in a minibatch of total ``weight``: l2 + alpha / weight (none at weight 0)."""
    return l2 + alpha / weight if weight > 0 else l2
