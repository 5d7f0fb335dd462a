"""The cuda backend's training epoch: every minibatch step stays on the GPU.

``CudaRunner`` is the trainer's engine for ``backend="cuda"`` (same interface
as the runners in ``mlp.trainer``: ``epoch(perm, lr, step0)``,
``get_velocities``, ``set_velocities``). Per fit it copies the training data
to the device once and allocates every buffer once; per epoch it copies the
epoch's order of the examples (``perm``, n int64) to the device and reads back
two float64 numbers (the summed loss and the first diverging step, if any).
Nothing else crosses between host and device during an epoch: minibatches are
gathered on the device, dropout masks are drawn there, and the loss is summed
there (``kernels.cuda.softmax_cross_entropy_accumulate``).

When the data would take more than half of the free GPU memory (or
``max_resident_bytes``), it is streamed instead: the epoch is cut into chunks of
whole minibatches, each chunk's rows are gathered in epoch order on the host and
copied in one transfer, and the steps of the chunk gather from it as above.

The arithmetic is that of the other engines (``mlp.trainer``,
``mlp.epoch_cpu``), kernel for kernel, so a cuda fit matches a cpu or numpy fit
with the same seed to rounding: the same example order, and the same dropout
masks (stream ``step * n_layers + j`` for masked layer ``j`` of
``dropout_mask(seed, ...)``, bit-identical on every backend).

Kernel launches per minibatch step, for ``L`` weight matrices and a softmax
output (the fused kernels of ``kernels.cuda``):

* 1 gather (rows, labels, and the input-layer dropout mask, which is applied
  there and never stored: the backward pass does not need it);
* forward: 1 fused linear(+ReLU(+dropout)) per layer, plus 1 ``dropout_mask``
  per hidden layer with dropout;
* loss: 2 (per-block partials, then one block that also adds the epoch's sum);
* backward: per layer, 1 ``matmul_tn`` (dW) and 1 ``bias_grad`` (db), and for
  every layer but the first 1 fused back-propagation (delta W, ReLU', mask);
* update: 1 per layer (weights and biases together, momentum or not).

That is ``5L + 2`` plus one per masked hidden layer; for 784-256-10
(L = 2): 12 launches per step with plain SGD, momentum or L1/L2, and 13 with
dropout on the input and the hidden layer. An identity output gathers its
targets with a second launch (13 / 14).

``dropout_mode="per_batch"`` (the lecture's reduced network, gathered into
compact matrices) is not implemented here: ``CudaRunner`` raises ValueError.
"""
import numpy as np

from kernels import cuda as C

from .trainer import _Runner

# Share of the free device memory the resident training data may take; the rest
# is left to the buffers, the evaluation and whatever else runs on the GPU.
RESIDENT_SHARE = 0.5


def _free_device_memory():
    """Free bytes on the current device, or None where it cannot tell (numba's simulator says inf)."""
    return C.free_memory()


class _StepBuffers:
    """Every device buffer a step of ``rows`` examples needs, allocated once per fit."""

    def __init__(self, sizes, rows, dtype, keep, targets_shape):
        L = len(sizes) - 1
        self.rows = rows
        self.A = [C.empty((rows, sizes[l]), dtype) for l in range(L)]
        self.Z = [C.empty((rows, sizes[l + 1]), dtype) for l in range(L)]
        self.delta = [C.empty((rows, sizes[l + 1]), dtype) for l in range(L)]
        self.dW = [C.empty((sizes[l + 1], sizes[l]), dtype) for l in range(L)]
        self.db = [C.empty((sizes[l + 1],), dtype) for l in range(L)]
        # masks[0] stays None: the input mask is applied by the gather
        self.masks = [None] + [C.empty((rows, sizes[j]), dtype) if keep[j] < 1 else None
                               for j in range(1, L)]
        self.probs = C.empty((rows, sizes[-1]), dtype)
        self.targets = C.empty((rows,) + targets_shape, np.int64 if not targets_shape else dtype)
        self.loss = C.zeros((1,), np.float64)


class CudaRunner(_Runner):
    """The trainer's engine on the cuda backend; see the module docstring.

    Parameters
    ----------
    net : mlp.MLP on the "cuda" backend; its parameters are updated in place
        (``net.weights`` / ``net.biases`` are read at every epoch, so
        ``net.set_parameters`` between epochs is honoured).
    cfg : mlp.trainer.TrainConfig (momentum, seed and dropout_mode are used)
    X : (n, n_features) host array of the net's dtype
    y : (n,) int64 labels (softmax) or (n, n_outputs) targets (identity), host
    batch : int, 1 <= batch <= n
    l2, l1 : one float per weight matrix
    keep : one keep probability per non-output layer, input first
    max_resident_bytes : int or None
        Keep X and y on the device when they take at most this many bytes, else
        stream them in chunks. None: half of the free device memory.
    """

    def __init__(self, net, cfg, X, y, batch, l2, l1, keep, *, max_resident_bytes=None):
        if net.backend != "cuda":
            raise ValueError(f"CudaRunner trains networks on the 'cuda' backend; this one uses {net.backend!r}")
        if cfg.dropout_mode == "per_batch" and any(p < 1 for p in keep):
            raise ValueError("dropout_mode 'per_batch' (the reduced network) is not implemented on the "
                             "'cuda' backend; use dropout_mode='per_sample', or the 'cpu' or 'numpy' backend")
        # net, batch, l2, l1, keep, momentum, seed and the velocities (device arrays)
        super().__init__(net, cfg, X, y, batch, l2, l1, keep)
        self.is_softmax = net.output == "softmax"
        dtype = net.dtype
        n = X.shape[0]
        self.n = n
        sizes = net.layer_sizes
        targets_shape = () if self.is_softmax else (sizes[-1],)
        self.buffers = {rows: _StepBuffers(sizes, rows, dtype, self.keep, targets_shape)
                        for rows in {batch, n % batch} - {0}}
        self.epoch_stats = C.zeros((2,), np.float64)
        self._stats_start = np.array([0.0, -1.0])

        data_bytes = X.nbytes + y.nbytes
        if max_resident_bytes is None:
            free = _free_device_memory()
            max_resident_bytes = data_bytes if free is None else int(RESIDENT_SHARE * free)
        self.resident = data_bytes <= max_resident_bytes
        if self.resident:
            self.chunk_rows = n
            self.X_dev = C.to_device(X)
            self.y_dev = C.to_device(y)
            self.order = C.empty((n,), np.int64)
        else:
            row_bytes = max(1, data_bytes // n)
            steps = max(1, max_resident_bytes // (row_bytes * batch))
            self.chunk_rows = min(n, steps * batch)
            self.X_host, self.y_host = X, y
            self.X_chunk = np.empty((self.chunk_rows,) + X.shape[1:], X.dtype)
            self.y_chunk = np.empty((self.chunk_rows,) + y.shape[1:], y.dtype)
            self.X_dev = C.empty(self.X_chunk.shape, X.dtype)
            self.y_dev = C.empty(self.y_chunk.shape, y.dtype)
            # a chunk holds its rows in epoch order already: its steps gather 0, 1, 2...
            self.order = C.to_device(np.arange(self.chunk_rows, dtype=np.int64))

    # ------------------------------------------------------------ velocities
    def set_velocities(self, velocities):
        """Copy host velocities (vel_w, vel_b) to the device; ignored when momentum is 0."""
        if self.vel_w is None:
            return
        for dst, src in zip(self.vel_w + self.vel_b, list(velocities[0]) + list(velocities[1])):
            dst.copy_to_device(np.ascontiguousarray(src, dtype=self.net.dtype))

    # ------------------------------------------------------------ training
    def epoch(self, perm, lr, step0):
        """One epoch of minibatch SGD in the order ``perm``; see ``mlp.trainer``'s runners.

        Returns
        -------
        (sum over the steps of the minibatch data loss times its rows, steps done, diverged)
        After a non-finite loss the sum stops and ``steps done`` is that step's
        number in the epoch (the remaining queued steps still run: the trainer
        restores the parameters of the previous epoch).
        """
        n, batch = self.n, self.batch
        self.epoch_stats.copy_to_device(self._stats_start)
        perm = np.ascontiguousarray(perm, dtype=np.int64)
        for chunk_start in range(0, n, self.chunk_rows):
            chunk_stop = min(n, chunk_start + self.chunk_rows)
            if self.resident:
                self.order.copy_to_device(perm)
            else:
                rows = chunk_stop - chunk_start
                np.take(self.X_host, perm[chunk_start:chunk_stop], axis=0, out=self.X_chunk[:rows])
                np.take(self.y_host, perm[chunk_start:chunk_stop], axis=0, out=self.y_chunk[:rows])
                self.X_dev.copy_to_device(self.X_chunk)
                self.y_dev.copy_to_device(self.y_chunk)
            offset = 0 if self.resident else chunk_start
            for start in range(chunk_start, chunk_stop, batch):
                nb = min(batch, n - start)
                self._step(self.buffers[nb], start - offset, step0 + start // batch, start // batch, lr)
        total, first_bad = C.to_host(self.epoch_stats)
        steps = -(-n // batch)
        if first_bad >= 0:
            return float(total), int(first_bad), True
        return float(total), steps, False

    def _step(self, buf, start, step, step_in_epoch, lr):
        """Queue one minibatch step: rows ``order[start:start + buf.rows]`` of the resident data."""
        net = self.net
        weights, biases = net.weights, net.biases
        L = len(weights)
        keep, seed = self.keep, self.seed
        if self.is_softmax:
            C.gather_minibatch(self.X_dev, self.order, start, buf.A[0], self.y_dev, buf.targets,
                               seed=seed, stream=step * L, keep=keep[0])
        else:
            C.gather_minibatch(self.X_dev, self.order, start, buf.A[0], seed=seed, stream=step * L, keep=keep[0])
            C.gather_minibatch(self.y_dev, self.order, start, buf.targets)
        for l in range(L):
            if l == L - 1:
                C.linear_forward(buf.A[l], weights[l], biases[l], buf.Z[l])
            elif buf.masks[l + 1] is not None:
                C.dropout_mask(seed, step * L + l + 1, keep[l + 1], buf.masks[l + 1])
                C.linear_relu_dropout_forward(buf.A[l], weights[l], biases[l], buf.masks[l + 1],
                                              buf.Z[l], buf.A[l + 1])
            else:
                C.linear_relu_forward(buf.A[l], weights[l], biases[l], buf.Z[l], buf.A[l + 1])
        if self.is_softmax:
            C.softmax_cross_entropy_accumulate(buf.Z[-1], buf.targets, buf.probs, buf.delta[-1], buf.loss,
                                               self.epoch_stats, step_in_epoch)
        else:
            C.squared_error_accumulate(buf.Z[-1], buf.targets, buf.delta[-1], buf.loss,
                                       self.epoch_stats, step_in_epoch)
        # last layer first: W[l] is updated only after delta[l] has gone back through it
        for l in range(L - 1, -1, -1):
            C.matmul_tn(buf.delta[l], buf.A[l], buf.dW[l])
            C.bias_grad(buf.delta[l], buf.db[l])
            if l > 0:
                if buf.masks[l] is not None:
                    C.linear_relu_dropout_backward(buf.delta[l], weights[l], buf.Z[l - 1], buf.masks[l],
                                                   buf.delta[l - 1])
                else:
                    C.linear_relu_backward(buf.delta[l], weights[l], buf.Z[l - 1], buf.delta[l - 1])
            if self.vel_w is None:
                C.layer_sgd_update(weights[l], buf.dW[l], biases[l], buf.db[l], lr, self.l2[l], self.l1[l])
            else:
                C.layer_sgd_momentum_update(weights[l], buf.dW[l], self.vel_w[l], biases[l], buf.db[l],
                                            self.vel_b[l], lr, self.momentum, self.l2[l], self.l1[l])
