"""The IDX file format of (Fashion-)MNIST: one file, raw or gzip-compressed, to a NumPy array.

A file costs what it weighs to read, whatever its header claims: only a
regular file is opened (a FIFO or a device like ``/dev/zero`` is refused, see
``mlp.files.open_regular``); the header is read first, and the shape it
declares is checked against ``MAX_IDX_BYTES`` and, for a raw file, against
the file's size, before any data are read. The data then fill the array they
belong to piece by piece, a gzip stream decompressed as it is read and no
further than the declared size plus one piece of trailing bytes, to say how
many there are.
"""
import gzip
import math
import os
import zlib

import numpy as np

from ..checks import check_path
from ..files import open_regular, read_into

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> dtype of the data as stored (big-endian for multi-byte types).
IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: The most data bytes an IDX header may declare: 4 GiB, some 90 times MNIST's training images (47 MB).
MAX_IDX_BYTES = 2**32
# Bytes after the declared data that are read (so decompressed, at most) to tell how much trails them.
TRAILING_BYTES_READ = 2**20


def _read_up_to(f, n):
    """Up to ``n`` bytes of ``f``, fewer only at its end."""
    data = b""
    while len(data) < n:
        piece = f.read(n - len(data))
        if not piece:
            break
        data += piece
    return data


def _header(f, path):
    """(dims, dtype, header bytes) read from the start of the IDX stream ``f``."""
    magic = _read_up_to(f, 4)
    if len(magic) < 4:
        raise ValueError(f"{path}: not an IDX file: {len(magic)} bytes, shorter than the 4-byte magic")
    if magic[0] != 0 or magic[1] != 0:
        raise ValueError(f"{path}: not an IDX file: bad magic {magic.hex()} (the first two bytes must be zero)")
    type_code, ndim = magic[2], magic[3]
    if type_code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise ValueError(f"{path}: bad magic {magic.hex()}: unknown IDX type code 0x{type_code:02X} (known: {known})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    raw = _read_up_to(f, 4 * ndim)
    if len(raw) < 4 * ndim:
        raise ValueError(f"{path}: truncated header: {ndim} dimensions need {header} bytes, "
                         f"file has {4 + len(raw)}")
    dims = tuple(int.from_bytes(raw[4 * i: 4 * i + 4], "big") for i in range(ndim))
    if any(d == 0 for d in dims[1:]):
        raise ValueError(f"{path}: dimension of size zero in shape {dims}")
    return dims, IDX_TYPES[type_code], header


def _check_size(path, dims, dtype, header, size):
    """Refuse a declared shape beyond ``MAX_IDX_BYTES`` or, for a raw file of ``size`` bytes, not its size."""
    need = header + math.prod(dims) * dtype.itemsize
    if size is not None and size < need:
        raise ValueError(f"{path}: truncated: shape {dims} of {dtype.name} needs {need} bytes, file has {size}")
    if size is not None and size > need:
        raise ValueError(f"{path}: {size - need} bytes of trailing garbage after the data of shape {dims} "
                         f"({need} bytes expected)")
    if need - header > MAX_IDX_BYTES:
        raise ValueError(f"{path}: header declares shape {dims} of {dtype.name}, {need - header} bytes, more than "
                         f"the {MAX_IDX_BYTES} an IDX file may hold here")


def _read_stream(f, path, size):
    """The array of the IDX stream ``f`` (a raw file of ``size`` bytes, or a gzip stream when ``size`` is None)."""
    dims, dtype, header = _header(f, path)
    _check_size(path, dims, dtype, header, size)
    array = np.empty(dims, dtype=dtype)
    nbytes, done = array.nbytes, read_into(f, array)
    if done < nbytes:
        raise ValueError(f"{path}: truncated: shape {dims} of {dtype.name} needs {header + nbytes} bytes, "
                         f"the decompressed data have {header + done}")
    if size is None:
        trailing = len(_read_up_to(f, TRAILING_BYTES_READ))
        if trailing:
            count = f"{trailing}" if trailing < TRAILING_BYTES_READ else f"at least {trailing}"
            raise ValueError(f"{path}: {count} bytes of trailing garbage after the data of shape {dims} "
                             f"({header + nbytes} bytes expected)")
    if not dtype.isnative:
        array.byteswap(inplace=True)
        array = array.view(dtype.newbyteorder("="))
    return array


def read_idx_file(path):
    """The array stored in the IDX file at ``path`` (see :func:`read_idx`)."""
    with open_regular(path, "an IDX file") as f:
        head = _read_up_to(f, 2)
        f.seek(0)
        if head != GZIP_MAGIC:
            return _read_stream(f, path, os.fstat(f.fileno()).st_size)
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return _read_stream(g, path, None)
        except EOFError as e:
            raise ValueError(f"{path}: truncated gzip stream ({e})") from None
        except (gzip.BadGzipFile, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from None


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Gzip compression is detected from the content (the magic
        bytes ``1f 8b``), whatever the file name.

    Returns
    -------
    numpy.ndarray
        A new, writable array with the shape stored in the header, in native
        byte order, of dtype ``uint8`` (type code 0x08), ``int8`` (0x09),
        ``int16`` (0x0B), ``int32`` (0x0C), ``float32`` (0x0D) or
        ``float64`` (0x0E).

    Raises
    ------
    ValueError
        The file is not a well-formed IDX file: bad magic (first two bytes not
        zero or unknown type code), zero dimensions, a dimension of size zero
        after the first, truncated header or data, trailing bytes after the
        data, a declared size beyond ``MAX_IDX_BYTES``, or a corrupt gzip
        stream; or it is no regular file (a FIFO, a device). The message names
        the file.
    FileNotFoundError
        The file does not exist.
    IsADirectoryError
        ``path`` is a directory.
    """
    return read_idx_file(check_path("path", path))
