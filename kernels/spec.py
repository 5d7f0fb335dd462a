"""Every kernel declared once: its arguments, what it writes, how it is checked and what it costs.

The kernel tests of every backend (``tests/test_kernels.py``, ``tests/test_cuda_backend.py``)
and the kernel benchmarks (``benchmarks/cases.py``) are generated from ``SPECS``; the
equations live in the reference, ``kernels.numpy_backend``.

Shapes are written in symbols that a test or a benchmark binds to sizes:
    n  rows of a minibatch            d  the width of an elementwise kernel's rows
    k  a layer's inputs                m  a layer's outputs
    P  a parameter's shape, (m, k) or (m,), bound to a tuple
    shape  a dropout mask's shape, any rank, bound to a tuple
    N  rows of the resident data set, start  the first row of a minibatch in its order
``derived`` gives a symbol from the others when the case does not bind it.

Each argument says how a test fills it (``FILLS``) and its role: ``"in"`` is only
read (and must come back unchanged), ``"out"`` is written whatever it held (tests
poison it with NaN, or -1 for integers, so an element left unwritten shows), and
``"inout"`` is updated in place.

Tolerance classes: an ``exact`` kernel must equal the reference bit for bit on every
backend; any other matches it within ``TOLERANCE[dtype]`` of the reference's largest
magnitude (the benchmarks, in float32 on unit-scale data, use their own rtol plus an
absolute term per summed term, with ``reduces``: the symbols whose product is the
length of the sums inside one output element).

A fused, training or reduced kernel names its ``chain``: the standard kernels it
merges, as calls on its own arguments, in order. ``also`` says what it does beyond
that chain; when ``also`` is empty the kernel must equal its chain bit for bit.
"""
import dataclasses

import numpy as np

from .codes import ACTIVATIONS, RELU

# Array management: every backend has these, and they take no spec (no arithmetic).
ARRAY_FUNCTIONS = ("to_device", "to_host", "empty", "zeros", "synchronize")

# Every symbol a shape may use, in the order a case lists their sizes.
SYMBOLS = ("n", "k", "m", "d", "P", "shape", "N", "start")

# The kernel groups, in the order a backend lists them.
GROUPS = ("standard", "fused", "training", "reduced")

TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}

MASK_KEEP = 0.7  # the keep probability of the "mask" fill

FILLS = {
    "normal": "standard normal values (never all zeros, so an unwritten output shows)",
    "with_zeros": "standard normal with about a quarter exact zeros: relu'(0) = 0, sign(0) = 0",
    "small_with_zeros": "0.1 x standard normal with exact zeros: update steps cross zero (the L1 clip)",
    "logits": "40 x standard normal: exp overflows without the row-max shift",
    "positive": "the absolute value of standard normal values: second moments (Adam's V)",
    "binary": "0 or 1 with probability one half: binary and multilabel targets",
    "counts": "Poisson counts (mean 2) as floats, zeros included: y log y = 0 at y = 0",
    "mask": f"a dropout mask, 0 or 1/{MASK_KEEP}, drawn independently of the kernels",
    "labels:C": "integers in [0, C), C a symbol or a number",
    "permutation": "a permutation of the integers in [0, length)",
    "epoch_stats": "(0.25, -1.0): a running sum, and no divergent step yet",
}
FILL_KINDS = {kind.partition(":")[0] for kind in FILLS}


@dataclasses.dataclass(frozen=True)
class Array:
    """An array argument: its shape in symbols, how a test fills it, its role and element type."""
    name: str
    shape: tuple
    fill: str = "normal"
    role: str = "in"       # "in", "out" or "inout"
    dtype: str = "float"   # "float" (the dtype under test), "int64" or "float64"


@dataclasses.dataclass(frozen=True)
class Scalar:
    """A scalar argument: a number, or the name of a symbol the case binds."""
    name: str
    value: object


@dataclasses.dataclass(frozen=True)
class Step:
    """One standard kernel of a chain, called on the composite's argument names or on numbers."""
    kernel: str
    args: tuple


def call(kernel, *args):
    return Step(kernel, args)


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One kernel: what ``spec`` (the module docstring) says about it."""
    name: str
    group: str
    args: tuple
    site: str = None        # where a training step runs it (``SITES``), for the benchmarks
    flops: object = None    # floating-point operations per element, None for integer work
    elements: tuple = ()    # symbols whose product is the element count of ``flops``
    reduces: tuple = ()
    exact: bool = False
    returns: bool = False   # returns a Python float, compared like an output
    variants: tuple = ({},)  # overrides of scalar values (or None for an optional array), one case each
    derived: dict = dataclasses.field(default_factory=dict)
    chain: tuple = ()
    also: str = ""
    aliases: tuple = ()     # (output, input) argument pairs that may be the same array

    @property
    def symbols(self):
        """The symbols a case must bind (derived ones excluded), in ``SYMBOLS`` order."""
        used = set()
        for arg in self.args:
            used.update(arg.shape if isinstance(arg, Array) else (arg.value,))
        return tuple(s for s in SYMBOLS if s in used and s not in self.derived)

    @property
    def writes(self):
        """Positions of the arguments the kernel writes (outputs and in-place updates)."""
        return tuple(i for i, a in enumerate(self.args) if isinstance(a, Array) and a.role != "in")

    @property
    def arg_names(self):
        return tuple(a.name for a in self.args)


# Where a training step of an MLP runs each standard kernel, and how the benchmarks
# bind the symbols there (benchmarks/cases.py implements each site).
SITES = {
    "forward": "each layer's forward product: n the batch, k the layer's inputs, m its outputs",
    "weight_gradient": "each layer's weight gradient: n, k, m as in forward",
    "backprop": "each layer but the first, the delta through its weights: n, k, m as in forward",
    "input": "the input layer: n the batch, d the inputs",
    "hidden": "each hidden width d, at batch n",
    "output": "the output layer: n the batch, d the outputs",
    "biases": "each layer's width d (hidden and output), at batch n",
    "weights": "each weight matrix: P = (outputs, inputs)",
    "masks": "each dropout-masked layer (input, hidden): shape = (n, d), keep its keep probability",
}


def _out(name, shape, dtype="float"):
    return Array(name, shape, role="out", dtype=dtype)


def _inout(name, shape, fill="normal", dtype="float"):
    return Array(name, shape, fill, role="inout", dtype=dtype)


_LOSS = _out("loss_out", (1,), "float64")
_ROWS = ("n", "d")
_L1_VARIANTS = ({"l1": 0.0}, {})   # plain, and with the L1 step (clipped at zero)
_REGULARISATION = (Scalar("l2", 0.3), Scalar("l1", 0.05))
# The hidden activation f: relu by default, and one case per activation.
_ACTIVATION = Scalar("activation", RELU)
_EACH_ACTIVATION = tuple({"activation": code} for code in range(len(ACTIVATIONS)))
_ADAM = (Scalar("step_size", 0.01), Scalar("beta_1", 0.9), Scalar("beta_2", 0.999), Scalar("epsilon", 1e-8))

_STANDARD = (
    Kernel("matmul_nt", "standard", (Array("A", ("n", "k")), Array("B", ("m", "k")), _out("out", ("n", "m"))),
           site="forward", flops=2, elements=("n", "k", "m"), reduces=("k",)),
    Kernel("matmul_tn", "standard", (Array("A", ("n", "m")), Array("B", ("n", "k")), _out("out", ("m", "k"))),
           site="weight_gradient", flops=2, elements=("n", "k", "m"), reduces=("n",)),
    Kernel("matmul_nn", "standard", (Array("A", ("n", "m")), Array("B", ("m", "k")), _out("out", ("n", "k"))),
           site="backprop", flops=2, elements=("n", "k", "m"), reduces=("m",)),
    Kernel("matmul_tn_update", "standard",
           (Array("A", ("n", "m")), Array("B", ("n", "k")), Scalar("alpha", -0.05), Scalar("beta", 0.99),
            _inout("out", ("m", "k"))),
           site="weight_gradient", flops=2, elements=("n", "k", "m"), reduces=("n",),
           variants=({}, {"beta": 1.0}, {"beta": 0.0})),
    Kernel("apply_mask", "standard", (Array("X", _ROWS), Array("mask", _ROWS, "mask"), _out("out", _ROWS)),
           site="input", flops=1, elements=_ROWS),
    Kernel("bias_add", "standard", (_inout("Z", _ROWS), Array("b", ("d",))),
           site="output", flops=1, elements=_ROWS),
    Kernel("bias_activation_forward", "standard",
           (_inout("Z", _ROWS), Array("b", ("d",)), _ACTIVATION, _out("H", _ROWS)),
           site="hidden", flops=2, elements=_ROWS, variants=_EACH_ACTIVATION),
    Kernel("bias_activation_dropout_forward", "standard",
           (_inout("Z", _ROWS), Array("b", ("d",)), _ACTIVATION, Array("mask", _ROWS, "mask"), _out("H", _ROWS)),
           site="hidden", flops=3, elements=_ROWS, variants=_EACH_ACTIVATION),
    Kernel("softmax", "standard", (Array("logits", _ROWS, "logits"), _out("probs", _ROWS)),
           site="output", flops=5, elements=_ROWS, reduces=("d",)),
    Kernel("softmax_cross_entropy", "standard",
           (Array("logits", _ROWS, "logits"), Array("labels", ("n",), "labels:d", dtype="int64"),
            _out("probs", _ROWS), _out("dlogits", _ROWS), _LOSS),
           site="output", flops=7, elements=_ROWS, reduces=("d",)),
    Kernel("squared_error", "standard",
           (Array("outputs", _ROWS), Array("targets", _ROWS), _out("doutputs", _ROWS), _LOSS),
           site="output", flops=4, elements=_ROWS, reduces=("n", "d")),
    Kernel("sigmoid_cross_entropy", "standard",
           (Array("logits", _ROWS, "logits"), Array("targets", _ROWS, "binary"), _out("probs", _ROWS),
            _out("dlogits", _ROWS), _LOSS),
           site="output", flops=8, elements=_ROWS, reduces=("n", "d")),
    Kernel("poisson_loss", "standard",
           (Array("logits", _ROWS), Array("targets", _ROWS, "counts"), _out("outputs", _ROWS),
            _out("dlogits", _ROWS), _LOSS),
           site="output", flops=8, elements=_ROWS, reduces=("n", "d")),
    Kernel("activation_backward", "standard",
           (Array("dH", _ROWS), Array("Z", _ROWS, "with_zeros"), _ACTIVATION, _out("dZ", _ROWS)),
           site="hidden", flops=1, elements=_ROWS, aliases=(("dZ", "dH"),), variants=_EACH_ACTIVATION),
    Kernel("activation_dropout_backward", "standard",
           (Array("dH", _ROWS), Array("Z", _ROWS, "with_zeros"), _ACTIVATION, Array("mask", _ROWS, "mask"),
            _out("dZ", _ROWS)),
           site="hidden", flops=2, elements=_ROWS, aliases=(("dZ", "dH"),), variants=_EACH_ACTIVATION),
    Kernel("bias_grad", "standard", (Array("dZ", _ROWS), _out("db", ("d",))),
           site="biases", flops=1, elements=_ROWS, reduces=("n",)),
    Kernel("add_regularization_grad", "standard",
           (Array("W", ("P",), "with_zeros"), _inout("dW", ("P",))) + _REGULARISATION,
           site="weights", flops=5, elements=("P",)),
    Kernel("regularization_loss", "standard", (Array("W", ("P",), "with_zeros"),) + _REGULARISATION,
           site="weights", flops=4, elements=("P",), reduces=("P",), returns=True),
    Kernel("sgd_update", "standard",
           (_inout("P", ("P",), "small_with_zeros"), Array("dP", ("P",)), Scalar("lr", 0.1)) + _REGULARISATION,
           site="weights", flops=6, elements=("P",), variants=_L1_VARIANTS),
    Kernel("sgd_momentum_update", "standard",
           (_inout("P", ("P",), "small_with_zeros"), Array("dP", ("P",)), _inout("V", ("P",)),
            Scalar("lr", 0.1), Scalar("momentum", 0.9)) + _REGULARISATION,
           site="weights", flops=8, elements=("P",), variants=_L1_VARIANTS),
    Kernel("sgd_nesterov_update", "standard",
           (_inout("P", ("P",), "small_with_zeros"), Array("dP", ("P",)), _inout("V", ("P",)),
            Scalar("lr", 0.1), Scalar("momentum", 0.9)) + _REGULARISATION,
           site="weights", flops=10, elements=("P",), variants=_L1_VARIANTS),
    Kernel("adam_update", "standard",
           (_inout("P", ("P",), "small_with_zeros"), Array("dP", ("P",)), _inout("M", ("P",)),
            _inout("V", ("P",), "positive")) + _ADAM + _REGULARISATION,
           site="weights", flops=14, elements=("P",), variants=_L1_VARIANTS),
    Kernel("dropout_mask", "standard",
           (Scalar("seed", 0), Scalar("stream", 0), Scalar("keep", 0.5), _out("out", ("shape",))),
           site="masks", exact=True,
           # seeds and streams anywhere in [0, 2**63), keep 1.0 (everything kept) and an odd one
           variants=({}, {"seed": 12345, "stream": 7, "keep": 0.8}, {"seed": 2**62 + 11, "stream": 2**40, "keep": 0.3},
                     {"seed": 5, "stream": 1, "keep": 1.0}, {"seed": 12345, "stream": 3, "keep": 0.123456789},
                     {"seed": 2**63 - 1, "stream": 2**40 + 7, "keep": 0.123456789})),
)

_LAYER_IN = (Array("X", ("n", "k")), Array("W", ("m", "k")), Array("b", ("m",)))
_LAYER_BACK = (Array("dZ_next", ("n", "m")), Array("W", ("m", "k")), Array("Z", ("n", "k"), "with_zeros"))
_FUSED = (
    Kernel("linear_forward", "fused", _LAYER_IN + (_out("Z", ("n", "m")),),
           flops=2, elements=("n", "k", "m"), reduces=("k",),
           chain=(call("matmul_nt", "X", "W", "Z"), call("bias_add", "Z", "b"))),
    Kernel("linear_activation_forward", "fused", _LAYER_IN + (_ACTIVATION, _out("Z", ("n", "m")), _out("H", ("n", "m"))),
           flops=2, elements=("n", "k", "m"), reduces=("k",), variants=_EACH_ACTIVATION,
           chain=(call("matmul_nt", "X", "W", "Z"), call("bias_activation_forward", "Z", "b", "activation", "H"))),
    Kernel("linear_activation_dropout_forward", "fused",
           _LAYER_IN + (_ACTIVATION, Array("mask", ("n", "m"), "mask"), _out("Z", ("n", "m")), _out("H", ("n", "m"))),
           flops=2, elements=("n", "k", "m"), reduces=("k",), variants=_EACH_ACTIVATION,
           chain=(call("matmul_nt", "X", "W", "Z"),
                  call("bias_activation_dropout_forward", "Z", "b", "activation", "mask", "H"))),
    Kernel("linear_activation_backward", "fused", _LAYER_BACK + (_ACTIVATION, _out("dZ", ("n", "k"))),
           flops=2, elements=("n", "k", "m"), reduces=("m",), variants=_EACH_ACTIVATION,
           chain=(call("matmul_nn", "dZ_next", "W", "dZ"), call("activation_backward", "dZ", "Z", "activation", "dZ"))),
    Kernel("linear_activation_dropout_backward", "fused",
           _LAYER_BACK + (_ACTIVATION, Array("mask", ("n", "k"), "mask"), _out("dZ", ("n", "k"))),
           flops=2, elements=("n", "k", "m"), reduces=("m",), variants=_EACH_ACTIVATION,
           chain=(call("matmul_nn", "dZ_next", "W", "dZ"),
                  call("activation_dropout_backward", "dZ", "Z", "activation", "mask", "dZ"))),
)

_EPOCH_STATS = (_inout("epoch_stats", (2,), "epoch_stats", "float64"), Scalar("step", 5))
_BOOKKEEPING = ("then the epoch's bookkeeping: while every loss so far was finite (epoch_stats[1] < 0), "
                "epoch_stats[0] += loss * n; the first non-finite loss writes step into epoch_stats[1]")
_LAYER_SGD = (_inout("W", ("m", "k"), "small_with_zeros"), Array("dW", ("m", "k")))
_TRAINING = (
    Kernel("gather_minibatch", "training",
           (Array("X", ("N", "d")), Array("perm", ("N",), "permutation", dtype="int64"), Scalar("start", "start"),
            _out("out", _ROWS), Array("labels", ("N",), "labels:4", dtype="int64"), _out("labels_out", ("n",), "int64"),
            Scalar("seed", 7), Scalar("stream", 11), Scalar("keep", 0.7)),
           exact=True, flops=1, elements=_ROWS, derived={"N": lambda s: s["n"] + 5, "start": lambda s: 3},
           variants=({}, {"keep": 1.0}, {"labels": None, "labels_out": None},
                     {"labels": None, "labels_out": None, "keep": 1.0}),
           chain=(call("dropout_mask", "seed", "stream", "keep", "mask"), call("apply_mask", "out", "mask", "out")),
           also="first out[i] = X[perm[start + i]] (and labels_out[i] = labels[perm[start + i]] when labels "
                "are given); the chain runs only when keep < 1, and its mask is not stored"),
    Kernel("softmax_cross_entropy_accumulate", "training",
           (Array("logits", _ROWS, "logits"), Array("labels", ("n",), "labels:d", dtype="int64"),
            _out("probs", _ROWS), _out("dlogits", _ROWS), _LOSS) + _EPOCH_STATS,
           flops=7, elements=_ROWS, reduces=("d",),
           chain=(call("softmax_cross_entropy", "logits", "labels", "probs", "dlogits", "loss_out"),),
           also=_BOOKKEEPING),
    Kernel("squared_error_accumulate", "training",
           (Array("outputs", _ROWS), Array("targets", _ROWS), _out("doutputs", _ROWS), _LOSS) + _EPOCH_STATS,
           flops=4, elements=_ROWS, reduces=("n", "d"),
           chain=(call("squared_error", "outputs", "targets", "doutputs", "loss_out"),),
           also=_BOOKKEEPING),
    Kernel("sigmoid_cross_entropy_accumulate", "training",
           (Array("logits", _ROWS, "logits"), Array("targets", _ROWS, "binary"), _out("probs", _ROWS),
            _out("dlogits", _ROWS), _LOSS) + _EPOCH_STATS,
           flops=8, elements=_ROWS, reduces=("n", "d"),
           chain=(call("sigmoid_cross_entropy", "logits", "targets", "probs", "dlogits", "loss_out"),),
           also=_BOOKKEEPING),
    Kernel("poisson_loss_accumulate", "training",
           (Array("logits", _ROWS), Array("targets", _ROWS, "counts"), _out("outputs", _ROWS),
            _out("dlogits", _ROWS), _LOSS) + _EPOCH_STATS,
           flops=8, elements=_ROWS, reduces=("n", "d"),
           chain=(call("poisson_loss", "logits", "targets", "outputs", "dlogits", "loss_out"),),
           also=_BOOKKEEPING),
    Kernel("layer_sgd_update", "training",
           _LAYER_SGD + (_inout("b", ("m",), "small_with_zeros"), Array("db", ("m",)), Scalar("lr", 0.1))
           + _REGULARISATION,
           flops=6, elements=("m", "k"), variants=_L1_VARIANTS,
           chain=(call("sgd_update", "W", "dW", "lr", "l2", "l1"), call("sgd_update", "b", "db", "lr", 0.0, 0.0))),
    Kernel("layer_sgd_momentum_update", "training",
           _LAYER_SGD + (_inout("VW", ("m", "k")), _inout("b", ("m",), "small_with_zeros"), Array("db", ("m",)),
                         _inout("Vb", ("m",)), Scalar("lr", 0.1), Scalar("momentum", 0.9)) + _REGULARISATION,
           flops=8, elements=("m", "k"), variants=_L1_VARIANTS,
           chain=(call("sgd_momentum_update", "W", "dW", "VW", "lr", "momentum", "l2", "l1"),
                  call("sgd_momentum_update", "b", "db", "Vb", "lr", "momentum", 0.0, 0.0))),
    Kernel("layer_sgd_nesterov_update", "training",
           _LAYER_SGD + (_inout("VW", ("m", "k")), _inout("b", ("m",), "small_with_zeros"), Array("db", ("m",)),
                         _inout("Vb", ("m",)), Scalar("lr", 0.1), Scalar("momentum", 0.9)) + _REGULARISATION,
           flops=10, elements=("m", "k"), variants=_L1_VARIANTS,
           chain=(call("sgd_nesterov_update", "W", "dW", "VW", "lr", "momentum", "l2", "l1"),
                  call("sgd_nesterov_update", "b", "db", "Vb", "lr", "momentum", 0.0, 0.0))),
    Kernel("layer_adam_update", "training",
           _LAYER_SGD + (_inout("MW", ("m", "k")), _inout("VW", ("m", "k"), "positive"),
                         _inout("b", ("m",), "small_with_zeros"), Array("db", ("m",)), _inout("Mb", ("m",)),
                         _inout("Vb", ("m",), "positive")) + _ADAM + _REGULARISATION,
           flops=14, elements=("m", "k"), variants=_L1_VARIANTS,
           chain=(call("adam_update", "W", "dW", "MW", "VW", "step_size", "beta_1", "beta_2", "epsilon", "l2", "l1"),
                  call("adam_update", "b", "db", "Mb", "Vb", "step_size", "beta_1", "beta_2", "epsilon", 0.0, 0.0))),
)

_SCALE = Scalar("scale", 1 / MASK_KEEP)
_REDUCED = (
    Kernel("bias_activation_scale_forward", "reduced",
           (_inout("Z", _ROWS), Array("b", ("d",)), _ACTIVATION, _SCALE, _out("H", _ROWS)),
           flops=3, elements=_ROWS, variants=_EACH_ACTIVATION,
           chain=(call("bias_activation_forward", "Z", "b", "activation", "H"),), also="then H *= scale"),
    Kernel("activation_scale_backward", "reduced",
           (Array("dH", _ROWS), Array("Z", _ROWS, "with_zeros"), _ACTIVATION, _SCALE, _out("dZ", _ROWS)),
           flops=2, elements=_ROWS, aliases=(("dZ", "dH"),), variants=_EACH_ACTIVATION,
           chain=(call("activation_backward", "dH", "Z", "activation", "dZ"),), also="then dZ *= scale"),
)

SPECS = {k.name: k for k in _STANDARD + _FUSED + _TRAINING + _REDUCED}


def names(group):
    """The kernels of ``group``, in declaration order."""
    return tuple(k.name for k in SPECS.values() if k.group == group)


def chains(group):
    """{kernel: the standard kernels of its chain, in order} for a group of composite kernels."""
    return {k.name: tuple(step.kernel for step in k.chain) for k in SPECS.values() if k.group == group}


# ---------------------------------------------------------------- binding and building
def bind(kernel, sizes):
    """The case's sizes with the kernel's derived symbols added (the case's own values win)."""
    bound = dict(sizes)
    for symbol, rule in kernel.derived.items():
        bound.setdefault(symbol, rule(bound))
    return bound


def shape_of(array, bound):
    """An argument's concrete shape: each symbol's size, tuple-valued symbols spliced in."""
    shape = []
    for symbol in array.shape:
        size = bound[symbol] if isinstance(symbol, str) else symbol
        shape.extend(size if isinstance(size, tuple) else (size,))
    return tuple(shape)


def element_count(symbols, bound):
    """The product of the sizes of ``symbols`` (a tuple-valued symbol counts all its elements)."""
    return int(np.prod(shape_of(Array("", symbols), bound), dtype=np.int64))


def _with_zeros(rng, a):
    flat = a.reshape(-1)
    flat[rng.choice(flat.size, size=max(1, flat.size // 4), replace=False)] = 0
    return a


def fill(rng, array, shape, dtype, bound):
    """A host array for ``array``: filled as its ``fill`` says, or poisoned when it is an output."""
    element = {"float": dtype, "int64": np.int64, "float64": np.float64}[array.dtype]
    if array.role == "out":
        return np.full(shape, -1 if np.issubdtype(element, np.integer) else np.nan, element)
    kind, _, parameter = array.fill.partition(":")
    if kind not in FILL_KINDS:
        raise ValueError(f"{array.name}: unknown fill {array.fill!r}; expected one of {sorted(FILLS)}")
    if kind == "labels":
        classes = bound[parameter] if parameter in bound else int(parameter)
        return rng.integers(0, classes, size=shape).astype(element)
    if kind == "permutation":
        return rng.permutation(shape[0]).astype(element)
    if kind == "epoch_stats":
        return np.array([0.25, -1.0], element)
    if kind == "mask":
        return np.where(rng.random(shape) < MASK_KEEP, 1 / MASK_KEEP, 0).astype(element)
    if kind == "binary":
        return (rng.random(shape) < 0.5).astype(element)
    if kind == "counts":
        return rng.poisson(2.0, size=shape).astype(element)
    values = rng.standard_normal(shape)
    if kind == "logits":
        values *= 40
    elif kind == "small_with_zeros":
        values *= 0.1
    elif kind == "positive":
        values = np.abs(values)
    values = values.astype(element)
    return _with_zeros(rng, values) if kind in ("with_zeros", "small_with_zeros") else values


def arguments(kernel, sizes, dtype, rng, variant=None, fills=None):
    """Fresh host arguments of ``kernel`` at ``sizes``, in order.

    ``variant`` overrides scalar values (or sets an optional array to None);
    ``fills`` maps a fill kind to another (the benchmarks keep unit-scale logits).
    """
    bound = bind(kernel, sizes)
    variant = variant or {}
    args = []
    for arg in kernel.args:
        if arg.name in variant:
            args.append(variant[arg.name])
        elif isinstance(arg, Scalar):
            args.append(bound[arg.value] if isinstance(arg.value, str) else arg.value)
        else:
            if fills and arg.fill in fills:
                arg = dataclasses.replace(arg, fill=fills[arg.fill])
            args.append(fill(rng, arg, shape_of(arg, bound), dtype, bound))
    return args


def run_chain(backend, kernel, args):
    """Run ``kernel``'s chain of standard kernels from ``backend`` on ``args`` (in place)."""
    named = dict(zip(kernel.arg_names, args))
    for step in kernel.chain:
        getattr(backend, step.kernel)(*(named[a] if isinstance(a, str) else a for a in step.args))


def relative_error(got, want, dtype):
    """max |got - want| over the reference's largest magnitude (at least ``dtype``'s tiniest normal)."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if want.size == 0:
        return 0.0
    scale = max(float(np.abs(want).max()), float(np.finfo(dtype).tiny))
    return float(np.abs(got - want).max()) / scale
