"""The one vocabulary of argument checks: bad input gets an error that names the problem.

Every public boundary (the model, the trainer's configuration, the estimators,
the search, the data loaders, the command line) checks its arguments with
these functions, so one kind of mistake reads the same everywhere:

    TypeError   "<name> must be an integer; got 2.5"
    ValueError  "<name> must be >= 1; got 0"
    ValueError  "<name> must lie in (0, 1]; got 1.5"    ("must be > 0" for one bound)
    ValueError  "unknown <name> 'x'; expected one of (...)"

``name`` is what the caller calls the value (``"TrainConfig.epochs"``,
``"space['l2']"``, ``"max_iter"``), so the message points at what to change.
Each function returns the value in its canonical type (``int``, ``float``,
``list``...).

Arrays (``check_X``, ``check_labels``, ``check_targets``, ``check_sample_weight``)
are read by ``numeric_array`` and converted by ``to_dtype``, so that no input is
silently changed:

    TypeError   "X is None; expected an array of numbers"
    TypeError   "X is a sparse csr_matrix; a dense array is needed here: pass X.toarray()"
    TypeError   "X has complex values; ..."          (never cut to the real part)
    TypeError   "X must be numeric; X[0, 1] is 'a' (str)"
    ValueError  "X is a ragged list: row 0 has 3 values, row 1 has 2 values"
    ValueError  "X holds 1e+300 at row 0, column 2, beyond the range of float32 ..."
    ValueError  "X contains NaN at row 3, column 1"

Booleans are numbers (False 0, True 1); an object array is accepted when every
element is a real number (int64 when all are integers, else float64).
"""
import inspect
import math
import numbers
import os
import warnings
from pathlib import Path

import numpy as np

DTYPES = (np.float32, np.float64)
SEED_BOUND = 2 ** 63  # seeds feed the counter-based generator: 64-bit unsigned, kept below 2**63


# ---------------------------------------------------------------- scalars
def is_int(value):
    """True for an integer that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value):
    """True for a real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(name, value, minimum=None):
    """``value`` as an int (>= ``minimum`` when given)."""
    if not is_int(value):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def bounds_text(low, high, low_open=False, high_open=False):
    """``"be > 0"``, ``"be >= 0"`` or ``"lie in [0, 1)"``: what a value between the bounds must do."""
    if high == math.inf:
        return f"be {'>' if low_open else '>='} {low:g}"
    if low == -math.inf:
        return f"be {'<' if high_open else '<='} {high:g}"
    return f"lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_real(name, value, low=-math.inf, high=math.inf, *, low_open=False, high_open=False):
    """``value`` as a finite float between ``low`` and ``high`` (each bound open or closed)."""
    if not is_real(value):
        raise TypeError(f"{name} must be a number; got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise ValueError(f"{name} must {bounds_text(low, high, low_open, high_open)}; got {value}")
    return value


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_seed(name, value, *, allow_none=False):
    """A seed of the counter-based generator: an integer in [0, 2**63) (or None when ``allow_none``)."""
    if value is None and allow_none:
        return None
    accepted = "an integer in [0, 2**63)" + (" or None" if allow_none else "")
    if not is_int(value):
        raise TypeError(f"{name} must be {accepted}; got {value!r}")
    if not 0 <= value < SEED_BOUND:
        raise ValueError(f"{name} must be {accepted}; got {value}")
    return int(value)


def check_callable(name, value):
    """A callable or None."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None; got {type(value).__name__}")
    return value


def check_dtype(dtype):
    """float32 or float64 (as the NumPy scalar type) from anything ``np.dtype`` understands."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64; got {dtype!r}") from None
    if dt.type not in DTYPES:
        raise TypeError(f"dtype must be float32 or float64; got {dt}")
    return dt.type


def check_sample_weight(weights, n):
    """(n,) float64 finite sample weights, not all zero (negative ones are allowed, as scikit-learn allows them)."""
    w = numeric_array("sample_weight", weights)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), one weight per example; got {w.shape}")
    w = to_dtype("sample_weight", w, np.float64)
    if n and not w.any():
        raise ValueError("sample_weight is zero everywhere: nothing would be learnt")
    return w


# ---------------------------------------------------------------- network shape
def check_hidden_sizes(name, value):
    """Hidden layer sizes of one network: an int (one layer) or a sequence of ints >= 1 (``()``: none)."""
    if is_int(value):
        value = (value,)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be an int or a sequence of ints (the hidden layer sizes of one "
                        f"network); got {value!r}")
    sizes = list(value)
    for s in sizes:
        if not is_int(s):
            raise TypeError(f"{name} must hold integers; got {s!r} in {value!r}")
        if s < 1:
            raise ValueError(f"{name}: every layer size must be >= 1; got {s} in {value!r}")
    return [int(s) for s in sizes]


def check_layer_sizes(layer_sizes):
    try:
        sizes = list(layer_sizes)
    except TypeError:
        raise TypeError(f"layer_sizes must be a sequence of ints (input first); got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size; got {sizes}")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"layer_sizes must hold integers; got {s!r} in {sizes}")
        if s < 1:
            raise ValueError(f"every layer size must be >= 1; got {s} in {sizes}")
    return [int(s) for s in sizes]


def check_choice(name, value, choices):
    """``value`` when it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {tuple(choices)}")
    return value


# ---------------------------------------------------------------- arrays
def is_sparse(value):
    """True for a scipy.sparse matrix or array, told by its module: ``import mlp`` does not need scipy."""
    return type(value).__module__.startswith("scipy.sparse")


def numeric_array(name, A):
    """``A`` as a NumPy array of bool, integer or real floating values, any shape; or an error naming ``name``.

    Refused: None, a scipy.sparse matrix (the caller needs a dense array), a ragged
    nested list, complex values (whose imaginary part a conversion would drop with
    only NumPy's ComplexWarning) and anything that is not a number. An object
    array whose elements are all real numbers becomes an array of int64 or float64.
    """
    if A is None:
        raise TypeError(f"{name} is None; expected an array of numbers")
    if is_sparse(A):
        raise TypeError(f"{name} is a sparse {type(A).__name__}; a dense array is needed here: pass {name}.toarray()")
    try:
        A = np.asarray(A)
    except (TypeError, ValueError) as exc:
        ragged = ragged_message(name, A)
        raise ValueError(ragged) if ragged else TypeError(f"{name} is not an array of numbers: {exc}") from None
    if A.dtype.kind == "c":
        raise TypeError(f"{name} has complex values; only real numbers are accepted: pass {name}.real "
                        "if the imaginary parts are meant to be dropped")
    if A.dtype.kind == "O":
        return real_objects(name, A)
    if A.dtype.kind not in "biuf":
        example = f" such as {A.flat[0].item()!r}" if A.size else ""
        raise TypeError(f"{name} must be numeric; got dtype {A.dtype}{example}")
    return A


def real_objects(name, A):
    """The object array ``A`` as numbers when every element is a real number; TypeError naming the first that is not."""
    for index, value in np.ndenumerate(A):
        if isinstance(value, (numbers.Real, np.bool_)):
            continue
        where = f"{name}[{', '.join(map(str, index))}]" if index else name
        if isinstance(value, numbers.Complex):
            raise TypeError(f"{name} has complex values ({where} is {value!r}); only real numbers are accepted")
        raise TypeError(f"{name} must be numeric; {where} is {value!r} ({type(value).__name__})")
    values = np.array(A.tolist())  # the dtype NumPy gives the numbers themselves: int64 for ints (labels)
    return values if values.dtype.kind in "biuf" else A.astype(np.float64)


def ragged_message(name, value):
    """``"X is a ragged list: row 0 has 3 values, row 1 has 2 values"``, or None when ``value`` is not ragged.

    Compares the lengths of all the nested sequences of one depth, depth by depth,
    so that rows which differ only deeper down are found too. Only nested lists and
    object arrays can be ragged: anything else is None at once, whatever its size.
    """
    if not isinstance(value, (list, tuple)) and not (isinstance(value, np.ndarray) and value.dtype == object):
        return None
    level = [((), value)]
    while level:
        lengths = [(path, nested_length(node)) for path, node in level]
        (first, first_length) = lengths[0]
        for path, length in lengths[1:]:
            if length != first_length:
                return (f"{name} is a ragged list: {place(name, first)} {size_text(first_length)}, "
                        f"{place(name, path)} {size_text(length)}")
        level = [(path + (i,), child) for path, node in level if nested_length(node) is not None
                 for i, child in enumerate(node)]
    return None


def nested_length(node):
    """The length of a list, tuple or array that is not 0-d; None for anything else (a number)."""
    if isinstance(node, (list, tuple)) or (isinstance(node, np.ndarray) and node.ndim):
        return len(node)
    return None


def place(name, path):
    return f"row {path[0]}" if len(path) == 1 else name + "".join(f"[{i}]" for i in path)


def size_text(length):
    return "is a single number" if length is None else f"has {length} value{'' if length == 1 else 's'}"


def where_text(index):
    """``"row 2, column 3"`` for a 2-D index, ``"position 4"`` for a 1-D one."""
    if len(index) == 2:
        return f"row {index[0]}, column {index[1]}"
    return f"position {index[0]}" if len(index) == 1 else f"index {tuple(int(i) for i in index)}"


def to_dtype(name, A, dtype):
    """The numeric array ``A`` as a C-contiguous array of ``dtype`` whose values are all finite.

    A value that is finite in ``A`` but beyond ``dtype``'s range (1e300 into
    float32) is told apart from a NaN or inf already in ``A``; the message
    names the first bad element's position either way.
    """
    with np.errstate(over="ignore"):  # an overflow is reported below, with its position, not as NumPy's warning
        out = np.ascontiguousarray(A, dtype=dtype)
    if all_finite(out):
        return out
    index = tuple(int(i) for i in np.unravel_index(np.flatnonzero(~np.isfinite(out))[0], out.shape))
    value = A[index]
    if np.isfinite(value):
        info = np.finfo(dtype)
        wider = ", or compute in float64" if info.bits < 64 else ""
        raise ValueError(f"{name} holds {float(value):g} at {where_text(index)}, beyond the range of "
                         f"{np.dtype(dtype).name} (magnitudes up to {float(info.max):.4g}): scale {name} down{wider}")
    raise ValueError(f"{name} contains {'NaN' if np.isnan(value) else 'inf'} at {where_text(index)}")


def check_array_2d(name, A, dtype, n_cols=None):
    """``A`` as a C-contiguous finite (n >= 1, n_cols) array of ``dtype``: ``numeric_array``, then ``to_dtype``."""
    A = numeric_array(name, A)
    if A.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {A.shape}")
    if A.shape[0] < 1:
        raise ValueError(f"{name} has no rows; got shape {A.shape}")
    if n_cols is not None and A.shape[1] != n_cols:
        raise ValueError(f"{name} must have {n_cols} columns; got shape {A.shape}")
    return to_dtype(name, A, dtype)


FINITE_CHUNK = 1 << 20  # elements per chunk of ``all_finite``: its boolean buffer stays in cache


def all_finite(A):
    """``np.isfinite(A).all()`` chunk by chunk, through one small reused buffer, stopping at the first bad chunk.

    The one-call form makes a boolean temporary the size of A (47 MB for Fashion-MNIST's training set),
    whose fresh pages tripled the check's time (18-66 ms against 12 ms, 2026-11-30): a one-epoch fit spent
    as much on it as on a tenth of its epoch.
    """
    flat = A.reshape(-1)
    buffer = np.empty(min(flat.size, FINITE_CHUNK), bool)
    for start in range(0, flat.size, FINITE_CHUNK):
        part = flat[start:start + FINITE_CHUNK]
        out = buffer[:part.size]
        np.isfinite(part, out=out)
        if not out.all():
            return False
    return True


class UnscaledInputWarning(UserWarning):
    """Training inputs that look unscaled (raw 0-255 pixels, integers): the network will train badly on them.

    Filter it with ``warnings.filterwarnings("ignore", category=mlp.checks.UnscaledInputWarning)``.
    """


# Where this package's frames are: the warning points at the first frame outside it (the user's call).
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
PIXEL_MAX = 255  # the largest 8-bit pixel value


def stacklevel_outside_package():
    """The ``stacklevel`` that makes a ``warnings.warn`` in the calling function point outside numba-mlp.

    The same warning is reached through ``net.fit``, ``mlp.fit``, ``Trainer.fit``
    or an estimator, so no fixed stacklevel points at the user's line.
    """
    frame, level = inspect.currentframe().f_back, 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def all_whole_numbers(A):
    """True when every element of the float array ``A`` is a whole number; chunk by chunk, stopping early.

    Real-valued data stops in its first chunk, so only data that is whole
    numbers (and will be warned about) is read to the end.
    """
    flat = A.reshape(-1)
    for start in range(0, flat.size, FINITE_CHUNK):
        part = flat[start:start + FINITE_CHUNK]
        if (np.floor(part) != part).any():
            return False
    return True


def warn_if_unscaled(name, X):
    """Warn (``UnscaledInputWarning``) when the training inputs ``X`` look unscaled.

    The initial weights (std ``1/sqrt(cols(W))``) assume inputs of about unit
    size; raw 0-255 pixels make the first layer's pre-activations hundreds of
    times too large, and training stalls (accuracy 0.20 on digits). Warned
    about: integers whose maximum exceeds 1, and floats in [0, 255] with a
    maximum above 1 that are all whole numbers. Standardised or [0, 1] data
    costs one ``max`` (standardised data one ``min`` more).

    Call it on ``X`` as the user passed it, before converting it to the
    network's dtype, so that the message names the user's dtype. Anything
    that is no numeric array passes silently: the checks proper report it.

    Parameters
    ----------
    name : str
        What the caller calls ``X`` (``"X"``).
    X : array-like or scipy.sparse matrix
        For a sparse matrix, its stored values are looked at.
    """
    try:
        # Every sparse format (dok, lil... included) has tocsr; only csr holds its values in .data
        values = np.asarray(X.tocsr().data if hasattr(X, "tocsr") else X)
    except (TypeError, ValueError):  # ragged lists and the like
        return
    integer = np.issubdtype(values.dtype, np.integer)
    if values.size == 0 or not (integer or np.issubdtype(values.dtype, np.floating)):
        return
    high = values.max()
    if not high > 1:  # also False for NaN, which check_X reports
        return
    low = values.min()
    pixels = 0 <= low and high <= PIXEL_MAX
    if pixels and (integer or all_whole_numbers(values)):
        # Raw pixels reach well past half of 255; smaller counts (digits' 0-16) are scaled by their own maximum.
        scale = PIXEL_MAX if high > PIXEL_MAX // 2 else high
        kind = f"unscaled 0-{PIXEL_MAX} pixel data" if scale == PIXEL_MAX else f"unscaled counts in [0, {high:g}]"
        message = (f"{name} looks like {kind} (dtype {values.dtype}, max {high:g}): divide by {scale:g} so inputs "
                   f"are in [0, 1] as the initialisation std 1/sqrt(cols(W)) assumes")
    elif integer:
        message = (f"{name} holds unscaled integers (dtype {values.dtype}, values in [{low}, {high}]): scale "
                   f"them to about [0, 1] (or standardise them) as the initialisation std 1/sqrt(cols(W)) assumes")
    else:
        return
    warnings.warn(message, UnscaledInputWarning, stacklevel=stacklevel_outside_package())


def check_X(X, n_features, dtype, name="X"):
    """X as a C-contiguous (n, n_features) array of ``dtype``, finite; ``name`` is what the caller calls it."""
    return check_array_2d(name, X, dtype, n_features)


def check_labels(Y, n, n_classes, name="Y"):
    """Integer labels (n,) in [0, n_classes), from labels or from a one-hot (n, n_classes) array."""
    Y = numeric_array(name, Y)
    if Y.ndim == 2:
        if Y.shape != (n, n_classes):
            raise ValueError(f"one-hot {name} must have shape ({n}, {n_classes}); got {Y.shape}")
        if np.issubdtype(Y.dtype, np.floating) and not np.isfinite(Y).all():
            raise ValueError(f"{name} contains NaN or inf")
        if not (np.isin(Y, (0, 1)).all() and (Y.sum(axis=1) == 1).all()):
            raise ValueError(f"a 2-D {name} must be one-hot: each row all zeros but a single 1")
        return np.ascontiguousarray(Y.argmax(axis=1), dtype=np.int64)
    if Y.ndim != 1:
        raise ValueError(f"{name} must be labels of shape ({n},) or one-hot ({n}, {n_classes}); got shape {Y.shape}")
    if Y.shape[0] != n:
        raise ValueError(f"{name} has {Y.shape[0]} labels but X has {n} rows")
    if np.issubdtype(Y.dtype, np.floating):
        if not np.isfinite(Y).all():
            raise ValueError(f"{name} contains NaN or inf")
        raise TypeError(f"class labels must be integers; got dtype {Y.dtype} in {name}")
    if Y.dtype == bool:
        raise TypeError(f"class labels must be integers; got dtype bool in {name}")
    if Y.min() < 0 or Y.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}); got values in [{Y.min()}, {Y.max()}] in {name}")
    return np.ascontiguousarray(Y, dtype=np.int64)


def check_targets(Y, n, n_outputs, dtype, name="Y"):
    """Regression targets as (n, n_outputs) of ``dtype``; (n,) is accepted for one output."""
    Y = numeric_array(name, Y)
    if Y.ndim == 1 and n_outputs == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2 or Y.shape[1] != n_outputs:
        raise ValueError(f"{name} must have shape ({n}, {n_outputs}); got {Y.shape}")
    if Y.shape[0] != n:
        raise ValueError(f"{name} has {Y.shape[0]} rows but X has {n}")
    return check_array_2d(name, Y, dtype, n_outputs)


# ---------------------------------------------------------------- per-layer hyper-parameters
def per_layer(name, value, n_layers):
    """A scalar or one value per weight matrix -> list of n_layers non-negative floats."""
    values = [value] * n_layers if np.ndim(value) == 0 else list(value)
    if len(values) != n_layers:
        raise ValueError(f"{name} needs one value per weight matrix ({n_layers}); got {len(values)}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be a number or a sequence of numbers; got {v!r}")
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be finite and >= 0; got {v}")
        out.append(float(v))
    return out


def check_keep_probs(keep_prob, n_masked):
    """A scalar or one keep probability per non-output layer (input first) -> list in (0, 1]."""
    values = [keep_prob] * n_masked if np.ndim(keep_prob) == 0 else list(keep_prob)
    if len(values) != n_masked:
        raise ValueError(
            f"keep_prob needs one value for the input and each hidden layer ({n_masked}); got {len(values)}")
    out = []
    for p in values:
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"keep probabilities must be numbers; got {p!r}")
        if not (0 < p <= 1):
            raise ValueError(f"keep probability must lie in (0, 1]; got {p}")
        out.append(float(p))
    return out


# ---------------------------------------------------------------- files
def check_path(name, value):
    """A file-system path (``str`` or ``os.PathLike``) as a ``pathlib.Path``."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike; got {type(value).__name__}")
    return Path(value)
