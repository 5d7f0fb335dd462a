"""Files cost what they weigh, crafted files get clear errors, killed saves leave nothing behind (issue 15, 4, 6, 8).

Every file here is real and crafted on disk: a 1 MB model archive with a
deflated 1 GiB extra member, gzip IDX files that decompress to 1 GiB, headers
that declare terabytes, a FIFO, ``/dev/zero``, models and checkpoints whose
members or JSON are not what the format says. The memory a hostile file costs
is measured in a separate process (its peak resident size), and the saves are
killed for real (SIGKILL to a process saving in a loop).
"""
import gzip
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest

import mlp
import mlp.cli
from mlp import files

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GiB = 2**30


# ---------------------------------------------------------------- crafting files
def _zeros_deflated(n_mib):
    """(raw deflate stream, CRC-32) of ``n_mib`` MiB of zero bytes, built from one compressed MiB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    # a full flush makes the block independent of what precedes it: repeated, it stays a valid stream
    block = compressor.compress(bytes(2**20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc, zero_mib = 0, bytes(2**20)
    for _ in range(n_mib):
        crc = zlib.crc32(zero_mib, crc)
    return block * n_mib + b"\x03\x00", crc  # 03 00: an empty final block


def _zip_bytes(members):
    """A zip archive of ``members``: (name, method, CRC-32, size, stored bytes), method 0 (stored) or 8 (deflate)."""
    out, central = bytearray(), bytearray()
    for name, method, crc, size, data in members:
        name = name.encode()
        fields = struct.pack("<HHHHHIII", 20, 0, method, 0, 0x21, crc, len(data), size)
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields
        central += struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, len(out)) + name
        out += b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name + data
    n = len(members)
    return bytes(out + central + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, n, n, len(central), len(out), 0))


def _members(path):
    """The members of the archive at ``path`` as ``_zip_bytes`` takes them, stored."""
    with zipfile.ZipFile(path) as z:
        return [(i.filename, 0, i.CRC, i.file_size, z.read(i)) for i in z.infolist()]


def _npy(array=None, header=None, data=b""):
    """The .npy bytes of ``array``, or a header dict followed by ``data``."""
    f = io.BytesIO()
    if array is not None:
        np.lib.format.write_array(f, np.asarray(array), allow_pickle=True)
        return f.getvalue()
    np.lib.format.write_array_header_1_0(f, header)
    return f.getvalue() + data


def _with_members(source, target, **changes):
    """Write at ``target`` the archive at ``source`` with members replaced by raw .npy bytes (None: removed)."""
    members = [m for m in _members(source) if m[0][:-4] not in changes]
    for name, data in changes.items():
        if data is not None:
            members.append((name + ".npy", 0, zlib.crc32(data), len(data), data))
    target.write_bytes(_zip_bytes(members))
    return target


def _gzip_member(deflated, crc, size):
    """A gzip member (header, the raw deflate stream, CRC-32 and size) of ``size`` bytes."""
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + deflated + struct.pack("<II", crc, size % 2**32)


def _idx_header(dims, code=0x08):
    return bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small saved model [6, 5, 3] with metadata, and its path."""
    net = mlp.MLP([6, 5, 3], seed=0, dtype=np.float64, backend="numpy")
    path = tmp_path_factory.mktemp("model") / "model.npz"
    net.save(path, metadata={"note": "original"})
    return net, path


# ---------------------------------------------------------------- item 4: what a file costs
LOADER = r"""
import json, resource, sys, time
import mlp
import mlp.cli
from mlp.datasets import read_idx

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

before, results = peak(), {}
for kind, path in json.loads(sys.argv[1]):
    start = time.perf_counter()
    try:
        # the numpy backend: no kernel compiled in this process, whose memory is measured
        outcome = repr(mlp.load(path, backend="numpy").layer_sizes) if kind == "model" else repr(read_idx(path).shape)
    except (OSError, ValueError) as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    results[path] = [outcome, time.perf_counter() - start]
print(json.dumps({"peak_growth": peak() - before, "results": results}))
"""


def test_hostile_files_cost_what_they_weigh_and_name_the_problem(model, tmp_path):
    _, saved = model
    bomb, crc = _zeros_deflated(1024)
    cases = {}  # path -> (kind, regex of the outcome)

    extra = tmp_path / "extra-member.npz"  # a valid model and a 1 GiB member the format does not have
    extra.write_bytes(_zip_bytes(_members(saved) + [("padding.npy", 8, crc, GiB, bomb)]))
    cases[extra] = ("model", r"^\[6, 5, 3\]$")
    inflated = tmp_path / "inflated-W0.npz"  # W0 a deflated GiB: its declared size is refused before reading
    members = [m for m in _members(saved) if m[0] != "W0.npy"]
    inflated.write_bytes(_zip_bytes(members + [("W0.npy", 8, crc, GiB, bomb)]))
    cases[inflated] = ("model", r"member 'W0' declares 1073741824 bytes, but an array of shape \(5, 6\) of float64 "
                                r"takes 240 and a header")
    terabytes = tmp_path / "terabytes.npz"  # layer sizes and W0's header agree on 8 TB of weights
    _with_members(saved, terabytes, layer_sizes=_npy(np.array([10**6, 10**6, 3])),
                  W0=_npy(header={"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}))
    cases[terabytes] = ("model", r"member 'W0' declares shape \(1000000, 1000000\) of float64 \(8000000000000 bytes\)")

    gz_magic = tmp_path / "bad-magic.gz"  # 1 GiB of zeros: its first four bytes are no IDX magic
    gz_magic.write_bytes(_gzip_member(bomb, crc, GiB))
    cases[gz_magic] = ("idx", r"unknown IDX type code 0x00")
    gz_tail = tmp_path / "trailing.gz"  # 10 labels, then a second gzip member of 1 GiB
    gz_tail.write_bytes(gzip.compress(_idx_header([10]) + bytes(10)) + _gzip_member(bomb, crc, GiB))
    cases[gz_tail] = ("idx", r"at least 1048576 bytes of trailing garbage after the data of shape \(10,\)")
    gz_huge = tmp_path / "terabytes.gz"  # a header declaring 2**96 bytes, then 1 GiB of zeros
    gz_huge.write_bytes(gzip.compress(_idx_header([2**32 - 1] * 3)) + _gzip_member(bomb, crc, GiB))
    cases[gz_huge] = ("idx", r"header declares shape \(4294967295, 4294967295, 4294967295\) of uint8, \d+ bytes, "
                             r"more than the 4294967296")
    fifo = tmp_path / "model-fifo.npz"
    os.mkfifo(fifo)
    cases[fifo] = ("model", r"is a FIFO \(named pipe\), not a regular file")
    idx_fifo = tmp_path / "labels-fifo"
    os.mkfifo(idx_fifo)
    cases[idx_fifo] = ("idx", r"is a FIFO \(named pipe\), not a regular file")
    cases["/dev/zero"] = ("idx", r"'/dev/zero' is a character device, not a regular file")

    for path in cases:
        assert path == "/dev/zero" or os.path.getsize(path) < 2**21  # every file weighs under 2 MB
    order = [[kind, str(path)] for path, (kind, _) in cases.items()]
    done = subprocess.run([sys.executable, "-c", LOADER, json.dumps(order)], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for path, (kind, pattern) in cases.items():
        outcome, seconds = report["results"][str(path)]
        assert re.search(pattern, outcome), (path, outcome)
        assert str(path) in outcome or outcome == "[6, 5, 3]"
        assert seconds < 2, (path, seconds)  # a GiB is never decompressed: each answer comes at once
    # the old readers took a GiB per file; these add at most 64 MiB to the process's peak
    assert report["peak_growth"] < 64 * 2**20, report["peak_growth"]


# ---------------------------------------------------------------- item 8: crafted model members
def _text(value):
    return _npy(np.array(value))


CRAFTED_MEMBERS = [
    ({"W0": b"\x00" * 64}, r"member 'W0' is no NumPy array: it lacks the \.npy header"),
    ({"W0": _npy(np.ones((6, 5)))}, r"member 'W0' has shape \(6, 5\), expected \(5, 6\)"),
    ({"W0": _npy(np.ones((5, 6), dtype=np.float32))}, r"member 'W0' holds float32, expected float64"),
    ({"W0": _npy(np.array([{"a": 1}], dtype=object))}, r"member 'W0' claims to hold Python objects"),
    ({"W0": _npy(header={"descr": "<f8", "fortran_order": False, "shape": (5, 6)}, data=b"\x00" * 16)},
     r"member 'W0' declares shape \(5, 6\) of float64 \(240 bytes\) but holds 16"),
    ({"b1": b"\x93NUMPY\x01\x00\x40\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3,)"},
     r"member 'b1' has a damaged \.npy header"),
    ({"b1": b"\x93NUMPY\x03\x00" + b"\x00" * 30}, r"member 'b1' has \.npy format version 3\.0"),
    ({"format_version": _text("abc")}, r"member 'format_version' must hold an integer; it holds <U3\(\)"),
    ({"format_version": _text(np.nan)}, r"member 'format_version' must hold an integer; it holds float64\(\)"),
    ({"format_version": _text([2, 2])}, r"member 'format_version' must hold an integer; it holds int64\(2,\)"),
    ({"format_version": _text(1.9)}, r"member 'format_version' must hold an integer; it holds float64\(\)"),
    ({"format_version": _text(0)}, r"invalid model format version 0"),
    ({"output": _text(3)}, r"member 'output' must hold text; it holds int64\(\)"),
    ({"layer_sizes": _text(["6", "5"])}, r"member 'layer_sizes' must hold integers; it holds <U1\(2,\)"),
    ({"layer_sizes": _text([6, 0, 3])}, r"every layer size must be >= 1"),
    ({"layer_sizes": _npy(header={"descr": "<i8", "fortran_order": False, "shape": (10**9,)})},
     r"member 'layer_sizes' declares shape \(1000000000,\) of int64 \(8000000000 bytes\), more than the 65536"),
    ({"metadata": _text("[" * 100_000 + "]" * 100_000)}, r"member 'metadata' holds JSON nested too deeply"),
    ({"metadata": _text("{'a': 1}")}, r"member 'metadata' is not JSON \(Expecting property name"),
    ({"metadata": _text("[1]")}, r"metadata is not a JSON object"),
    ({"b0": None}, r"layer 0 parameters are missing"),
]


@pytest.mark.parametrize("changes, message", CRAFTED_MEMBERS, ids=[m for _, m in CRAFTED_MEMBERS])
def test_a_crafted_member_is_named_with_its_problem(model, tmp_path, changes, message):
    _, saved = model
    crafted = _with_members(saved, tmp_path / "crafted.npz", **changes)
    with pytest.raises(ValueError, match=message) as info:
        mlp.load(crafted)
    assert str(info.value).startswith(repr(str(crafted)))
    # raised by numba-mlp itself, not from inside NumPy, json or zipfile
    assert os.sep + "mlp" + os.sep in str(info.traceback[-1].path)


def test_a_corrupted_member_is_found_by_its_crc(model, tmp_path):
    _, saved = model
    members = _members(saved)
    name, method, crc, size, data = next(m for m in members if m[0] == "W1.npy")
    flipped = data[:-3] + bytes([data[-3] ^ 0x10]) + data[-2:]
    bad = tmp_path / "crc.npz"
    bad.write_bytes(_zip_bytes([m for m in members if m[0] != name] + [(name, method, crc, size, flipped)]))
    with pytest.raises(ValueError, match=r"truncated or corrupted \(BadZipFile: Bad CRC-32 for file 'W1.npy'\)"):
        mlp.load(bad)


# ---------------------------------------------------------------- item 8: crafted checkpoints
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(X, y, path) of a real checkpoint of a momentum run of [4, 6, 3] (float32) after 2 epochs of 3."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 4)), rng.integers(0, 3, 30)
    path = tmp_path_factory.mktemp("checkpoint") / "ckpt.npz"
    mlp.MLP([4, 6, 3], seed=0, backend="numpy").fit(X, y, epochs=2, momentum=0.5, lr_schedule="decay",
                                                    checkpoint_path=path)
    return X, y, path


def _meta_with(path, **fields):
    """The checkpoint JSON of ``path`` as a member, with ``fields`` changed (None: removed)."""
    with zipfile.ZipFile(path) as z:
        meta = json.loads(str(np.lib.format.read_array(io.BytesIO(z.read("checkpoint.npy")))))
    meta.update(fields)
    return _text(json.dumps({k: v for k, v in meta.items() if v is not None}))


CRAFTED_CHECKPOINTS = [
    (lambda p: {"checkpoint": _meta_with(p, n_train=None)}, r"its JSON lacks the field 'n_train'"),
    (lambda p: {"checkpoint": _meta_with(p, history=None)}, r"its JSON lacks the field 'history'"),
    (lambda p: {"checkpoint": _text('{"kind": "numba-mlp-trainer-checkpoint", "epoch": ')},
     r"member 'checkpoint' is not JSON \(Expecting value"),
    (lambda p: {"checkpoint": _text("[" * 50_000)}, r"member 'checkpoint' holds JSON nested too deeply"),
    (lambda p: {"checkpoint": _meta_with(p, epoch="1")}, r"the field 'epoch' must be a count; it is \"1\""),
    (lambda p: {"checkpoint": _meta_with(p, has_best=1)}, r"the field 'has_best' must be true or false"),
    (lambda p: {"checkpoint": _meta_with(p, history={"records": [1]})}, r"the field 'history' must be a history"),
    (lambda p: {"ckpt_vW1": _npy(np.ones((6, 3), dtype=np.float32))}, r"member 'ckpt_vW1' has shape \(6, 3\), expected \(3, 6\)"),
    (lambda p: {"ckpt_vb0": None}, r"members \['ckpt_vb0'\] are missing"),
    (lambda p: {"ckpt_vb0": _npy(np.full(6, np.inf, dtype=np.float32))}, r"member 'ckpt_vb0' contains NaN or inf"),
    (lambda p: {"ckpt_vW0": b"not an array"}, r"member 'ckpt_vW0' is no NumPy array"),
]


@pytest.mark.parametrize("craft, message", CRAFTED_CHECKPOINTS, ids=[m for _, m in CRAFTED_CHECKPOINTS])
def test_a_crafted_checkpoint_is_named_with_its_problem(checkpoint, tmp_path, craft, message):
    X, y, path = checkpoint
    crafted = _with_members(path, tmp_path / "crafted.npz", **craft(path))
    net = mlp.MLP([4, 6, 3], seed=0, backend="numpy")
    with pytest.raises(ValueError, match=message) as info:
        net.fit(X, y, epochs=3, momentum=0.5, lr_schedule="decay", checkpoint_path=crafted, resume=True)
    assert repr(str(crafted)) in str(info.value)
    assert os.sep + "mlp" + os.sep in str(info.traceback[-1].path)


def test_an_intact_checkpoint_still_resumes(checkpoint, tmp_path):
    X, y, path = checkpoint
    copy = tmp_path / "ckpt.npz"
    copy.write_bytes(path.read_bytes())
    net = mlp.MLP([4, 6, 3], seed=0, backend="numpy")
    history = net.fit(X, y, epochs=3, momentum=0.5, lr_schedule="decay", checkpoint_path=copy, resume=True)
    assert [r["epoch"] for r in history.records] == [0, 1, 2]


# ---------------------------------------------------------------- item 6: temporary files
SAVER = r"""
import sys
import numpy as np
import mlp
import mlp.cli

net = mlp.MLP([784, 256, 10], seed=0, dtype=np.float64, backend="numpy")
weights, biases = net.get_parameters()
print("saving", flush=True)
version = 0
while True:
    version += 1
    net.set_parameters([W + version for W in weights], biases)
    net.save(sys.argv[1], metadata={"version": version})
"""


def _temporaries(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


def _check_a_version(path):
    """The model at ``path`` loads and is exactly the version its metadata names."""
    saved = mlp.load(path, backend="numpy")
    weights, biases = mlp.MLP([784, 256, 10], seed=0, dtype=np.float64, backend="numpy").get_parameters()
    version = saved.metadata["version"]
    for got, want in zip(sum(saved.get_parameters(), []), [W + version for W in weights] + biases):
        np.testing.assert_array_equal(got, want)
    return version


def test_a_killed_save_leaves_a_loadable_model_and_the_next_save_removes_its_temporary_file(tmp_path):
    """SIGKILL a process saving a 1.6 MB model in a loop (5 times: 3 as soon as a write is under way, 2 at a
    random moment): the file is always a whole saved version, and a kill's temporary file goes with the next save."""
    path = tmp_path / "m.npz"
    first = mlp.MLP([784, 256, 10], seed=0, dtype=np.float64, backend="numpy")
    first.save(path, metadata={"version": 0})
    rng = np.random.default_rng(0)
    versions, left = [], 0
    for kill in range(5):
        saver = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True,
                                 cwd=REPO)
        assert saver.stdout.readline() == "saving\n"
        if kill % 2 == 0:
            deadline = time.monotonic() + 30
            while not _temporaries(tmp_path) and time.monotonic() < deadline:
                time.sleep(0.0005)
        else:
            time.sleep(rng.uniform(0.05, 0.3))
        os.kill(saver.pid, signal.SIGKILL)
        saver.wait()  # waited for: no zombie whose pid would still look alive
        saver.stdout.close()
        versions.append(_check_a_version(path))
        left += len(_temporaries(tmp_path))
        first.save(path, metadata={"version": 0})
        assert os.listdir(tmp_path) == ["m.npz"]
    assert max(versions) > 0  # the savers did save before they were killed
    assert left >= 1  # kills hit writes and left their temporary files, which the next saves removed


def _dead_pid():
    """The pid of a process that has exited and been waited for."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


@pytest.mark.parametrize("length", [9, 255])
def test_only_the_temporary_files_of_gone_writers_are_removed(tmp_path, length):
    name = "m" * (length - 4) + ".npz"
    path = tmp_path / name
    host = files.temporary_name(str(path)).split(".")[-3].split("-")[0]
    prefix = os.path.basename(files.temporary_name(str(path))).rsplit(".", 3)[0]
    legacy_prefix = "." + name[:files.NAME_MAX - 22]
    token = "0123456789abcdef"
    dead, alive = _dead_pid(), os.getpid()
    day_ago = time.time() - files.STALE_AFTER_S - 60
    stale = {f"{prefix}.{host}-{dead:08x}.{token}.tmp": None,  # a killed writer of this machine
             f"{prefix}.{host}-{alive:08x}.{token[::-1]}.tmp": day_ago,  # its pid taken by a live process
             f"{prefix}.ffffffff-{alive:08x}.{token}.tmp": day_ago,  # another machine's, untouched for a day
             f"{legacy_prefix}.{token}.tmp": day_ago}  # named before writers were, untouched for a day
    kept = {f"{prefix}.{host}-{alive:08x}.{token}.tmp": None,  # a live writer: this process
            f"{prefix}.ffffffff-{dead:08x}.{token}.tmp": None,  # another machine's, written just now
            f"{legacy_prefix}.{token[::-1]}.tmp": None,  # an old-style name, written just now
            f".other.npz.{host}-{dead:08x}.{token}.tmp": day_ago,  # another destination's
            f"{prefix}.{host}-{dead:08x}.tmp": day_ago,  # not our pattern: no token
            f"{prefix}.{host}-{dead:08x}.0123.tmp": day_ago}  # nor a token of 4 digits
    for entry, mtime in {**stale, **kept}.items():
        (tmp_path / entry).write_bytes(b"partial")
        if mtime is not None:
            os.utime(tmp_path / entry, (mtime, mtime))
    assert all(len(os.fsencode(entry)) <= files.NAME_MAX for entry in {**stale, **kept})
    mlp.MLP([3, 2], backend="numpy").save(path)
    assert sorted(os.listdir(tmp_path)) == sorted([name, *kept])
    assert mlp.load(path).layer_sizes == [3, 2]


@pytest.mark.parametrize("destination, error, message", [
    ("", FileNotFoundError, "the destination is an empty path"),
    (".", IsADirectoryError, r"'\.' is a directory, not a file name"),
    ("sub/", IsADirectoryError, r"'sub/' is a directory, not a file name"),
    ("sub", IsADirectoryError, r"'sub' is a directory, not a file name"),
    ("missing/m.npz", FileNotFoundError, r"'missing/m\.npz': directory '.*missing' does not exist"),
])
def test_a_path_that_names_no_file_is_refused_before_anything_is_created(tmp_path, monkeypatch, destination,
                                                                         error, message):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(error, match=message) as info:
        mlp.MLP([3, 2], backend="numpy").save(destination)
    assert "tmp" not in str(info.value).replace(str(tmp_path), "")  # no word of a temporary file
    assert sorted(os.listdir(tmp_path)) == ["work"]
    assert sorted(os.listdir(tmp_path / "work")) == ["sub"] and os.listdir(tmp_path / "work" / "sub") == []



def _predict_inputs(directory):
    """(file name, a regex of mlp predict's error) for inputs that would hang, or allocate what they declare."""
    os.mkfifo(directory / "fifo.npy")
    yield "fifo.npy", r"is a FIFO \(named pipe\), not a regular file"
    (directory / "huge.npy").write_bytes(_npy(header={"descr": "<f8", "fortran_order": False, "shape": (10**7, 10**6)}))
    yield "huge.npy", r"declares shape \(10000000, 1000000\) of float64 \(80000000000000 bytes\), more than"
    (directory / "short.npy").write_bytes(_npy(header={"descr": "<f8", "fortran_order": False, "shape": (4, 6)}))
    yield "short.npy", r"declares shape \(4, 6\) of float64 \(192 bytes\) but holds 0"
    bomb, crc = _zeros_deflated(64)
    X = _npy(np.ones((2, 6)))
    (directory / "x.npz").write_bytes(_zip_bytes([("X.npy", 0, zlib.crc32(X), len(X), X),
                                                   ("y.npy", 8, crc, 64 * 2**20, bomb)]))
    yield "x.npz", None  # X is read, the 64 MiB member beside it is never decompressed


def test_mlp_predict_reads_inputs_as_models_are_read(model, tmp_path, capsys):
    _, saved = model
    for name, message in _predict_inputs(tmp_path):
        status = mlp.cli.main(["predict", str(saved), str(tmp_path / name), "--backend", "numpy", "--quiet"])
        out, err = capsys.readouterr()
        if message is None:
            assert status == 0 and len(out.splitlines()) == 2, err
        else:
            assert status == 2 and re.search(message, err) and str(tmp_path / name) in err, err
