"""The numpy backend's engine: the reference training loop, one Python iteration per minibatch.

Written to be read beside the lecture: each step gathers the minibatch, draws
the dropout masks, runs ``mlp.propagation``'s forward and backward passes on
the reference kernels and updates each layer. The cpu and cuda engines compute
exactly this, step for step, faster; their tests compare against it.

``dropout_mode="per_batch"`` (the lecture's literal reduced network) gathers
the kept rows and columns of every weight matrix into compact matrices with
NumPy indexing, trains those, and scatters them back, allocating as it goes:
the reference for the cpu engine's compiled version.
"""
import math

import numpy as np

from ..propagation import LOSS_KERNELS, Workspace, backward, forward, output_loss, weight_rows
from .base import Engine, EpochResult


class NumpyEngine(Engine):
    """One Python iteration per minibatch on the numpy backend's kernels; see the module docstring.

    Buffers are made once per fit: a Workspace for full minibatches and a
    second for the last, shorter one (when n % batch_size != 0).
    """

    backend = "numpy"
    dropout_modes = ("per_sample", "per_batch")
    weighted = True

    def __init__(self, net, config, X, y, batch, l2, l1, keep, sample_weight=None):
        super().__init__(net, config, X, y, batch, l2, l1, keep, sample_weight)
        masked = [j for j in range(net.n_layers) if keep[j] < 1]
        self.workspaces = {rows: Workspace(self.K, net.layer_sizes, rows, net.dtype, masked, targets_like=y)
                           for rows in {batch, X.shape[0] % batch} - {0}}

    def run_epoch(self, order, learning_rate, first_step):
        if self.reduced:
            return self._reduced_epoch(order, learning_rate, first_step)
        return self._epoch(order, learning_rate, first_step)

    # ------------------------------------------------------------ the full network
    def _epoch(self, order, lr, first_step):
        net, K = self.net, self.K
        n, L = self.X.shape[0], net.n_layers
        total = 0.0
        for s, start in enumerate(range(0, n, self.batch)):
            idx = order[start:start + self.batch]
            ws = self.workspaces[len(idx)]
            np.take(self.X, idx, axis=0, out=ws.A[0])
            np.take(self.y, idx, axis=0, out=ws.targets)
            step = first_step + s
            for j, m in enumerate(ws.masks):
                if m is not None:
                    K.dropout_mask(self.seed, step * L + j, self.keep[j], m)
            inputs = forward(K, net.weights, net.biases, ws.A[0], ws, ws.masks, activation=self.activation)
            output_loss(K, net.output, ws, ws.targets)
            loss, weight = self._weighted(ws.Z[-1], ws.targets, ws.delta[-1], idx, float(ws.loss[0]))
            if not math.isfinite(loss):
                return EpochResult(total, s, True)
            total += loss * len(idx)
            backward(K, net.weights, inputs, ws, ws.masks, activation=self.activation)
            for l in range(L):
                self.update_layer(l, net.weights[l], net.biases[l], ws.dW[l], ws.db[l], self.layer_state(l), lr,
                                  weight, step)
        return EpochResult(total, -(-n // self.batch), False)

    # ------------------------------------------------------------ the reduced network (per_batch)
    def _kept_units(self, step):
        """The kept unit numbers of every layer (input first, outputs all kept) under this step's masks."""
        net, K = self.net, self.K
        sizes, L = net.layer_sizes, net.n_layers
        kept = []
        for j in range(L):
            if self.keep[j] < 1:
                mask = np.empty(sizes[j], net.dtype)
                K.dropout_mask(self.seed, step * L + j, self.keep[j], mask)
                kept.append(np.flatnonzero(mask))
            else:
                kept.append(np.arange(sizes[j]))
        kept.append(np.arange(sizes[L]))
        return kept

    def _reduced_epoch(self, order, lr, first_step):
        net, K = self.net, self.K
        dtype = net.dtype
        n, L = self.X.shape[0], net.n_layers
        scales = [dtype(1.0 / p) for p in self.keep]
        total = 0.0
        for s, start in enumerate(range(0, n, self.batch)):
            idx = order[start:start + self.batch]
            kept = self._kept_units(first_step + s)
            # forward on the compact parameters of the reduced network
            inputs, Zs, compact = [self.X[idx][:, kept[0]] * scales[0]], [], []
            for l in range(L):
                rows = np.ix_(kept[l + 1], kept[l])
                Wc = np.ascontiguousarray(net.weights[l][rows])
                bc = np.ascontiguousarray(net.biases[l][kept[l + 1]])
                Z = np.empty((len(idx), Wc.shape[0]), dtype)
                K.matmul_nt(inputs[l], Wc, Z)
                if l == L - 1:
                    K.bias_add(Z, bc)
                else:
                    H = np.empty_like(Z)
                    K.bias_activation_scale_forward(Z, bc, self.activation, scales[l + 1], H)
                    inputs.append(H)
                Zs.append(Z)
                compact.append((rows, Wc, bc))
            delta, loss = self._output_delta(Zs[-1], self.y[idx])
            loss, weight = self._weighted(Zs[-1], self.y[idx], delta, idx, loss)
            if not math.isfinite(loss):
                return EpochResult(total, s, True)
            total += loss * len(idx)
            # backward, update and scatter back, last layer first
            for l in range(L - 1, -1, -1):
                rows, Wc, bc = compact[l]
                dW, db = np.empty_like(Wc), np.empty_like(bc)
                K.matmul_tn(delta, inputs[l], dW)
                K.bias_grad(delta, db)
                if l > 0:
                    previous = np.empty_like(Zs[l - 1])
                    K.matmul_nn(delta, Wc, previous)
                    K.activation_scale_backward(previous, Zs[l - 1], self.activation, scales[l], previous)
                    delta = previous
                self._update_compact(l, rows, kept[l + 1], Wc, bc, dW, db, lr, weight, first_step + s)
        return EpochResult(total, -(-n // self.batch), False)

    def _output_delta(self, logits, targets):
        """(dloss/dlogits, loss) of one minibatch of the reduced network."""
        K = self.K
        delta = np.empty_like(logits)
        loss = np.zeros(1, np.float64)
        output = self.net.output
        if output == "identity":
            K.squared_error(logits, targets, delta, loss)
        else:
            getattr(K, LOSS_KERNELS[output])(logits, targets, np.empty_like(logits), delta, loss)
        return delta, float(loss[0])

    def _weighted(self, logits, targets, delta, idx, loss):
        """(the minibatch's loss, its weight): ``weight_rows`` applied when there are sample weights."""
        if self.sample_weight is None or not math.isfinite(loss):
            return loss, len(idx)
        weights = self.sample_weight[idx]
        return weight_rows(self.net.output, logits, targets, weights, delta), float(weights.sum())

    def _update_compact(self, l, rows, kept_out, Wc, bc, dW, db, lr, weight, step):
        """Update the compact parameters (and optimizer state) of layer l, then scatter them back."""
        net = self.net
        state = {key: np.ascontiguousarray(arrays[l][rows if key.endswith("W") else kept_out])
                 for key, arrays in self.state.items()}
        self.update_layer(l, Wc, bc, dW, db, state, lr, weight, step)
        for key, compact in state.items():
            self.state[key][l][rows if key.endswith("W") else kept_out] = compact
        net.weights[l][rows] = Wc
        net.biases[l][kept_out] = bc
