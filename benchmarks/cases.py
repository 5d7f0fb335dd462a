"""The benchmark registry: which kernel runs at which shapes, in which variants, checked how.

Everything is derived from the library's own registry and spec: ``kernels.spec``
declares each kernel's arguments, which it writes, its FLOPs per element, the
length of its sums and the site of a training step that runs it;
``kernels.available_backends`` and each backend's ``ALTERNATIVES`` give the
variants. This file only adds what the library cannot know: the networks and
batch sizes of a training run (``kernel_cases`` binds the spec's symbols to
their shapes at each site), the scalars that run uses, and a PyTorch peer
where PyTorch has an equivalent op. Every kernel of every benchmarked backend
is either given shapes by ``kernel_cases`` or listed in ``NOT_TIMED`` with the
reason, and ``bench_kernels.py`` fails when one is neither, so a new kernel
cannot slip past the suite.

``report.py`` imports the constants below too, so the tables and the targets
are computed from the same definitions the benchmarks ran with.
"""
import dataclasses
import functools

import numpy as np

import kernels
from kernels import spec
from kernels.codes import LOGISTIC, RELU, TANH

DTYPE = np.float32

# The layer sizes of the two networks the lecture trains; a kernel is timed at
# every distinct shape a training step of either gives it.
NETS = {
    "784-256-10": (784, 256, 10),
    "784-1024-1024-10": (784, 1024, 1024, 10),
}
# The wide net's NumPy products at batch 1024 are the slowest cases of the
# suite, so it runs at three batch sizes spanning the range, the small net at all five.
BATCHES = {
    "784-256-10": (32, 64, 128, 256, 1024),
    "784-1024-1024-10": (32, 128, 1024),
}
KEEP_INPUT, KEEP_HIDDEN = 0.8, 0.5
LEARNING_RATE, MOMENTUM = 0.05, 0.9
# Regularisation strengths for the kernels that exist only to apply them
# (with zeros they would time a no-op); the update kernels run with zeros, as
# the plain-SGD epoch benchmark does.
L2, L1 = 1e-4, 1e-5

MATMULS = ("matmul_nt", "matmul_tn", "matmul_nn")
# The kernels that replace a NumPy expression of several passes (temporaries,
# a comparison array, a second sweep) by one loop: the ">= 3x NumPy" target
# applies to these. apply_mask, bias_add and bias_grad are one NumPy call each,
# already a single pass, so there is nothing to fuse.
FUSED_ELEMENTWISE = (
    "bias_activation_forward", "bias_activation_dropout_forward",
    "softmax", "softmax_cross_entropy", "squared_error", "sigmoid_cross_entropy", "poisson_loss",
    "activation_backward", "activation_dropout_backward",
    "add_regularization_grad", "regularization_loss",
    "sgd_update", "sgd_momentum_update", "sgd_nesterov_update", "adam_update", "dropout_mask",
)
FUSED_TARGET_NET, FUSED_TARGET_BATCH, FUSED_TARGET_SPEEDUP = "784-256-10", 128, 3.0

NOT_TIMED = {
    "to_device": "array management: a no-op on the host backends; a GPU epoch's transfers are in the epoch benchmark",
    "to_host": "array management, as to_device",
    "empty": "allocation, done once per Workspace, outside the training loop",
    "zeros": "allocation, as empty",
    "synchronize": "a no-op on the host backends; the cuda variants call it inside every timed call",
}
_GROUP_NOT_TIMED = {
    "fused": "a product and an elementwise kernel in one cuda launch (benchmarks/gpu_check.sh times it against "
             "its chain); on the host backends it is that chain of standard kernels, each timed here",
    "training": "the standard kernels of its chain, timed here, plus a gather or a scalar update; "
                "timed as part of the epoch benchmarks (bench_training.py)",
    "reduced": "the reduced network's kernels, timed as part of the per_batch dropout epoch (bench_training.py)",
}
NOT_TIMED.update({name: reason for group, reason in _GROUP_NOT_TIMED.items() for name in spec.names(group)})

# The scalars of a training run where they differ from the spec's test values.
SCALARS = {
    "add_regularization_grad": {"l2": L2, "l1": L1},
    "regularization_loss": {"l2": L2, "l1": L1},
    "sgd_update": {"lr": LEARNING_RATE, "l2": 0.0, "l1": 0.0},
    "sgd_momentum_update": {"lr": LEARNING_RATE, "momentum": MOMENTUM, "l2": 0.0, "l1": 0.0},
    "sgd_nesterov_update": {"lr": LEARNING_RATE, "momentum": MOMENTUM, "l2": 0.0, "l1": 0.0},
    "adam_update": {"step_size": 1e-3, "l2": 0.0, "l1": 0.0},
    "dropout_mask": {"seed": 0, "stream": 1},
}
# Fills replaced for timing: unit-scale logits, as a network's. The spec's 40x logits
# (there to catch a missing max shift) would make many exponentials denormal, which
# times the CPU's slow path instead of the kernel.
FILLS = {"logits": "normal"}


# ------------------------------------------------------------------ cases
@dataclasses.dataclass(frozen=True)
class Case:
    """One kernel at one shape: the spec's symbols bound to sizes, and the scalars of the run."""
    kernel: str
    net: str
    batch: object  # int, or None for the parameter kernels, whose shapes do not depend on it
    where: str  # the layer the shape comes from, e.g. "hidden" or "W1"
    sizes: dict
    scalars: dict = dataclasses.field(default_factory=dict)

    @property
    def spec(self):
        return spec.SPECS[self.kernel]

    @property
    def bound(self):
        return spec.bind(self.spec, self.sizes)

    @property
    def shapes(self):
        """The array arguments' shapes, in order."""
        return [spec.shape_of(a, self.bound) for a in self.spec.args if isinstance(a, spec.Array)]

    @property
    def outputs(self):
        """Positions of the arguments the kernel writes."""
        return self.spec.writes

    @property
    def flops(self):
        if self.spec.flops is None:
            return None
        return float(self.spec.flops * spec.element_count(self.spec.elements, self.bound))

    @property
    def reduce_len(self):
        """Length of the sums inside one output element (sets the tolerance)."""
        return spec.element_count(self.spec.reduces, self.bound)

    @property
    def run_scalars(self):
        """The scalars this case sets beyond the spec's: the training run's, then its site's."""
        return {**SCALARS.get(self.kernel, {}), **self.scalars}

    def scalar(self, name):
        """The value the scalar argument ``name`` takes in this case."""
        (arg,) = (a for a in self.spec.args if a.name == name)
        return self.run_scalars.get(name, arg.value)

    @property
    def shape(self):
        """The array arguments' shapes, e.g. ``128x784,256x784,128x256``."""
        return ",".join("x".join(map(str, s)) for s in self.shapes)

    @property
    def id(self):
        return f"{self.kernel}-{self.shape}"

    @property
    def group(self):
        batch = "" if self.batch is None else f" n={self.batch}"
        return f"{self.kernel} {self.shape} ({self.net} {self.where}{batch})"

    def build(self, seed=0):
        """Fresh host arguments: arrays filled from ``seed`` (outputs poisoned with NaN), scalars of the run."""
        rng = np.random.default_rng(seed)
        return tuple(spec.arguments(self.spec, self.sizes, DTYPE, rng, self.run_scalars, FILLS))


def site_bindings(sizes, n):
    """{site of ``kernels.spec.SITES``: [(where, symbol sizes, scalars)]} for a training step of ``sizes`` at batch n.

    The "weights" site does not depend on the batch.
    """
    L = len(sizes) - 1
    hidden = sorted(set(sizes[1:-1]))
    layer = [{"n": n, "k": sizes[l], "m": sizes[l + 1]} for l in range(L)]
    return {
        "forward": [(f"forward W{l}", layer[l], {}) for l in range(L)],
        "weight_gradient": [(f"dW{l}", layer[l], {}) for l in range(L)],
        "backprop": [(f"delta W{l}", layer[l], {}) for l in range(1, L)],
        "input": [("input", {"n": n, "d": sizes[0]}, {})],
        "hidden": [("hidden", {"n": n, "d": d}, {}) for d in hidden],
        "output": [("output", {"n": n, "d": sizes[-1]}, {})],
        "biases": [("hidden" if d in hidden else "output", {"n": n, "d": d}, {}) for d in sorted(set(sizes[1:]))],
        "weights": [(f"W{l}", {"P": (sizes[l + 1], sizes[l])}, {}) for l in range(L)],
        "masks": [("input", {"shape": (n, sizes[0])}, {"keep": KEEP_INPUT})]
                 + [("hidden", {"shape": (n, d)}, {"keep": KEEP_HIDDEN}) for d in hidden],
    }


def kernel_cases():
    """Every (kernel, shape) to time, each once: the first net and batch that give the shape name it."""
    timed = [k for k in spec.SPECS.values() if k.site is not None]
    seen, cases = set(), []
    for net, sizes in NETS.items():
        generated = [Case(k.name, net, None, where, bound, scalars)
                     for k in timed if k.site == "weights"
                     for where, bound, scalars in site_bindings(sizes, None)["weights"]]
        for n in BATCHES[net]:
            sites = site_bindings(sizes, n)
            generated += [Case(k.name, net, n, where, bound, scalars)
                          for k in timed if k.site != "weights" for where, bound, scalars in sites[k.site]]
        for case in generated:
            if case.id not in seen:
                seen.add(case.id)
                cases.append(case)
    return cases


TIMED_KERNELS = tuple(dict.fromkeys(c.kernel for c in kernel_cases()))


# ------------------------------------------------------------------ variants
@dataclasses.dataclass(frozen=True)
class Variant:
    """Who computes a kernel: a backend's standard kernel, one of its ALTERNATIVES, or a peer library."""
    name: str  # "cpu", "cpu:matmul_nt_blocked", "torch"
    backend: object  # backend name, or None for a peer library
    function: str  # the backend function, or the peer's name


def benchmark_backends():
    """The backends timed here: the registry's, without numba's CUDA simulator (it is for tests, not speed)."""
    return kernels.available_backends(include_simulator=False)


def variants(kernel):
    """Every backend's implementation of ``kernel`` (standard, then alternatives), then PyTorch's if any."""
    found = []
    for backend in benchmark_backends():
        K = kernels.get_backend(backend)
        found.append(Variant(backend, backend, kernel))
        for alternative, standard in getattr(K, "ALTERNATIVES", {}).items():
            if standard == kernel:
                found.append(Variant(f"{backend}:{alternative}", backend, alternative))
    if kernel in torch_peers():
        found.append(Variant("torch", None, "torch"))
    return found


# ------------------------------------------------------------------ PyTorch peers
# Each takes the case's arguments as CPU tensors (sharing memory with the host
# arrays) and returns a zero-argument callable doing the kernel's job with
# PyTorch's own ops (out= and in-place forms, so no allocation is timed where
# PyTorch can avoid one). Built on first use so that report.py, which imports
# this file, does not need torch.
@functools.cache
def torch_peers():
    """The PyTorch peers by kernel name."""
    import torch
    import torch.nn.functional as F

    def matmul_nt(A, B, out):
        return lambda: torch.mm(A, B.t(), out=out)

    def matmul_tn(A, B, out):
        return lambda: torch.mm(A.t(), B, out=out)

    def matmul_nn(A, B, out):
        return lambda: torch.mm(A, B, out=out)

    def matmul_tn_update(A, B, alpha, beta, out):
        return lambda: out.addmm_(A.t(), B, beta=beta, alpha=alpha)

    def apply_mask(X, mask, out):
        return lambda: torch.mul(X, mask, out=out)

    def bias_add(Z, b):
        return lambda: Z.add_(b)

    def activate(Z, activation, H):
        if activation == RELU:
            torch.clamp(Z, min=0, out=H)
        elif activation == TANH:
            torch.tanh(Z, out=H)
        elif activation == LOGISTIC:
            torch.sigmoid(Z, out=H)
        else:
            H.copy_(Z)

    def derivative_times(dH, Z, activation, dZ):
        if activation == RELU:
            torch.ops.aten.threshold_backward.grad_input(dH, Z, 0, grad_input=dZ)
        elif activation == TANH:
            torch.mul(dH, 1 - torch.tanh(Z) ** 2, out=dZ)
        elif activation == LOGISTIC:
            s = torch.sigmoid(Z)
            torch.mul(dH, s * (1 - s), out=dZ)
        else:
            dZ.copy_(dH)

    def bias_activation_forward(Z, b, activation, H):
        def run():
            Z.add_(b)
            activate(Z, activation, H)
        return run

    def bias_activation_dropout_forward(Z, b, activation, mask, H):
        def run():
            Z.add_(b)
            activate(Z, activation, H)
            H.mul_(mask)
        return run

    def softmax(logits, probs):
        return lambda: torch.softmax(logits, 1, out=probs)

    def softmax_cross_entropy(logits, labels, probs, dlogits, loss_out):
        n = logits.shape[0]
        rows = labels.view(-1, 1)
        minus_one = torch.full((n, 1), -1.0, dtype=logits.dtype)

        def run():
            log_probs = torch.log_softmax(logits, 1)
            loss_out[0] = F.nll_loss(log_probs, labels)
            torch.exp(log_probs, out=probs)
            dlogits.copy_(probs).scatter_add_(1, rows, minus_one).div_(n)
        return run

    def squared_error(outputs, targets, doutputs, loss_out):
        n = outputs.shape[0]

        def run():
            torch.sub(outputs, targets, out=doutputs)
            loss_out[0] = 0.5 * torch.sum(torch.square(doutputs), dtype=torch.float64) / n
            doutputs.div_(n)
        return run

    def activation_backward(dH, Z, activation, dZ):
        return lambda: derivative_times(dH, Z, activation, dZ)

    def activation_dropout_backward(dH, Z, activation, mask, dZ):
        def run():
            derivative_times(dH, Z, activation, dZ)
            dZ.mul_(mask)
        return run

    def bias_grad(dZ, db):
        return lambda: torch.sum(dZ, 0, out=db)

    def add_regularization_grad(W, dW, l2, l1):
        return lambda: dW.add_(W, alpha=l2).add_(torch.sign(W), alpha=l1)

    def regularization_loss(W, l2, l1):
        def run():
            W64 = W.double()
            return float(0.5 * l2 * torch.dot(W64.view(-1), W64.view(-1)) + l1 * W64.abs().sum())
        return run

    def sgd_update(P, dP, lr, l2, l1):
        assert l2 == 0 and l1 == 0, "the peer is plain SGD, torch.optim.SGD's update"
        return lambda: P.add_(dP, alpha=-lr)

    def sgd_momentum_update(P, dP, V, lr, momentum, l2, l1):
        assert l2 == 0 and l1 == 0, "the peer is plain momentum SGD"

        def run():
            V.mul_(momentum).add_(dP, alpha=-lr)
            P.add_(V)
        return run

    def dropout_mask(seed, stream, keep, out):
        # torch.nn.Dropout's mask: the same distribution from PyTorch's own generator
        generator = torch.Generator().manual_seed(seed * 1_000_003 + stream)
        return lambda: out.bernoulli_(keep, generator=generator).mul_(1 / keep)

    return {name: f for name, f in locals().items() if name in kernels.KERNELS}
