"""The full network on many rows, a chunk at a time: outputs, and loss and accuracy against targets.

Evaluation never needs all rows at once: chunks of ``EVAL_CHUNK`` rows are big
enough for BLAS and small enough for cache and memory. The buffers of each
chunk size are kept in a dict the caller may pass again, so a repeated
evaluation (every epoch's validation) allocates nothing.
"""
import numpy as np

from kernels.codes import activation_code

from .propagation import chunked_workspaces, forward, output_activations, output_loss

# Rows per forward pass when evaluating: big enough for BLAS, small enough for cache and memory.
EVAL_CHUNK = 2048


def evaluate(net, X, Y, chunk=EVAL_CHUNK, workspaces=None):
    """(mean data loss, accuracy or None) of the full network on (X, Y), in chunks of ``chunk`` rows.

    X (n, n_features) checked array of the net's dtype; Y int64 labels (n,) or
    targets (n, n_outputs). Accuracy is None but for a softmax output.
    ``workspaces``: a dict kept between calls (rows -> Workspace), so that
    repeated evaluations allocate nothing.
    """
    K = net.kernels
    n = X.shape[0]
    total = 0.0
    correct = 0
    if workspaces is None:
        workspaces = {}
    for start, stop, ws in chunked_workspaces(K, net.layer_sizes, n, net.dtype, chunk, workspaces):
        forward(K, net.weights, net.biases, K.to_device(X[start:stop]), ws, activation=activation_code(net.activation))
        output_loss(K, net.output, ws, K.to_device(Y[start:stop]))
        total += float(K.to_host(ws.loss)[0]) * (stop - start)
        if net.output == "softmax":
            correct += int((K.to_host(ws.Z[-1]).argmax(axis=1) == Y[start:stop]).sum())
    accuracy = correct / n if net.output == "softmax" else None
    return total / n, accuracy


def outputs_in_chunks(net, X, masks_for_chunk=None, chunk=EVAL_CHUNK):
    """Output activations (n, n_outputs) on the host, computed ``chunk`` rows at a time.

    X (n, n_features) checked array of the net's dtype. ``masks_for_chunk(rows)``
    returns the masks for a chunk of ``rows`` rows, or None.
    """
    K = net.kernels
    n = X.shape[0]
    out = np.empty((n, net.n_outputs), net.dtype)
    for start, stop, ws in chunked_workspaces(K, net.layer_sizes, n, net.dtype, chunk, {}):
        masks = None if masks_for_chunk is None else masks_for_chunk(stop - start)
        forward(K, net.weights, net.biases, K.to_device(X[start:stop]), ws, masks,
                activation=activation_code(net.activation))
        out[start:stop] = output_activations(K, net.output, ws)
    return out


def mc_dropout_average(net, X, keep, n_samples, seed):
    """The mean softmax output (n, n_classes) of ``n_samples`` reduced networks (``MLP.mc_dropout_proba``).

    X checked (n, n_features); keep: one checked keep probability per non-output layer.
    Network k removes unit j of layer i where stream ``k * n_layers + i`` of
    ``K.dropout_mask(seed, ...)`` is 0: one mask vector per layer, for every row.
    """
    K = net.kernels
    total = None
    for k in range(n_samples):
        vectors = []
        for i, p in enumerate(keep):
            if p < 1:
                m = K.empty((net.layer_sizes[i],), net.dtype)
                K.dropout_mask(seed, k * net.n_layers + i, p, m)
                vectors.append(K.to_host(m))
            else:
                vectors.append(None)

        def masks_for_chunk(rows, vectors=vectors):
            return [None if m is None else K.to_device(np.ascontiguousarray(np.broadcast_to(m, (rows, m.size))))
                    for m in vectors]

        probs = outputs_in_chunks(net, X, masks_for_chunk).astype(np.float64)
        total = probs if total is None else total + probs
    return (total / n_samples).astype(net.dtype)
