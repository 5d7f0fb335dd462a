"""The options that say what to train, declared once and read the same way by ``mlp train`` and ``mlp search``.

One grammar for both commands. What ``mlp train`` accepts means the same in ``mlp search``:

``--lr 0.05``                a value.
``--hidden 512 256``         one value per layer, separated by spaces: one network with two hidden
                             layers. ``--l2 1e-4 0``: one strength per weight matrix; ``--keep-prob 0.9
                             0.7``: the input's keep probability, then each hidden layer's. A per-layer
                             option given one value gives it to every layer. ``--hidden none`` (or
                             ``--hidden`` alone) is no hidden layer.

``mlp search`` also takes search axes, each visibly one:

``--lr 0.01,0.05,0.1``       candidates joined by commas, in any position: ``--hidden 256,512`` is one
                             hidden layer of 256 or of 512 units; ``--hidden 512 128,256`` two hidden
                             layers, the second of 128 or 256 units.
``--l2 log:1e-6:1e-2``       a distribution, for ``--method random``: ``log:LOW:HIGH`` (log-uniform) or
                             ``uniform:LOW:HIGH``, for the options that take real numbers.
``--hidden 256 --hidden 512 256``
                             an option repeated: whole alternatives, here one or two hidden layers.

``mlp train`` trains one configuration: it refuses an axis and says that it belongs to ``mlp search``.
"""
import argparse
import dataclasses
import itertools
from typing import Callable

from kernels.codes import ACTIVATIONS

from ..config import DROPOUT_MODES, LR_SCHEDULES, OPTIMIZERS
from . import options
from .options import UsageError


class Axis(tuple):
    """The candidates of one position of an option, from text with commas (``0.01,0.1``)."""

    def __str__(self):
        return ",".join(map(str, self))


@dataclasses.dataclass(frozen=True)
class Draw:
    """A distribution from text ``log:LOW:HIGH`` or ``uniform:LOW:HIGH``: an axis of a random search."""

    kind: str
    low: float
    high: float

    def __str__(self):
        return f"{self.kind}:{self.low:g}:{self.high:g}"


def shown(value):
    """A value as the command line writes it: (512, 256) is ``512 256``, () is ``none``, True is ``true``."""
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value)) if value else "none"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _choice(choices):
    def choice(text):
        if text not in choices:
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(choices)})")
        return text
    return choice


def _boolean(text):
    """'true'/'false' (also yes/no, 1/0, on/off, any case)."""
    value = text.strip().lower()
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false; got {text!r}")


def _hidden_size(text):
    """A hidden layer's size, or None for the word ``none`` (no hidden layer)."""
    return None if text.strip().lower() == "none" else options.positive_int(text)


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of the grammar.

    ``name`` is the configuration's name (``mlp.defaults``' recipes, ``mlp.search``'s parameters);
    ``value`` parses one value from its text; ``per_layer`` says what one value per layer is for
    (empty: the option takes a single value); ``real`` allows a distribution; ``alone`` is the
    value of the flag given without one (``--nesterov`` means true).
    """

    flag: str
    name: str
    value: Callable
    metavar: str
    help: str
    group: str
    per_layer: str = ""
    real: bool = False
    alone: str = None

    def add_to(self, group, default):
        """Add the option to an argparse ``group``; ``default`` is the text shown as its default."""
        action = group.add_argument(self.flag, dest=self.name, type=self.token, action="append", default=None,
                                    nargs="*" if self.alone is not None or self.name == "hidden" else "+",
                                    metavar=self.metavar, help=f"{self.help} (default: {default})")
        # Every option takes several words, so that a search user who writes candidates with spaces
        # is told about commas (``words``); the help shows one word where one is meant.
        action.one_word = not self.per_layer

    def token(self, text):
        """One word of the command line: a value, an ``Axis`` (commas) or a ``Draw`` (a distribution)."""
        kind, colon, rest = text.partition(":")
        if colon and kind in ("log", "uniform"):
            return self._draw(kind, rest, text)
        parts = text.split(",")
        if len(parts) == 1:
            return self.value(text)
        if "" in parts:
            raise argparse.ArgumentTypeError(f"an empty candidate in {text!r}")
        return Axis(self.value(part) for part in parts)

    def _draw(self, kind, rest, text):
        if not self.real:
            raise argparse.ArgumentTypeError(f"a distribution ({text!r}) draws real numbers; give this option's "
                                             "candidates joined by commas")
        bounds = rest.split(":")
        if len(bounds) != 2:
            raise argparse.ArgumentTypeError(f"expected {kind}:LOW:HIGH; got {text!r}")
        low, high = (self.value(b) for b in bounds)
        if not low < high:
            raise argparse.ArgumentTypeError(f"{text!r} needs LOW < HIGH")
        if kind == "log" and low <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: a log-uniform distribution needs LOW > 0")
        return Draw(kind, low, high)

    def words(self, occurrence):
        """The values of one occurrence of the option, their count checked."""
        if not occurrence:
            if self.alone is not None:
                return [self.value(self.alone)]
            return [None]  # --hidden alone: no hidden layer
        if not self.per_layer and len(occurrence) > 1:
            shown = " ".join(map(str, occurrence))
            raise UsageError(f"{self.flag} takes one value; got {len(occurrence)} ({shown}). "
                             f"Candidates of a search axis are joined by commas: "
                             f"{self.flag} {','.join(map(str, occurrence))}")
        if self.name == "hidden" and None in occurrence and len(occurrence) > 1:
            raise UsageError("--hidden none stands alone: it means no hidden layer")
        return list(occurrence)

    def shape(self, values):
        """The option's value from its values: ``hidden`` a tuple, another per-layer option a list
        (one value per layer) or its single value (every layer), else the value."""
        if self.name == "hidden":
            return () if values == [None] else tuple(values)
        if self.per_layer and len(values) > 1:
            return list(values)
        return values[0]


# --------------------------------------------------------------------------- #
# the options
# --------------------------------------------------------------------------- #
_NETWORK, _OPTIMISATION, _REGULARISATION = "network", "optimisation", "regularisation"

OPTIONS = (
    Option("--hidden", "hidden", _hidden_size, "N",
           "sizes of the hidden layers, the input's side first; none = no hidden layer (softmax regression)",
           _NETWORK, per_layer="one per hidden layer"),
    Option("--activation", "activation", _choice(ACTIVATIONS), "F",
           f"activation of the hidden layers: {', '.join(ACTIVATIONS)} (relu is the lecture's)", _NETWORK),
    Option("--epochs", "epochs", options.positive_int, "N", "maximum number of epochs", _OPTIMISATION),
    Option("--batch-size", "batch_size", options.positive_int, "N", "mini-batch size", _OPTIMISATION),
    Option("--lr", "learning_rate", options.positive_number, "LR", "learning rate", _OPTIMISATION, real=True),
    Option("--optimizer", "optimizer", _choice(OPTIMIZERS), "OPT",
           "sgd: SGD with --momentum (and --nesterov); adam: Adam with --beta-1, --beta-2, --epsilon",
           _OPTIMISATION),
    Option("--momentum", "momentum", options.momentum, "M", "momentum in [0, 1) of --optimizer sgd",
           _OPTIMISATION, real=True),
    Option("--nesterov", "nesterov", _boolean, "BOOL",
           "Nesterov's momentum instead of the classical one (--optimizer sgd, --momentum > 0); "
           "the flag alone means true", _OPTIMISATION, alone="true"),
    Option("--beta-1", "beta_1", options.decay_rate, "B1",
           "Adam's decay rate in [0, 1) of the mean of the gradients", _OPTIMISATION, real=True),
    Option("--beta-2", "beta_2", options.decay_rate, "B2",
           "Adam's decay rate in [0, 1) of the mean of the squared gradients", _OPTIMISATION, real=True),
    Option("--epsilon", "epsilon", options.positive_number, "EPS", "Adam's epsilon > 0, for numerical stability",
           _OPTIMISATION, real=True),
    Option("--lr-schedule", "lr_schedule", _choice(LR_SCHEDULES), "S",
           "learning rate of epoch e: decay = lr / (1 + lr_decay e); cosine = lr (1 + cos(pi e / epochs)) / 2; "
           "invscaling = lr / (samples seen + 1) ** power_t; adaptive = lr, divided by 5 after --patience "
           "epochs without improvement", _OPTIMISATION),
    Option("--warmup-epochs", "warmup_epochs", options.non_negative_int, "W",
           "epochs of linear warm-up (lr (e + 1) / W) before --lr-schedule decay or cosine", _OPTIMISATION),
    Option("--lr-decay", "lr_decay", options.non_negative_number, "D",
           "the decay of --lr-schedule decay", _OPTIMISATION, real=True),
    Option("--power-t", "power_t", options.non_negative_number, "T",
           "the exponent of --lr-schedule invscaling", _OPTIMISATION, real=True),
    Option("--early-stopping", "early_stopping", _boolean, "BOOL",
           "stop when the validation loss has not improved for --patience epochs, keeping the best "
           "parameters (needs a validation set); the flag alone means true", _OPTIMISATION, alone="true"),
    Option("--patience", "patience", options.positive_int, "N",
           "epochs without improvement before early stopping, or before --lr-schedule adaptive divides "
           "the learning rate by 5", _OPTIMISATION),
    Option("--l2", "l2", options.non_negative_number, "A",
           "L2 strength alpha(j): one for every weight matrix, or one per weight matrix", _REGULARISATION,
           per_layer="one per weight matrix", real=True),
    Option("--l1", "l1", options.non_negative_number, "B",
           "L1 strength beta(j): one for every weight matrix, or one per weight matrix", _REGULARISATION,
           per_layer="one per weight matrix", real=True),
    Option("--keep-prob", "keep_prob", options.keep_probability, "P",
           "dropout keep probability: one for the input and every hidden layer, or the input's then "
           "each hidden layer's", _REGULARISATION, per_layer="the input's, then one per hidden layer", real=True),
    Option("--keep-prob-input", "keep_prob_input", options.keep_probability, "P",
           "keep probability of the input layer (instead of --keep-prob)", _REGULARISATION, real=True),
    Option("--keep-prob-hidden", "keep_prob_hidden", options.keep_probability, "P",
           "keep probability of every hidden layer, whatever their number (instead of --keep-prob)",
           _REGULARISATION, real=True),
    Option("--dropout-mode", "dropout_mode", _choice(DROPOUT_MODES), "MODE",
           "a fresh mask for every sample, or one per mini-batch as in the lecture's reduced network",
           _REGULARISATION),
)
BY_NAME = {option.name: option for option in OPTIONS}

#: The help's explanation of the grammar, shown by both commands.
EPILOG = """\
One value per layer is written with spaces: --hidden 512 256 is one network with two hidden
layers, --l2 1e-4 0 one strength per weight matrix, --keep-prob 0.9 0.7 the input's keep
probability then each hidden layer's. A per-layer option given one value gives it to every
layer; --hidden none is no hidden layer."""

#: What ``mlp search`` adds to the epilog: the axes.
AXES_EPILOG = """\
A search axis is always visible as one:
  --lr 0.01,0.05,0.1             candidates joined by commas, in any position:
  --hidden 512 128,256           two hidden layers, the second of 128 or of 256 units
  --l2 log:1e-6:1e-2             a distribution, for --method random (also uniform:LOW:HIGH)
  --hidden 256 --hidden 512 256  an option repeated: whole alternatives (one or two hidden layers)
Examples:
  mlp search --hidden 256 --lr 0.01,0.05 --l2 0,1e-5,1e-4
  mlp search --method random --n-trials 20 --lr log:1e-3:1e-1 --keep-prob-hidden uniform:0.5:1"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help, showing ``--lr LR`` (not ``--lr LR [LR ...]``) for an option of one value."""

    def _format_args(self, action, default_metavar):
        if getattr(action, "one_word", False):
            word = self._metavar_formatter(action, default_metavar)(1)[0]
            return f"[{word}]" if action.nargs == "*" else word
        return super()._format_args(action, default_metavar)


def add_arguments(parser, default_text):
    """Add every option to ``parser``, in argument groups; ``default_text(option)`` is its default's text."""
    parser.formatter_class = HelpFormatter
    groups = {}
    for option in OPTIONS:
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        option.add_to(groups[option.group], default_text(option))


# --------------------------------------------------------------------------- #
# reading what was given
# --------------------------------------------------------------------------- #
def one_value(option, occurrences):
    """What ``mlp train`` trains: the value of an option given once, without an axis."""
    if len(occurrences) > 1:
        raise UsageError(f"{option.flag} is given {len(occurrences)} times: whole alternatives are a search "
                         "axis (mlp search); mlp train trains one configuration")
    values = option.words(occurrences[0])
    for value in values:
        if isinstance(value, (Axis, Draw)):
            raise UsageError(f"{option.flag} {value}: a search axis (mlp search); mlp train trains one "
                             "configuration")
    return option.shape(values)


def candidates(option, occurrences):
    """What ``mlp search`` tries: the list of an option's candidates, or its one ``Draw``."""
    found = []
    for occurrence in occurrences:
        values = option.words(occurrence)
        draws = [v for v in values if isinstance(v, Draw)]
        if draws:
            if len(values) > 1 or len(occurrences) > 1:
                raise UsageError(f"{option.flag} {draws[0]}: a distribution stands alone (one value, given once)")
            return draws[0]
        positions = [v if isinstance(v, Axis) else (v,) for v in values]
        for combination in itertools.product(*positions):
            candidate = option.shape(list(combination))
            if candidate not in found:
                found.append(candidate)
    return found


def given(args):
    """The options given on the command line: {name: occurrences}, in the order of ``OPTIONS``."""
    return {option.name: getattr(args, option.name) for option in OPTIONS if getattr(args, option.name) is not None}
