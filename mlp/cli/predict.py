"""``mlp predict``: a saved classifier's predictions for new examples: the class and its probability.

``mlp predict MODEL INPUT`` reads the examples of INPUT: an ``.npy`` file (one
array), an ``.npz`` file (its one array, or the one named ``X``), an IDX file
as (Fashion-)MNIST's (``t10k-images-idx3-ubyte``, raw or gzip-compressed), or
an image (PNG, JPEG...; needs Pillow), one example, made grayscale and resized
to the model's input when that is square. Images (n, 28, 28) are flattened to
(n, 784); a 1-D array of the model's width is one example. Pixels as bytes
(uint8, or any value above 1) are divided by 255, with a notice: the data
sets' features lie in [0, 1]. (Fashion-MNIST's and MNIST's images are light
objects on a black background: invert a dark drawing on white paper first.)

It prints one line per example: its index, the predicted class and that
class's probability (``--top K``: the K most probable classes), or with
``--out FILE`` writes a CSV of one row per example: the index, the predicted
class, its probability and the probability of every class.

Exit status: 0 on success; 2 for bad arguments, a missing or unreadable model
or input, or an input whose width does not fit the model.
"""
import csv
import io
import math
import os
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .. import persistence
from ..datasets import read_idx
from ..files import open_regular, write_text
from . import options
from .evaluate import add_model_arguments, load_classifier
from .options import EXIT_OK, UsageError, say

#: The help text of ``mlp predict``: this module's description of the command, its output and exit status.
DESCRIPTION = options.help_text(__doc__)

#: File name endings read as images (with Pillow); any other file not .npy or .npz is read as IDX.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def add_predict_arguments(p):
    """Add the options of ``mlp predict`` to the parser ``p``."""
    add_model_arguments(p)
    p.add_argument("input", type=Path, metavar="INPUT",
                   help="the examples: .npy, .npz (one array, or X), an IDX file, or an image (needs Pillow)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="write a CSV (index, class, probability, then every class's probability) "
                        "instead of printing")
    p.add_argument("--top", type=options.positive_int, default=None, metavar="K",
                   help="print the K most probable classes of each example with their probabilities "
                        "(default: 1; the CSV of --out has them all)")
    p.add_argument("--quiet", action="store_true", help="no notices; only the predictions")


# --------------------------------------------------------------------------- #
# reading the examples
# --------------------------------------------------------------------------- #
def _read_numpy(path):
    """The array of an .npy file, or the one array (or ``X``) of an .npz file.

    Read as model files are (``mlp.persistence.read_array``): the header is
    checked against the file before the data are read, other members of an
    .npz are never decompressed, nothing is unpickled.
    """
    try:
        with open_regular(path, "an input file") as f:
            if path.suffix.lower() == ".npy":
                return persistence.read_array(f, os.fstat(f.fileno()).st_size)
            with zipfile.ZipFile(f) as archive:
                members = {(n[:-4] if n.endswith(".npy") else n): n for n in archive.namelist()}
                if len(members) != 1 and "X" not in members:
                    raise UsageError(f"{path} holds {len(members)} arrays ({', '.join(members)}): name the "
                                     "examples X, or save them alone")
                info = archive.getinfo(members["X"] if "X" in members else next(iter(members.values())))
                with archive.open(info) as member:
                    return persistence.read_array(member, info.file_size)
    except (OSError, ValueError, EOFError, NotImplementedError, zipfile.BadZipFile, zlib.error) as exc:
        raise UsageError(f"{path}: not a readable {path.suffix} file ({exc})") from None


def _read_image(args, path, n_features):
    """One example from an image: grayscale bytes, resized to the model's input when it is a square."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise UsageError("reading images needs Pillow: pip install pillow") from None
    side = math.isqrt(n_features)
    try:
        with open_regular(path, "an image") as f, Image.open(f) as image:
            gray = image.convert("L")
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise UsageError(f"{path}: not a readable image ({exc})") from None
    if side * side == n_features and gray.size != (side, side):
        say(args, f"notice: resized {path.name} from {gray.size[0]}x{gray.size[1]} to {side}x{side}, "
                  "the model's input")
        gray = gray.resize((side, side), Image.Resampling.LANCZOS)
    elif gray.size[0] * gray.size[1] != n_features:
        raise UsageError(f"{path} is a {gray.size[0]}x{gray.size[1]} image but the model takes {n_features} "
                         "features, not a square image to resize it to")
    return np.asarray(gray)[None]


def _read_array(args, path, n_features):
    """The examples of ``path`` as read, before flattening and scaling."""
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        return _read_numpy(path)
    if suffix in IMAGE_SUFFIXES:
        return _read_image(args, path, n_features)
    try:
        return read_idx(path)
    except ValueError as exc:
        raise UsageError(f"{path}: not an .npy, .npz, IDX or image file ({exc})") from None


def read_examples(args, path, n_features):
    """The examples of ``path`` as a float (n, n_features) array in the data sets' scale.

    Arrays of three or more dimensions (images (n, 28, 28)) are flattened to
    (n, h * w); a 1-D array of ``n_features`` values (n_features > 1) is one
    example; bytes (uint8, or any value above 1) are divided by 255.
    """
    if not path.exists() or path.is_dir():  # a FIFO or a device exists: reading it says what it is
        raise UsageError(f"no input file {path}" + (" (a directory)" if path.is_dir() else ""))
    A = _read_array(args, path, n_features)
    if not (np.issubdtype(A.dtype, np.integer) or np.issubdtype(A.dtype, np.floating)):
        raise UsageError(f"{path} holds {A.dtype} values, not numbers")
    if A.ndim == 1 and A.shape[0] == n_features and n_features > 1:
        A = A[None]
    elif A.ndim < 2:
        raise UsageError(f"{path} holds an array of shape {A.shape}: the model takes examples of {n_features} "
                         f"features, an array (n, {n_features})")
    elif A.ndim > 2:
        A = A.reshape(A.shape[0], -1)
    if A.shape[0] == 0:
        raise UsageError(f"{path} holds no examples")
    if A.shape[1] != n_features:
        raise UsageError(f"{path} holds examples of {A.shape[1]} features but the model takes {n_features}")
    if A.dtype == np.uint8 or A.max() > 1:
        # The data sets are in [0, 1]: a network fed bytes sees inputs 255 times too large.
        say(args, f"notice: {path.name} holds values in [{A.min()}, {A.max()}]: divided by 255, as the "
                  "data sets' pixels lie in [0, 1]")
        return A / np.float32(255)
    return A


# --------------------------------------------------------------------------- #
# the predictions
# --------------------------------------------------------------------------- #
def format_lines(class_names, probs, top):
    """One line per example: its index, then its ``top`` most probable classes, each with its probability."""
    best = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    index_width = len(str(len(probs) - 1))
    name_width = max(len(name) for name in class_names)
    lines = []
    for i, (row, classes) in enumerate(zip(probs, best)):
        cells = "  ".join(f"{class_names[k]:<{name_width}} {row[k]:.4f}" for k in classes)
        lines.append(f"{i:>{index_width}}  {cells}")
    return "\n".join(lines)


def format_csv(class_names, probs):
    """The CSV text: index, class, probability, then one ``p(<class>)`` column per class."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["index", "class", "probability", *(f"p({name})" for name in class_names)])
    for i, row in enumerate(probs):
        k = int(row.argmax())
        writer.writerow([i, class_names[k], f"{row[k]:.6g}", *(f"{p:.6g}" for p in row)])
    return text.getvalue()


def run_predict(args):
    """Run ``mlp predict`` with parsed ``args``; the exit status."""
    if args.top is not None and args.out is not None:
        raise UsageError("--top applies to the printed lines; the CSV of --out has every class's probability")
    net = load_classifier(args.model, args.backend)
    top = 1 if args.top is None else args.top
    if top > net.n_outputs:
        raise UsageError(f"--top must be at most the model's {net.n_outputs} classes; got {top}")
    X = read_examples(args, args.input, net.n_features)
    try:
        probs = net.predict_proba(X)
    except ValueError as exc:  # NaN or inf among the examples
        raise UsageError(f"{args.input}: {exc}") from None
    if args.out is None:
        try:
            print(format_lines(net.class_names, probs, top), flush=True)
        except BrokenPipeError:
            # The reader stopped early (`| head`): no error of ours. Python would report the pipe
            # again when it flushes stdout at exit, so stdout goes to /dev/null from here on.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, format_csv(net.class_names, probs))
    print(f"wrote {len(probs)} predictions to {args.out}")
    return EXIT_OK

