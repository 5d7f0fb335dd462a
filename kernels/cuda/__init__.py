"""The CUDA backend: the reference's kernels as Numba CUDA kernels on device arrays.

Same functions, signatures and in-place conventions as ``kernels.numpy_backend``
(the specification); arguments are device arrays made by ``to_device``,
``empty`` or ``zeros``, and every function only queues work on the default
stream, so nothing waits for the GPU except ``to_host``, ``synchronize``,
``free_memory`` and ``regularization_loss`` (which returns a Python float).

Beside the standard set it offers the ``FUSED`` layer kernels and the
``TRAINING`` kernels of ``kernels.spec`` (the reduced network's kernels gather
on the host and have no cuda version).

The modules, each device kernel named after the public kernel it serves
(``bias_activation_forward`` launches ``bias_activation_forward_2d``):
    launch            launch configuration, device arrays, ``free_memory``, scratch buffers
    device_functions  sign, the activations and their derivatives, the dropout mask's element,
                      the SGD, momentum, Nesterov and Adam steps
    matmul            the register-blocked product template and its ``ALTERNATIVES``
    fused             the fused layer kernels: the template with their own epilogues
    elementwise       activations, derivatives (by activation code), bias gradients, dropout masks
    losses            losses and the regularisation penalty, reduced in float64
    updates           the regularisation gradient and the parameter updates
    training          the minibatch gather, the accumulating losses, the layer updates

Design notes
------------
* Kernels are built per dtype by small factories (``functools.lru_cache``) so
  that every constant in a kernel body (zero, one, shared-memory dtype) is a
  closure constant of the array dtype: a float32 model never touches float64
  arithmetic, except where the reference itself accumulates a loss in float64
  (``FLOAT64_ACCUMULATORS``).
* The matrix products are shared-memory tiled and register blocked (see
  ``matmul``); one kernel template with a per-kernel epilogue serves the plain
  products and the fused layer kernels.
* Losses are reduced on the device in two deterministic passes (per-block
  partial sums in float64, then one block sums the partials into
  ``loss_out``), using a reusable scratch buffer instead of atomics, so the
  same inputs always give the same loss bits.
* Kernels compile lazily, on first use of each dtype and array rank.
* Grids are sized to the problem; an MLP's kernels are often smaller than the
  128 blocks below which numba-cuda warns about low occupancy, a warning that
  would fire on most launches here, so it is switched off for this process.
"""
from ..spec import chains
from .elementwise import (
    activation_backward, activation_dropout_backward, apply_mask, bias_activation_dropout_forward,
    bias_activation_forward, bias_add, bias_grad, dropout_mask, softmax,
)
from .fused import (
    linear_activation_backward, linear_activation_dropout_backward, linear_activation_dropout_forward,
    linear_activation_forward, linear_forward,
)
from .launch import SIMULATOR, empty, free_memory, scratch, synchronize, to_device, to_host, zeros
from .losses import poisson_loss, regularization_loss, sigmoid_cross_entropy, softmax_cross_entropy, squared_error
from .matmul import (
    ALTERNATIVES, MATMUL_LARGE, MATMUL_SMALL, MatmulConfig, matmul_blocked, matmul_nn,
    matmul_nn_naive, matmul_nn_tiled, matmul_nt, matmul_nt_naive, matmul_nt_tiled, matmul_tn, matmul_tn_naive,
    matmul_tn_tiled, matmul_tn_update,
)
from .training import (
    gather_minibatch, layer_adam_update, layer_sgd_momentum_update, layer_sgd_nesterov_update, layer_sgd_update,
    poisson_loss_accumulate, sigmoid_cross_entropy_accumulate, softmax_cross_entropy_accumulate,
    squared_error_accumulate,
)
from .updates import add_regularization_grad, adam_update, sgd_momentum_update, sgd_nesterov_update, sgd_update

NAME = "cuda"

# Kernels beside the standard set, each mapped to the standard kernels of its chain.
FUSED = chains("fused")
TRAINING = chains("training")

# Device kernels whose float32 instantiation uses float64 on purpose: they accumulate a
# loss in float64 as the reference does. Every other kernel is pure in its array dtype.
FLOAT64_ACCUMULATORS = frozenset({
    "softmax_cross_entropy_rows", "squared_error_2d", "sigmoid_cross_entropy_2d", "poisson_loss_2d",
    "regularization_loss_1d", "regularization_loss_2d", "sum_partials", "sum_partials_accumulate",
})
