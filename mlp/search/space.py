"""The search space: distributions, the parameters a space may name, its configurations, trial keys.

Each candidate is checked and put in one canonical JSON form (lists, floats,
ints), so that equal configurations hash to the same journal key: keep that
form and :func:`trial_key` as they are, or old journals stop resuming.
"""
import dataclasses
import hashlib
import json
import math
import warnings

import numpy as np

from kernels.codes import ACTIVATIONS

from ..checks import check_bool, check_choice, check_hidden_sizes, check_int, check_real
from ..config import DROPOUT_MODES, LR_SCHEDULES, MONITORS, OPTIMIZERS

METHODS = ("grid", "random")


# --------------------------------------------------------------------------- #
# distributions (random search only)
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class LogUniform:
    """Uniform in log space on [low, high], 0 < low < high: for l2, l1, learning_rate, epsilon."""

    low: float
    high: float

    def __post_init__(self):
        check_real("LogUniform.low", self.low, 0, low_open=True)
        check_real("LogUniform.high", self.high, self.low, low_open=True)

    def sample(self, rng):
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Uniform on [low, high], low < high: for keep probabilities, momentum, beta_1, beta_2, power_t."""

    low: float
    high: float

    def __post_init__(self):
        check_real("Uniform.low", self.low)
        check_real("Uniform.high", self.high, self.low, low_open=True)

    def sample(self, rng):
        return float(rng.uniform(self.low, self.high))


DISTRIBUTIONS = (LogUniform, Uniform)


# --------------------------------------------------------------------------- #
# parameters: how each candidate is checked (``label`` is "space['name']")
# --------------------------------------------------------------------------- #
def _strength(label, x):
    return check_real(label, x, 0)


def _keep(label, x):
    return check_real(label, x, 0, 1, low_open=True)


def _decay_rate(label, x):
    return check_real(label, x, 0, 1, high_open=True)


def _positive(label, x):
    return check_real(label, x, 0, low_open=True)


def _positive_int(label, x):
    return check_int(label, x, minimum=1)


def _non_negative_int(label, x):
    return check_int(label, x, minimum=0)


def _one_or_per_layer(check):
    """A number, or a non-empty sequence of numbers (one per layer) as a list."""
    def one_or_per_layer(label, x):
        if isinstance(x, (list, tuple, np.ndarray)):
            values = [check(label, e) for e in x]
            if not values:
                raise ValueError(f"{label}: a per-layer candidate needs at least one value")
            return values
        return check(label, x)
    return one_or_per_layer


def _one_of(choices):
    def one_of(label, x):
        return check_choice(label, x, choices)
    return one_of


#: The names a search space may use, and how each candidate is checked.
PARAMETERS = {
    "hidden": check_hidden_sizes,
    "l2": _one_or_per_layer(_strength),
    "l1": _one_or_per_layer(_strength),
    "keep_prob": _one_or_per_layer(_keep),
    "keep_prob_input": _keep,
    "keep_prob_hidden": _keep,
    "learning_rate": _positive,
    "optimizer": _one_of(OPTIMIZERS),
    "momentum": _decay_rate,
    "nesterov": check_bool,
    "beta_1": _decay_rate,
    "beta_2": _decay_rate,
    "epsilon": _positive,
    "lr_schedule": _one_of(LR_SCHEDULES),
    "lr_decay": _strength,
    "warmup_epochs": _non_negative_int,
    "power_t": _strength,
    "activation": _one_of(ACTIVATIONS),
    "epochs": _positive_int,
    "batch_size": _positive_int,
    "patience": _positive_int,
    "tol": _strength,
    "dropout_mode": _one_of(DROPOUT_MODES),
    "monitor": _one_of(MONITORS),
    "early_stopping": check_bool,
}
#: Names passed to TrainConfig unchanged (``hidden`` and ``activation`` build the network instead).
CONFIG_NAMES = ("l2", "l1", "keep_prob", "learning_rate", "optimizer", "momentum", "nesterov", "beta_1", "beta_2",
                "epsilon", "lr_schedule", "lr_decay", "warmup_epochs", "power_t", "epochs", "batch_size", "patience",
                "tol", "dropout_mode", "monitor", "early_stopping")
# Parameters whose values are not real numbers drawn from an interval: lists only.
_DISCRETE = ("hidden", "activation", "optimizer", "nesterov", "lr_schedule", "dropout_mode", "monitor",
             "early_stopping", "epochs", "batch_size", "patience", "warmup_epochs")


def check_space(space, method):
    """{name: list of canonical candidates or a distribution}, in the space's order."""
    if not isinstance(space, dict) or not space:
        raise TypeError(f"space must be a non-empty dict of parameter name -> candidates; got {space!r}")
    for name in space:
        check_choice("search parameter", name, PARAMETERS)
    if "keep_prob" in space and ({"keep_prob_input", "keep_prob_hidden"} & set(space)):
        raise ValueError("give either keep_prob or keep_prob_input/keep_prob_hidden, not both")
    return {name: _checked_candidates(name, candidates, method) for name, candidates in space.items()}


def _checked_candidates(name, candidates, method):
    """A distribution as it is, else the distinct canonical candidates in their order."""
    check = PARAMETERS[name]
    label = f"space[{name!r}]"
    if isinstance(candidates, DISTRIBUTIONS):
        if method != "random":
            raise ValueError(f"{label} is a distribution ({candidates!r}): "
                             "distributions need method='random'; give a list for a grid")
        if name in _DISCRETE:
            raise ValueError(f"{label}: a distribution draws real numbers; give a list of "
                             "candidates for this parameter")
        check(label, candidates.low)
        check(label, candidates.high)
        return candidates
    if isinstance(candidates, (list, tuple, np.ndarray)):
        if len(candidates) == 0:
            raise ValueError(f"{label} has no candidates")
        values = [check(label, c) for c in candidates]
    else:
        values = [check(label, candidates)]
    unique = []
    for value in values:
        if value not in unique:
            unique.append(value)
    return unique


def jsonable_space(space):
    """A checked space as JSON: a distribution becomes its bounds and its class name."""
    return {name: (dataclasses.asdict(c) | {"distribution": type(c).__name__}
                   if isinstance(c, DISTRIBUTIONS) else c) for name, c in space.items()}


# --------------------------------------------------------------------------- #
# configurations: the trials' parameter dicts
# --------------------------------------------------------------------------- #
def _grid_size(space):
    return math.prod(len(c) for c in space.values())


def _grid_point(space, index):
    """The index-th point of the product (last name fastest), as a params dict."""
    params = {}
    for name in reversed(list(space)):
        index, i = divmod(index, len(space[name]))
        params[name] = space[name][i]
    return {name: params[name] for name in space}


def configurations(space, method, n_trials, seed, stacklevel=1):
    """The trials' parameter dicts of a checked space, in a reproducible order.

    ``stacklevel``: where the warning about too many random trials points, counted
    as ``warnings.warn`` counts from this function's caller (1: the caller).
    """
    if method == "grid":
        if n_trials is not None:
            raise ValueError("n_trials is for method='random'; a grid runs every combination")
        return [_grid_point(space, i) for i in range(_grid_size(space))]
    if n_trials is None:
        raise ValueError("method='random' needs n_trials")
    n_trials = check_int("n_trials", n_trials, minimum=1)
    rng = np.random.default_rng(seed)
    if all(isinstance(c, list) for c in space.values()):
        size = _grid_size(space)
        if n_trials > size:
            warnings.warn(f"n_trials={n_trials} exceeds the {size} distinct configurations of the space; "
                          f"running all {size}", UserWarning, stacklevel=stacklevel + 1)
        picks = rng.choice(size, size=min(n_trials, size), replace=False)
        return [_grid_point(space, int(i)) for i in picks]
    return [{name: (c.sample(rng) if isinstance(c, DISTRIBUTIONS) else c[int(rng.integers(len(c)))])
             for name, c in space.items()} for _ in range(n_trials)]


def trial_key(params, context):
    """A stable 16-hex-digit key of one trial: its parameters and the data, split and seed it ran with."""
    text = json.dumps({"params": params, "context": context}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
