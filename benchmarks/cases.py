"""The benchmark registry: which kernel runs at which shapes, in which variants, checked how.

Everything is derived from the library's own registry (``kernels.KERNELS``,
``kernels.available_backends`` and each backend's ``ALTERNATIVES``); this file
only adds what the library cannot know: the shapes a training run gives each
kernel, a PyTorch peer where PyTorch has an equivalent op, and a FLOP count.
Every standard kernel is either given shapes by ``kernel_cases`` or listed in
``NOT_TIMED`` with the reason, and ``bench_kernels.py`` fails when one is
neither, so a new kernel cannot slip past the suite.

``report.py`` imports the constants below too, so the tables and the targets
are computed from the same definitions the benchmarks ran with.
"""
import dataclasses
import functools

import numpy as np

import kernels

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
    "bias_relu_forward", "bias_relu_dropout_forward",
    "softmax", "softmax_cross_entropy", "squared_error",
    "relu_backward", "relu_dropout_backward",
    "add_regularization_grad", "regularization_loss",
    "sgd_update", "sgd_momentum_update", "dropout_mask",
)
FUSED_TARGET_NET, FUSED_TARGET_BATCH, FUSED_TARGET_SPEEDUP = "784-256-10", 128, 3.0

NOT_TIMED = {
    "to_device": "array management: a no-op on the host backends; a GPU epoch's transfers are in the epoch benchmark",
    "to_host": "array management, as to_device",
    "empty": "allocation, done once per Workspace, outside the training loop",
    "zeros": "allocation, as empty",
    "synchronize": "a no-op on the host backends; the cuda variants call it inside every timed call",
}

# Arithmetic per element (or per multiply-add pair for the products), for the
# GFLOP/s column. Elementwise kernels are memory-bound, so their GFLOP/s says
# how far from compute-bound they are, not how good they are.
_FLOPS_PER_ELEMENT = {
    "apply_mask": 1, "bias_add": 1, "bias_relu_forward": 2, "bias_relu_dropout_forward": 3,
    "softmax": 5, "softmax_cross_entropy": 7, "squared_error": 4,
    "relu_backward": 1, "relu_dropout_backward": 2, "bias_grad": 1,
    "add_regularization_grad": 5, "regularization_loss": 4,
    "sgd_update": 6, "sgd_momentum_update": 8,
    "dropout_mask": None,  # integer hashing, no floating-point arithmetic to count
}


# ------------------------------------------------------------------ arguments
@dataclasses.dataclass(frozen=True)
class Arg:
    """One array argument: its shape and how to fill it (see ``_fill``)."""
    shape: tuple
    fill: str


def _fill(rng, arg):
    shape, fill = arg.shape, arg.fill
    if fill == "pixels":
        return rng.random(shape, dtype=DTYPE)
    if fill == "normal":
        return rng.standard_normal(shape, dtype=DTYPE)
    if fill == "weights":
        return rng.standard_normal(shape, dtype=DTYPE) / DTYPE(np.sqrt(shape[-1]))
    if fill.startswith("mask:"):
        keep = float(fill[5:])
        return np.where(rng.random(shape) < keep, DTYPE(1 / keep), DTYPE(0)).astype(DTYPE)
    if fill.startswith("labels:"):
        return rng.integers(0, int(fill[7:]), size=shape, dtype=np.int64)
    if fill == "loss":
        return np.zeros(shape, np.float64)
    if fill == "out":
        return np.zeros(shape, DTYPE)
    raise ValueError(f"unknown fill {fill!r}")


@dataclasses.dataclass(frozen=True)
class Case:
    """One kernel at one shape: its arguments (``Arg`` or scalars), which it writes, its cost."""
    kernel: str
    net: str
    batch: object  # int, or None for the parameter kernels, whose shapes do not depend on it
    where: str  # the layer the shape comes from, e.g. "hidden" or "W1"
    args: tuple
    outputs: tuple  # positions of the arguments the kernel writes
    flops: object  # float or None
    reduce_len: int = 1  # length of the sums inside one output element (sets the tolerance)

    @property
    def shape(self):
        """The array arguments' shapes, e.g. ``128x784,256x784,128x256``."""
        return ",".join("x".join(map(str, a.shape)) for a in self.args if isinstance(a, Arg))

    @property
    def id(self):
        return f"{self.kernel}-{self.shape}"

    @property
    def group(self):
        batch = "" if self.batch is None else f" n={self.batch}"
        return f"{self.kernel} {self.shape} ({self.net} {self.where}{batch})"

    def build(self, seed=0):
        """Fresh host arguments: arrays filled from ``seed``, scalars as given."""
        rng = np.random.default_rng(seed)
        return tuple(_fill(rng, a) if isinstance(a, Arg) else a for a in self.args)


def _elements(*shape):
    return float(np.prod(shape))


def _per_element(kernel, *shape):
    per = _FLOPS_PER_ELEMENT[kernel]
    return None if per is None else per * _elements(*shape)


def _matmul_cases(sizes, n):
    L = len(sizes) - 1
    for l in range(L):
        d_in, d_out = sizes[l], sizes[l + 1]
        flops = 2.0 * n * d_in * d_out
        a_in = "pixels" if l == 0 else "normal"
        yield Case("matmul_nt", "", n, f"forward W{l}",
                   (Arg((n, d_in), a_in), Arg((d_out, d_in), "weights"), Arg((n, d_out), "out")),
                   (2,), flops, d_in)
        yield Case("matmul_tn", "", n, f"dW{l}",
                   (Arg((n, d_out), "normal"), Arg((n, d_in), a_in), Arg((d_out, d_in), "out")),
                   (2,), flops, n)
        if l > 0:
            yield Case("matmul_nn", "", n, f"delta W{l}",
                       (Arg((n, d_out), "normal"), Arg((d_out, d_in), "weights"), Arg((n, d_in), "out")),
                       (2,), flops, d_out)


def _activation_cases(sizes, n):
    d_in, k = sizes[0], sizes[-1]
    hidden = sorted(set(sizes[1:-1]))
    yield Case("apply_mask", "", n, "input",
               (Arg((n, d_in), "pixels"), Arg((n, d_in), f"mask:{KEEP_INPUT}"), Arg((n, d_in), "out")),
               (2,), _per_element("apply_mask", n, d_in))
    yield Case("bias_add", "", n, "output",
               (Arg((n, k), "normal"), Arg((k,), "normal")), (0,), _per_element("bias_add", n, k))
    for d in hidden:
        yield Case("bias_relu_forward", "", n, "hidden",
                   (Arg((n, d), "normal"), Arg((d,), "normal"), Arg((n, d), "out")),
                   (0, 2), _per_element("bias_relu_forward", n, d))
        yield Case("bias_relu_dropout_forward", "", n, "hidden",
                   (Arg((n, d), "normal"), Arg((d,), "normal"), Arg((n, d), f"mask:{KEEP_HIDDEN}"),
                    Arg((n, d), "out")),
                   (0, 3), _per_element("bias_relu_dropout_forward", n, d))
        yield Case("relu_backward", "", n, "hidden",
                   (Arg((n, d), "normal"), Arg((n, d), "normal"), Arg((n, d), "out")),
                   (2,), _per_element("relu_backward", n, d))
        yield Case("relu_dropout_backward", "", n, "hidden",
                   (Arg((n, d), "normal"), Arg((n, d), "normal"), Arg((n, d), f"mask:{KEEP_HIDDEN}"),
                    Arg((n, d), "out")),
                   (3,), _per_element("relu_dropout_backward", n, d))
    yield Case("softmax", "", n, "output",
               (Arg((n, k), "normal"), Arg((n, k), "out")), (1,), _per_element("softmax", n, k), k)
    yield Case("softmax_cross_entropy", "", n, "output",
               (Arg((n, k), "normal"), Arg((n,), f"labels:{k}"), Arg((n, k), "out"), Arg((n, k), "out"),
                Arg((1,), "loss")),
               (2, 3, 4), _per_element("softmax_cross_entropy", n, k), k)
    yield Case("squared_error", "", n, "output",
               (Arg((n, k), "normal"), Arg((n, k), "normal"), Arg((n, k), "out"), Arg((1,), "loss")),
               (2, 3), _per_element("squared_error", n, k), n * k)
    for d in sorted(set(sizes[1:])):
        yield Case("bias_grad", "", n, "hidden" if d in hidden else "output",
                   (Arg((n, d), "normal"), Arg((d,), "out")), (1,), _per_element("bias_grad", n, d), n)
    for d, keep, where in ((d_in, KEEP_INPUT, "input"),) + tuple((d, KEEP_HIDDEN, "hidden") for d in hidden):
        yield Case("dropout_mask", "", n, where, (0, 1, keep, Arg((n, d), "out")), (3,), None)


def _parameter_cases(sizes):
    for l in range(len(sizes) - 1):
        shape = (sizes[l + 1], sizes[l])
        size = _elements(*shape)
        yield Case("add_regularization_grad", "", None, f"W{l}",
                   (Arg(shape, "weights"), Arg(shape, "normal"), L2, L1), (1,),
                   _per_element("add_regularization_grad", *shape))
        yield Case("regularization_loss", "", None, f"W{l}", (Arg(shape, "weights"), L2, L1), (),
                   _per_element("regularization_loss", *shape), int(size))
        yield Case("sgd_update", "", None, f"W{l}",
                   (Arg(shape, "weights"), Arg(shape, "normal"), LEARNING_RATE, 0.0, 0.0), (0,),
                   _per_element("sgd_update", *shape))
        yield Case("sgd_momentum_update", "", None, f"W{l}",
                   (Arg(shape, "weights"), Arg(shape, "normal"), Arg(shape, "normal"),
                    LEARNING_RATE, MOMENTUM, 0.0, 0.0), (0, 2),
                   _per_element("sgd_momentum_update", *shape))


def kernel_cases():
    """Every (kernel, shape) to time, each once: the first net and batch that give the shape name it."""
    seen, cases = set(), []
    for net, sizes in NETS.items():
        generated = list(_parameter_cases(sizes))
        for n in BATCHES[net]:
            generated += list(_matmul_cases(sizes, n)) + list(_activation_cases(sizes, n))
        for case in generated:
            case = dataclasses.replace(case, net=net)
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

    def apply_mask(X, mask, out):
        return lambda: torch.mul(X, mask, out=out)

    def bias_add(Z, b):
        return lambda: Z.add_(b)

    def bias_relu_forward(Z, b, H):
        def run():
            Z.add_(b)
            torch.clamp(Z, min=0, out=H)
        return run

    def bias_relu_dropout_forward(Z, b, mask, H):
        def run():
            Z.add_(b)
            torch.clamp(Z, min=0, out=H)
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

    def relu_backward(dH, Z, dZ):
        return lambda: torch.ops.aten.threshold_backward.grad_input(dH, Z, 0, grad_input=dZ)

    def relu_dropout_backward(dH, Z, mask, dZ):
        def run():
            torch.ops.aten.threshold_backward.grad_input(dH, Z, 0, grad_input=dZ)
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
