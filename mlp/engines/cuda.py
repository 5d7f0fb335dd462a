"""The cuda backend's engine: every minibatch step stays on the GPU.

Per fit ``CudaEngine`` copies the training data to the device once and
allocates every buffer once; per epoch it copies the epoch's order of the
examples (n int64) to the device and reads back two float64 numbers (the
summed loss and the first diverging step, if any). Nothing else crosses between
host and device during an epoch: minibatches are gathered on the device,
dropout masks are drawn there, and the loss is summed there (the output
layer's ``*_accumulate`` loss kernel).

When the data would take more than half of the free GPU memory (or
``max_resident_bytes``), it is streamed instead: the epoch is cut into chunks of
whole minibatches, each chunk's rows are gathered in epoch order on the host and
copied in one transfer, and the steps of the chunk gather from it as above.

The arithmetic is that of the other engines, kernel for kernel (the fused and
training kernels are checked against the chains of standard kernels they
merge), so a cuda fit matches a cpu or numpy fit with the same seed to rounding.

Kernel launches per minibatch step, for ``L`` weight matrices and a softmax
output:

* 1 gather (rows, labels, and the input-layer dropout mask, which is applied
  there and never stored: the backward pass does not need it);
* forward: 1 fused linear(+activation(+dropout)) per layer, plus 1
  ``dropout_mask`` per hidden layer with dropout;
* loss: 2 (per-block partials, then one block that also adds the epoch's sum);
* backward: per layer, 1 ``matmul_tn`` (dW) and 1 ``bias_grad`` (db), and for
  every layer but the first 1 fused back-propagation (delta W, f', mask);
* update: 1 per layer (weights and biases together, whatever the rule: SGD,
  momentum, Nesterov or Adam, whose bias-corrected step size is computed on the
  host per step).

That is ``5L + 2`` plus one per masked hidden layer; for 784-256-10
(L = 2): 12 launches per step with any update rule and L1/L2, and 13 with
dropout on the input and the hidden layer. An output with float targets
(identity, logistic, exp) gathers its targets with a second launch (13 / 14).
The hidden activation (``net.activation``) is a kernel argument, its code in
``kernels.codes.ACTIVATIONS``: no launch depends on it.

Sample weights are not implemented here (``weighted`` is False): the base class
refuses them.

``dropout_mode="per_batch"`` (the lecture's reduced network, gathered into
compact matrices) is not implemented here.
"""
import numpy as np

from kernels.codes import EXP_OUTPUT, IDENTITY_OUTPUT, LOGISTIC_OUTPUT, SOFTMAX

from ..propagation import Workspace
from .base import Engine, EpochResult

# The output layer's accumulating loss kernel, by output code (``kernels.codes.OUTPUTS``).
LOSS_KERNELS = {SOFTMAX: "softmax_cross_entropy_accumulate", IDENTITY_OUTPUT: "squared_error_accumulate",
                LOGISTIC_OUTPUT: "sigmoid_cross_entropy_accumulate", EXP_OUTPUT: "poisson_loss_accumulate"}

# Share of the free device memory the resident training data may take; the rest
# is left to the buffers, the evaluation and whatever else runs on the GPU.
RESIDENT_SHARE = 0.5


class CudaEngine(Engine):
    """The cuda backend's engine; see the module docstring and ``mlp.engines.base.Engine``.

    Parameters
    ----------
    net, config, X, y, batch, l2, l1, keep : as ``Engine``
    sample_weight : must be None (``Engine`` refuses sample weights on this engine)
    max_resident_bytes : int or None
        Keep X and y on the device when they take at most this many bytes, else
        stream them in chunks. None: half of the free device memory.
    """

    backend = "cuda"
    dropout_modes = ("per_sample",)

    def __init__(self, net, config, X, y, batch, l2, l1, keep, sample_weight=None, *, max_resident_bytes=None):
        super().__init__(net, config, X, y, batch, l2, l1, keep, sample_weight)
        K = self.K
        self.is_softmax = self.output == SOFTMAX
        self.loss_kernel = getattr(K, LOSS_KERNELS[self.output])
        n = X.shape[0]
        self.n = n
        # the input mask is applied by the gather: only hidden layers keep a mask buffer
        hidden_masked = [j for j in range(1, net.n_layers) if keep[j] < 1]
        self.workspaces = {rows: Workspace(K, net.layer_sizes, rows, net.dtype, hidden_masked, targets_like=y)
                           for rows in {batch, n % batch} - {0}}
        self.epoch_stats = K.zeros((2,), np.float64)
        self._stats_start = np.array([0.0, -1.0])
        self._place_data(X, y, max_resident_bytes)

    def _place_data(self, X, y, max_resident_bytes):
        """Copy X and y to the device, or prepare chunks of whole minibatches when they do not fit."""
        K, n, batch = self.K, self.n, self.batch
        data_bytes = X.nbytes + y.nbytes
        if max_resident_bytes is None:
            free = K.free_memory()
            max_resident_bytes = data_bytes if free is None else int(RESIDENT_SHARE * free)
        self.resident = data_bytes <= max_resident_bytes
        if self.resident:
            self.chunk_rows = n
            self.X_dev = K.to_device(X)
            self.y_dev = K.to_device(y)
            self.order = K.empty((n,), np.int64)
        else:
            row_bytes = max(1, data_bytes // n)
            steps = max(1, max_resident_bytes // (row_bytes * batch))
            self.chunk_rows = min(n, steps * batch)
            self.X_chunk = np.empty((self.chunk_rows,) + X.shape[1:], X.dtype)
            self.y_chunk = np.empty((self.chunk_rows,) + y.shape[1:], y.dtype)
            self.X_dev = K.empty(self.X_chunk.shape, X.dtype)
            self.y_dev = K.empty(self.y_chunk.shape, y.dtype)
            # a chunk holds its rows in epoch order already: its steps gather 0, 1, 2...
            self.order = K.to_device(np.arange(self.chunk_rows, dtype=np.int64))

    # ------------------------------------------------------------ training
    def run_epoch(self, order, learning_rate, first_step):
        """One epoch in ``order``; after a non-finite loss the sum stops and ``steps`` is that step's
        number in the epoch (the remaining queued steps still run: the trainer restores the
        parameters of the previous epoch)."""
        n, batch = self.n, self.batch
        self.epoch_stats.copy_to_device(self._stats_start)
        order = np.ascontiguousarray(order, dtype=np.int64)
        for chunk_start in range(0, n, self.chunk_rows):
            chunk_stop = min(n, chunk_start + self.chunk_rows)
            if self.resident:
                self.order.copy_to_device(order)
            else:
                rows = chunk_stop - chunk_start
                np.take(self.X, order[chunk_start:chunk_stop], axis=0, out=self.X_chunk[:rows])
                np.take(self.y, order[chunk_start:chunk_stop], axis=0, out=self.y_chunk[:rows])
                self.X_dev.copy_to_device(self.X_chunk)
                self.y_dev.copy_to_device(self.y_chunk)
            offset = 0 if self.resident else chunk_start
            for start in range(chunk_start, chunk_stop, batch):
                nb = min(batch, n - start)
                self._step(self.workspaces[nb], start - offset, first_step + start // batch, start // batch,
                           learning_rate)
        total, first_bad = self.K.to_host(self.epoch_stats)
        if first_bad >= 0:
            return EpochResult(float(total), int(first_bad), True)
        return EpochResult(float(total), -(-n // batch), False)

    def _step(self, ws, start, step, step_in_epoch, lr):
        """Queue one minibatch step: rows ``order[start:start + ws.n]`` of the data on the device."""
        K, net = self.K, self.net
        weights, biases = net.weights, net.biases
        L = len(weights)
        keep, seed, f = self.keep, self.seed, self.activation
        if self.is_softmax:
            K.gather_minibatch(self.X_dev, self.order, start, ws.A[0], self.y_dev, ws.targets,
                               seed=seed, stream=step * L, keep=keep[0])
        else:
            K.gather_minibatch(self.X_dev, self.order, start, ws.A[0], seed=seed, stream=step * L, keep=keep[0])
            K.gather_minibatch(self.y_dev, self.order, start, ws.targets)
        for l in range(L):
            if l == L - 1:
                K.linear_forward(ws.A[l], weights[l], biases[l], ws.Z[l])
            elif ws.masks[l + 1] is not None:
                K.dropout_mask(seed, step * L + l + 1, keep[l + 1], ws.masks[l + 1])
                K.linear_activation_dropout_forward(ws.A[l], weights[l], biases[l], f, ws.masks[l + 1], ws.Z[l],
                                                    ws.A[l + 1])
            else:
                K.linear_activation_forward(ws.A[l], weights[l], biases[l], f, ws.Z[l], ws.A[l + 1])
        if self.output == IDENTITY_OUTPUT:
            self.loss_kernel(ws.Z[-1], ws.targets, ws.delta[-1], ws.loss, self.epoch_stats, step_in_epoch)
        else:
            self.loss_kernel(ws.Z[-1], ws.targets, ws.outputs, ws.delta[-1], ws.loss, self.epoch_stats,
                             step_in_epoch)
        # last layer first: W[l] is updated only after delta[l] has gone back through it
        for l in range(L - 1, -1, -1):
            K.matmul_tn(ws.delta[l], ws.A[l], ws.dW[l])
            K.bias_grad(ws.delta[l], ws.db[l])
            if l > 0 and ws.masks[l] is not None:
                K.linear_activation_dropout_backward(ws.delta[l], weights[l], ws.Z[l - 1], f, ws.masks[l],
                                                     ws.delta[l - 1])
            elif l > 0:
                K.linear_activation_backward(ws.delta[l], weights[l], ws.Z[l - 1], f, ws.delta[l - 1])
            self.update_layer(l, weights[l], biases[l], ws.dW[l], ws.db[l], self.layer_state(l), lr, ws.n, step)

