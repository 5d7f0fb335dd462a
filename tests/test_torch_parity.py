"""The whole forward and backward pass against PyTorch autograd (CPU, float64).

torch is a test-only dependency (the `test` extra installs the CPU build); these
tests run in CI. Tolerance: float64, relative to each tensor's magnitude, 1e-10.
"""
import numpy as np
import pytest
import torch

from helpers import random_batch, random_masks, random_net

TOLERANCE = 1e-10


TORCH_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "logistic": torch.sigmoid, "identity": lambda z: z}


def torch_loss_and_gradients(net, X, Y, masks, l2, l1, sample_weight=None):
    weights, biases = net.get_parameters()
    Ws = [torch.tensor(W, requires_grad=True) for W in weights]
    bs = [torch.tensor(b, requires_grad=True) for b in biases]
    a = torch.tensor(X)
    L = len(Ws)
    for l in range(L):
        if masks is not None:
            a = a * torch.tensor(masks[l])
        z = a @ Ws[l].T + bs[l]
        a = TORCH_ACTIVATIONS[net.activation](z) if l < L - 1 else z
    Y = torch.tensor(Y)
    if net.output == "softmax":
        rows = torch.nn.functional.cross_entropy(a, Y, reduction="none")
        out = torch.softmax(a, dim=1)
    elif net.output == "logistic":
        rows = torch.nn.functional.binary_cross_entropy_with_logits(a, Y, reduction="none").sum(dim=1)
        out = torch.sigmoid(a)
    elif net.output == "exp":
        # half the Poisson deviance: y log(y / exp(z)) - y + exp(z), y log y = 0 at y = 0
        rows = (torch.xlogy(Y, Y) - Y * a - Y + torch.exp(a)).sum(dim=1)
        out = torch.exp(a)
    else:
        rows = 0.5 * ((a - Y) ** 2).sum(dim=1)
        out = a
    w = torch.ones(X.shape[0], dtype=torch.float64) if sample_weight is None else torch.tensor(sample_weight)
    loss = (w * rows).sum() / w.sum()
    for l in range(L):
        loss = loss + 0.5 * l2[l] * (Ws[l] ** 2).sum() + l1[l] * Ws[l].abs().sum()
    loss.backward()
    return out.detach().numpy(), loss.item(), [(W.grad.numpy(), b.grad.numpy()) for W, b in zip(Ws, bs)]


def _rel(got, want):
    return np.abs(got - want).max() / max(np.abs(want).max(), 1e-300)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "dropout-masks"])
@pytest.mark.parametrize("output", ["softmax", "identity"])
@pytest.mark.parametrize("sizes", [[20, 16, 5], [9, 12, 8, 4], [3, 1, 2]])
def test_forward_loss_and_gradients_match_torch(sizes, output, masked, backend):
    net = random_net(sizes, output, backend, seed=sum(sizes))
    X, Y = random_batch(net, 11, seed=1)
    masks = random_masks(net, 11, seed=2) if masked else None
    l2 = [0.05 * (j + 1) for j in range(net.n_layers)]
    l1 = [0.01] * net.n_layers
    out, loss, grads = torch_loss_and_gradients(net, X, Y, masks, l2, l1)
    assert _rel(net.forward(X, masks=masks), out) <= TOLERANCE
    got_loss, got_grads = net.loss_and_gradients(X, Y, l2=l2, l1=l1, masks=masks)
    assert abs(got_loss - loss) / abs(loss) <= TOLERANCE
    for l, ((dW, db), (tW, tb)) in enumerate(zip(got_grads, grads)):
        assert _rel(dW, tW) <= TOLERANCE, f"dW[{l}]"
        assert _rel(db, tb) <= TOLERANCE, f"db[{l}]"


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
@pytest.mark.parametrize("output", ["softmax", "identity", "logistic", "exp"])
def test_every_activation_and_output_matches_torch(output, activation, backend):
    """Two hidden layers, dropout masks, L1 + L2, and sample weights (zeros among them) on odd rows."""
    net = random_net([9, 12, 8, 4], output, backend, seed=7, activation=activation)
    X, Y = random_batch(net, 11, seed=1)
    masks = random_masks(net, 11, seed=2)
    weights = np.random.default_rng(3).uniform(0, 2, 11)
    weights[::4] = 0.0
    l2, l1 = [0.05, 0.1, 0.02], [0.01] * 3
    for sample_weight in (None, weights):
        out, loss, grads = torch_loss_and_gradients(net, X, Y, masks, l2, l1, sample_weight)
        assert _rel(net.forward(X, masks=masks), out) <= TOLERANCE
        got_loss, got_grads = net.loss_and_gradients(X, Y, l2=l2, l1=l1, masks=masks, sample_weight=sample_weight)
        assert abs(got_loss - loss) / abs(loss) <= TOLERANCE
        for l, ((dW, db), (tW, tb)) in enumerate(zip(got_grads, grads)):
            assert _rel(dW, tW) <= TOLERANCE, f"dW[{l}]"
            assert _rel(db, tb) <= TOLERANCE, f"db[{l}]"
