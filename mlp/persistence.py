"""Saving and loading models (and the trainer's checkpoints) as ``.npz`` files.

File layout (NumPy ``.npz``, read with ``allow_pickle=False``; no pickles):

    format            "numba-mlp-model"
    format_version    int, ``FORMAT_VERSION`` of the writer
    layer_sizes       int64 (L+1,)
    output            "softmax" | "identity" | "logistic" | "exp"  (``kernels.codes.OUTPUTS``)
    activation        the hidden activation, ``kernels.codes.ACTIVATIONS`` (version 2; a
                      version-1 file, written before activations other than relu, is relu)
    dtype             "float32" | "float64"
    library_version   numba-mlp version that wrote the file
    metadata          JSON text (training hyper-parameters, anything JSON-serialisable)
    W0 .. W{L-1}      weights[l] (layer_sizes[l+1], layer_sizes[l])
    b0 .. b{L-1}      biases[l] (layer_sizes[l+1],)

A trainer checkpoint is a model file with more members (``checkpoint`` JSON
and ``ckpt_*`` arrays, see ``mlp.checkpoint``), so ``mlp.load_model`` also
reads the live parameters out of a checkpoint.

This module knows the file format only; ``mlp.model.load_model`` builds the
network from what ``read_npz`` and ``parse_model`` return. Every file is
written atomically (``mlp.files.atomic_write``): a failed or interrupted save
leaves any previous file intact.
"""
import codecs
import json
import os
import zipfile
import zlib

import numpy as np

from . import checks
from ._version import __version__
from .files import atomic_write
from kernels.codes import ACTIVATIONS, OUTPUTS

FORMAT_NAME = "numba-mlp-model"
# Version 2 added the hidden activation: a reader of version 1 would take a tanh network for relu.
FORMAT_VERSION = 2
_HEADER_KEYS = ("format", "format_version", "layer_sizes", "output", "dtype", "library_version", "metadata")
# What np.load / zipfile raise on a damaged archive (zlib for compressed members, ValueError for a
# member whose .npy header is damaged or announces Python objects).
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, KeyError, UnicodeDecodeError)


# ---------------------------------------------------------------- files
def write_npz(path, arrays):
    """Write a dict of arrays as an uncompressed ``.npz`` at exactly ``path``, atomically."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


# ---------------------------------------------------------------- models
def _metadata_json(metadata):
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict (JSON-serialisable); got {type(metadata).__name__}")
    try:
        return json.dumps(metadata, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metadata must be JSON-serialisable: {exc}") from None


def model_arrays(net, metadata=None):
    """The members of a model file for ``net`` (host copies of its parameters)."""
    meta = _metadata_json(net.metadata if metadata is None else metadata)
    weights, biases = net.get_parameters()
    for l, (W, b) in enumerate(zip(weights, biases)):
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"refusing to save: layer {l} parameters contain NaN or inf")
    arrays = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "layer_sizes": np.array(net.layer_sizes, dtype=np.int64),
        "output": np.array(net.output),
        "activation": np.array(net.activation),
        "dtype": np.array(np.dtype(net.dtype).name),
        "library_version": np.array(__version__),
        "metadata": np.array(meta),
    }
    for l, (W, b) in enumerate(zip(weights, biases)):
        arrays[f"W{l}"] = W
        arrays[f"b{l}"] = b
    return arrays


def save_model(net, path, metadata=None):
    """Save ``net`` to ``path`` (written exactly there, atomically; ``.npz`` is not appended).

    Parameters
    ----------
    net : mlp.MLP (or anything with its ``layer_sizes``, ``output``, ``dtype``,
        ``metadata`` and ``get_parameters``)
    path : str or os.PathLike
    metadata : dict or None
        JSON-serialisable; None saves ``net.metadata`` (the trainer puts its
        hyper-parameters there).

    Raises
    ------
    TypeError
        metadata is not a JSON-serialisable dict.
    ValueError
        the parameters contain NaN or inf (never saved).
    """
    write_npz(path, model_arrays(net, metadata))


# What a .npz archive (a zip file) begins with: a local file header, or the end record of an empty archive.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# Enough of a file's beginning to tell what it is, and to quote a line of text.
SNIFF_BYTES = 512
QUOTE_CHARS = 40


def describe_contents(head):
    """What a file that is no zip archive looks like from its first bytes ``head``, for "this file is ...".

    Never suggests loading pickles: a model file never holds any, and
    unpickling a stranger's file runs its code.
    """
    if not head:
        return "empty"
    if head.startswith(b"\x93NUMPY"):
        return "a single NumPy array (.npy), not an archive of arrays"
    if head.startswith(b"\x80"):
        return "a Python pickle, which numba-mlp never loads"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed: decompress it first if it holds a model"
    try:
        # an incremental decoder accepts a character cut at the end of ``head``
        text = codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        text = None
    if text is not None and "\0" not in text:
        first = text.strip().splitlines()[0] if text.strip() else ""
        return f"text, beginning {first[:QUOTE_CHARS]!r}"
    return f"binary data of an unknown kind, beginning with the bytes {head[:8].hex(' ')}"


class _Foreign(Exception):
    """Raised inside read_npz for a readable archive that is not ours."""


def _damage(exc):
    """The reason numpy or zipfile gives for a damaged archive, unless it advises loading pickles.

    ``np.load`` suggests ``allow_pickle`` for an object array, which a damaged
    header can also announce: a model never holds one, and that advice would
    invite running untrusted code.
    """
    text = str(exc)
    if "pickle" in text.lower():
        return "a member claims to hold Python objects, which a model never does"
    return f"{type(exc).__name__}: {text}"


def read_npz(path):
    """All members of a numba-mlp file as a dict of arrays, checked to be a readable model file.

    The first bytes say what a file that is no ``.npz`` archive is (text, a
    pickle, a single ``.npy`` array, gzip, empty...); nothing in it is ever
    unpickled, and no message suggests unpickling.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict of str to numpy.ndarray

    Raises
    ------
    ValueError
        the file is truncated, corrupted, foreign (not a numba-mlp model: the
        message says what it looks like) or of a newer format; the message
        names the path.
    FileNotFoundError
        there is no file at ``path``.
    IsADirectoryError
        ``path`` is a directory. An ``OSError`` like a missing file, rather than
        a ``ValueError``: the path names no file at all, and it is what
        ``open`` raises for it.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory, not a numba-mlp model file")
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise FileNotFoundError(f"no model file at {path!r}") from None
    foreign = f"{path!r} is not a numba-mlp model file (a numba-mlp model is a .npz archive; this file is "
    if not head.startswith(ZIP_MAGIC):
        raise ValueError(foreign + describe_contents(head) + ")")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            if "format" not in names or str(npz["format"]) != FORMAT_NAME:
                raise _Foreign(f"a .npz archive without the '{FORMAT_NAME}' format marker; "
                               f"its members: {sorted(names)[:8]}")
            # reading every member checks every member's CRC-32
            arrays = {name: npz[name] for name in npz.files}
    except _Foreign as exc:
        raise ValueError(f"{foreign}{exc})") from None
    except _READ_ERRORS as exc:
        raise ValueError(f"{path!r} cannot be read as a numba-mlp model: the file is truncated or "
                         f"corrupted ({_damage(exc)})") from None
    missing = [k for k in _HEADER_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path!r} is a damaged numba-mlp model file: members {missing} are missing")
    version = int(arrays["format_version"])
    if version > FORMAT_VERSION:
        raise ValueError(f"{path!r} has model format version {version}, written by numba-mlp "
                         f"{arrays['library_version']}; this numba-mlp ({__version__}) reads versions up to "
                         f"{FORMAT_VERSION}: upgrade numba-mlp to load it")
    if version < 1:
        raise ValueError(f"{path!r} has an invalid model format version {version}")
    return arrays


def parse_model(arrays, path="<arrays>"):
    """(layer_sizes, output, activation, dtype, weights, biases, metadata) from a model file's members, all checked."""
    try:
        layer_sizes = checks.check_layer_sizes(arrays["layer_sizes"].tolist())
        output = str(arrays["output"])
        activation = str(arrays["activation"]) if "activation" in arrays else "relu"
        dtype = checks.check_dtype(str(arrays["dtype"]))
        metadata = json.loads(str(arrays["metadata"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path!r} is a damaged numba-mlp model file: {exc}") from None
    if output not in OUTPUTS:
        raise ValueError(f"{path!r} is a damaged numba-mlp model file: unknown output {output!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{path!r} is a damaged numba-mlp model file: unknown activation {activation!r}")
    if not isinstance(metadata, dict):
        raise ValueError(f"{path!r} is a damaged numba-mlp model file: metadata is not a JSON object")
    weights, biases = [], []
    for l in range(len(layer_sizes) - 1):
        shape_w = (layer_sizes[l + 1], layer_sizes[l])
        shape_b = (layer_sizes[l + 1],)
        W = arrays.get(f"W{l}")
        b = arrays.get(f"b{l}")
        if W is None or b is None:
            raise ValueError(f"{path!r} is a damaged numba-mlp model file: layer {l} parameters are missing")
        if W.shape != shape_w or b.shape != shape_b or W.dtype != dtype or b.dtype != dtype:
            raise ValueError(f"{path!r} is a damaged numba-mlp model file: layer {l} parameters are "
                             f"{W.dtype}{W.shape} and {b.dtype}{b.shape}, expected "
                             f"{np.dtype(dtype).name}{shape_w} and {shape_b}")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"{path!r} is a damaged numba-mlp model file: layer {l} contains NaN or inf")
        weights.append(W)
        biases.append(b)
    return layer_sizes, output, activation, dtype, weights, biases, metadata
