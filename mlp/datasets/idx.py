"""The IDX file format of (Fashion-)MNIST: one file, raw or gzip-compressed, to a NumPy array."""
import gzip
import math
import zlib

import numpy as np

from ..checks import check_path

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


def _read_bytes(path):
    """The file's bytes, gunzipped when it starts with the gzip magic."""
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head != GZIP_MAGIC:
            return f.read()
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                return g.read()
        except EOFError as e:
            raise ValueError(f"{path}: truncated gzip stream ({e})") from None
        except (gzip.BadGzipFile, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from None


def read_idx_file(path, copy=True):
    """The array stored in the IDX file at ``path`` (see :func:`read_idx`).

    ``copy=False`` may return a read-only view of the bytes read, for a caller
    that converts the array anyway.
    """
    data = _read_bytes(path)
    size = len(data)
    if size < 4:
        raise ValueError(f"{path}: not an IDX file: {size} bytes, shorter than the 4-byte magic")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path}: not an IDX file: bad magic {data[:4].hex()} "
            "(the first two bytes must be zero)")
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise ValueError(
            f"{path}: bad magic {data[:4].hex()}: unknown IDX type code 0x{type_code:02X} "
            f"(known: {known})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if size < header:
        raise ValueError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, file has {size}")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims[1:]):
        raise ValueError(f"{path}: dimension of size zero in shape {dims}")
    dtype = IDX_TYPES[type_code]
    need = header + math.prod(dims) * dtype.itemsize
    if size < need:
        raise ValueError(
            f"{path}: truncated: shape {dims} of {dtype.name} needs {need} bytes, "
            f"file has {size}")
    if size > need:
        raise ValueError(
            f"{path}: {size - need} bytes of trailing garbage after the data of shape {dims} "
            f"({need} bytes expected)")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    native = dtype.newbyteorder("=")
    if arr.dtype != native:
        return arr.astype(native)  # a fresh, writable, native-endian copy
    return arr.copy() if copy else arr


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
        data, or a corrupt gzip stream. The message names the file.
    FileNotFoundError
        The file does not exist.
    """
    return read_idx_file(check_path("path", path), copy=True)
