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

A file costs what it weighs to read, whatever it claims: only a regular file
is opened (``mlp.files.open_regular``), only the members the format names are
read (any other member is never decompressed), and each member's ``.npy``
header is checked before its data are: the shape the layer sizes give a
parameter, at most ``MAX_SMALL_BYTES`` for a name, a number or the layer
sizes, ``MAX_JSON_BYTES`` for JSON text and ``MAX_ARRAY_BYTES`` for any array,
exactly the member's size in the archive, no Python objects. The data are then
read piece by piece into the array they fill, and their CRC-32 checked.
Whatever is wrong, a ValueError names the file, the member and the problem.
"""
import codecs
import io
import json
import math
import os
import zipfile
import zlib

import numpy as np

from . import checks
from ._version import __version__
from .files import atomic_write, open_regular, read_into
from kernels.codes import ACTIVATIONS, OUTPUTS

FORMAT_NAME = "numba-mlp-model"
# Version 2 added the hidden activation: a reader of version 1 would take a tanh network for relu.
FORMAT_VERSION = 2
_HEADER_KEYS = ("format", "format_version", "layer_sizes", "output", "dtype", "library_version", "metadata")
# The most data bytes a member may declare: a name, a number or the layer sizes (8192 layers); JSON text
# (a long training history fits: some 100 bytes an epoch); any array (a layer of a billion float32 weights).
MAX_SMALL_BYTES = 2**16
MAX_JSON_BYTES = 2**26
MAX_ARRAY_BYTES = 2**32
# The longest .npy header read (NumPy's own limit); a header is a short Python dict literal.
MAX_HEADER_BYTES = 10000
# What zipfile and zlib raise on a damaged archive (EOFError for a cut member, ValueError for a bad offset,
# NotImplementedError for a compression method zipfile lacks).
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError)


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


class DamagedFile(ValueError):
    """A numba-mlp file whose member is not what the format says; the message names the file and the member."""


def _npy_header(f):
    """(shape, fortran_order, dtype, header bytes) of the ``.npy`` data ``f`` yields, read and checked."""
    magic = f.read(8)
    if len(magic) < 8 or not magic.startswith(b"\x93NUMPY"):
        raise ValueError(f"is no NumPy array: it lacks the .npy header (it begins with {magic!r})")
    readers = {(1, 0): (2, np.lib.format.read_array_header_1_0), (2, 0): (4, np.lib.format.read_array_header_2_0)}
    if (magic[6], magic[7]) not in readers:
        raise ValueError(f"has .npy format version {magic[6]}.{magic[7]}, which numba-mlp does not read")
    width, reader = readers[magic[6], magic[7]]
    prefix = f.read(width)
    length = int.from_bytes(prefix, "little")
    if len(prefix) < width or length > MAX_HEADER_BYTES:
        raise ValueError(f"has a damaged .npy header ({'cut short' if len(prefix) < width else f'{length} bytes'})")
    try:
        # NumPy parses the header (a dict literal, never evaluated as code) from the bytes read above
        shape, fortran_order, dtype = reader(io.BytesIO(prefix + f.read(length)), max_header_size=MAX_HEADER_BYTES)
    except ValueError as exc:
        raise ValueError(f"has a damaged .npy header ({str(exc).splitlines()[0]})") from None
    if dtype.hasobject:
        raise ValueError("claims to hold Python objects, which numba-mlp never loads")
    if any(d < 0 for d in shape):
        raise ValueError(f"has a damaged .npy header (shape {shape})")
    return shape, fortran_order, dtype, 8 + width + length


def read_array(f, size, shape=None, dtype=None, max_bytes=MAX_ARRAY_BYTES):
    """The array of the ``.npy`` data of ``size`` bytes that the binary file ``f`` yields, checked before it is read.

    The header must announce no Python objects, at most ``max_bytes`` of data,
    exactly ``size`` bytes in all, and ``shape`` and ``dtype`` when they are
    given; only then is the array allocated, and filled piece by piece (a zip
    member's CRC-32 is checked as its last byte is read). Nothing is ever
    unpickled.

    Parameters
    ----------
    f : binary file object, at the start of the ``.npy`` data
    size : int
        The bytes ``f`` holds (a zip member's declared size, a file's size).
    shape : tuple of int, optional
    dtype : numpy.dtype, optional
    max_bytes : int

    Returns
    -------
    numpy.ndarray, writable

    Raises
    ------
    ValueError
        what is wrong, in words that follow the data's name ("has shape ..."); the caller names the data.
    """
    if shape is not None and dtype is not None and size > math.prod(shape) * np.dtype(dtype).itemsize + MAX_HEADER_BYTES:
        raise ValueError(f"declares {size} bytes, but an array of shape {tuple(shape)} of {np.dtype(dtype).name} "
                         f"takes {math.prod(shape) * np.dtype(dtype).itemsize} and a header")
    if size > max_bytes + MAX_HEADER_BYTES:
        raise ValueError(f"declares {size} bytes, more than the {max_bytes} numba-mlp reads")
    found, fortran_order, found_dtype, header = _npy_header(f)
    nbytes = math.prod(found) * found_dtype.itemsize
    if shape is not None and tuple(found) != tuple(shape):
        raise ValueError(f"has shape {found}, expected {tuple(shape)}")
    if dtype is not None and found_dtype != np.dtype(dtype):
        raise ValueError(f"holds {found_dtype}, expected {np.dtype(dtype).name}")
    if nbytes > max_bytes:
        raise ValueError(f"declares shape {found} of {found_dtype} ({nbytes} bytes), more than the {max_bytes} "
                         "numba-mlp reads")
    if header + nbytes != size:
        raise ValueError(f"declares shape {found} of {found_dtype} ({nbytes} bytes) but holds {size - header}: "
                         "the file is truncated or corrupted")
    array = np.empty(math.prod(found), dtype=found_dtype)
    done = read_into(f, array)
    if done < nbytes:
        raise ValueError(f"ends after {done} of its {nbytes} bytes: the file is truncated or corrupted")
    return array.reshape(found[::-1]).T if fortran_order else array.reshape(found)


class ModelArchive:
    """An open numba-mlp file whose members are read one by one, each checked before its data are read.

    Parameters
    ----------
    archive : zipfile.ZipFile
    path : str
        For the messages.
    """

    def __init__(self, archive, path):
        self.archive = archive
        self.path = path
        #: the names of the members (without ``.npy``), read or not
        self.names = {n[:-4] for n in archive.namelist() if n.endswith(".npy")}

    def damaged(self, problem):
        """The DamagedFile to raise for ``problem`` (words that follow the file's name)."""
        return DamagedFile(f"{self.path!r} is a damaged numba-mlp model file: {problem}")

    def array(self, name, shape=None, dtype=None, max_bytes=MAX_ARRAY_BYTES):
        """The array of member ``name`` (see ``read_array``); DamagedFile names the member and the problem."""
        info = self.archive.getinfo(name + ".npy")
        if info.flag_bits & 0x1:
            raise self.damaged(f"member {name!r} is encrypted")
        with self.archive.open(info) as f:
            try:
                return read_array(f, info.file_size, shape, dtype, max_bytes)
            except zipfile.BadZipFile:
                raise  # a CRC-32 error: the file is corrupted, which read_npz says
            except ValueError as exc:
                raise self.damaged(f"member {name!r} {exc}") from None

    def scalar(self, name, kinds, max_bytes=MAX_SMALL_BYTES):
        """The single value of member ``name``, of a dtype kind in ``kinds`` ("U": text, "iu": an integer)."""
        value = self.array(name, max_bytes=max_bytes)
        if value.ndim != 0 or value.dtype.kind not in kinds:
            wanted = "text" if kinds == "U" else "an integer"
            raise self.damaged(f"member {name!r} must hold {wanted}; it holds {value.dtype}{value.shape}")
        return value


def _read_model(archive):
    """The members of a model from the open ``archive`` (a ModelArchive), in the order that bounds each next one."""
    if "format" not in archive.names or str(archive.array("format", max_bytes=MAX_SMALL_BYTES)) != FORMAT_NAME:
        raise _Foreign(f"a .npz archive without the '{FORMAT_NAME}' format marker; "
                       f"its members: {sorted(archive.names)[:8]}")
    missing = [k for k in _HEADER_KEYS if k not in archive.names]
    if missing:
        raise archive.damaged(f"members {missing} are missing")
    version = int(archive.scalar("format_version", "iu"))
    if version > FORMAT_VERSION:
        raise DamagedFile(f"{archive.path!r} has model format version {version}, written by numba-mlp "
                          f"{archive.scalar('library_version', 'U')}; this numba-mlp ({__version__}) reads versions "
                          f"up to {FORMAT_VERSION}: upgrade numba-mlp to load it")
    if version < 1:
        raise archive.damaged(f"invalid model format version {version}")
    arrays = {"format": np.array(FORMAT_NAME), "format_version": np.array(version, dtype=np.int64)}
    for key in ("output", "activation", "dtype", "library_version", "metadata"):
        if key in archive.names:
            arrays[key] = archive.scalar(key, "U", MAX_JSON_BYTES if key == "metadata" else MAX_SMALL_BYTES)
    sizes = arrays["layer_sizes"] = archive.array("layer_sizes", max_bytes=MAX_SMALL_BYTES)
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
        raise archive.damaged(f"member 'layer_sizes' must hold integers; it holds {sizes.dtype}{sizes.shape}")
    try:
        layer_sizes = checks.check_layer_sizes(sizes.tolist())
        dtype = checks.check_dtype(str(arrays["dtype"]))
    except (TypeError, ValueError) as exc:
        raise archive.damaged(str(exc)) from None
    for l in range(len(layer_sizes) - 1):
        for name, shape in ((f"W{l}", (layer_sizes[l + 1], layer_sizes[l])), (f"b{l}", (layer_sizes[l + 1],))):
            if name not in archive.names:
                raise archive.damaged(f"layer {l} parameters are missing")
            arrays[name] = archive.array(name, shape, dtype)
    return arrays


def read_npz(path, more=None):
    """The members of a numba-mlp file as a dict of arrays, checked to be a readable model file.

    Reads the members of a model only (see the module's docstring); ``more``
    reads further ones (a trainer checkpoint's, ``mlp.checkpoint``). The first
    bytes say what a file that is no ``.npz`` archive is (text, a pickle, a
    single ``.npy`` array, gzip, empty...); nothing in it is ever unpickled,
    and no message suggests unpickling.

    Parameters
    ----------
    path : str or os.PathLike
    more : callable(ModelArchive, dict) -> dict, optional
        Called with the open file and the model's members; what it returns is
        added to them. It reads with ``ModelArchive.array`` and ``scalar``.

    Returns
    -------
    dict of str to numpy.ndarray

    Raises
    ------
    ValueError
        the file is truncated, corrupted, foreign (not a numba-mlp model: the
        message says what it looks like) or of a newer format, one of its
        members is not what the format says (the message names it), or it is
        no regular file (a FIFO, a device); the message names the path.
    FileNotFoundError
        there is no file at ``path``.
    IsADirectoryError
        ``path`` is a directory. An ``OSError`` like a missing file, rather than
        a ``ValueError``: the path names no file at all, and it is what
        ``open`` raises for it.
    """
    path = os.fspath(path)
    with open_regular(path, "a numba-mlp model file") as f:
        head = f.read(SNIFF_BYTES)
        foreign = f"{path!r} is not a numba-mlp model file (a numba-mlp model is a .npz archive; this file is "
        if not head.startswith(ZIP_MAGIC):
            raise ValueError(foreign + describe_contents(head) + ")")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as zipped:
                archive = ModelArchive(zipped, path)
                arrays = _read_model(archive)
                if more is not None:
                    arrays.update(more(archive, arrays))
        except _Foreign as exc:
            raise ValueError(f"{foreign}{exc})") from None
        except DamagedFile:
            raise
        except _READ_ERRORS as exc:
            raise ValueError(f"{path!r} cannot be read as a numba-mlp model: the file is truncated or "
                             f"corrupted ({type(exc).__name__}: {exc})") from None
    return arrays


def parse_json(text, member, path):
    """The value of the JSON ``text`` of ``member`` of the file at ``path``; ValueError naming both when it is none."""
    path = os.fspath(path)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path!r} is a damaged numba-mlp model file: member {member!r} is not JSON ({exc})") from None
    except RecursionError:
        raise ValueError(f"{path!r} is a damaged numba-mlp model file: member {member!r} holds JSON nested "
                         "too deeply to read") from None


def parse_model(arrays, path="<arrays>"):
    """(layer_sizes, output, activation, dtype, weights, biases, metadata) from a model file's members, all checked."""
    path = os.fspath(path)
    try:
        layer_sizes = checks.check_layer_sizes(arrays["layer_sizes"].tolist())
        output = str(arrays["output"])
        activation = str(arrays["activation"]) if "activation" in arrays else "relu"
        dtype = checks.check_dtype(str(arrays["dtype"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path!r} is a damaged numba-mlp model file: {exc}") from None
    metadata = parse_json(str(arrays["metadata"]), "metadata", path)
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
