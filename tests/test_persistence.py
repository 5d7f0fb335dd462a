"""Saving and loading models: exact round trips on every backend, and clear errors for bad files."""
import gzip
import os
import pickle
import stat
import traceback

import numpy as np
import pytest

import kernels
import mlp
from mlp import MLP
from mlp import files, persistence
from helpers import random_net


def _assert_same_model(a, b):
    assert a.layer_sizes == b.layer_sizes and a.output == b.output and a.dtype == b.dtype
    wa, ba = a.get_parameters()
    wb, bb = b.get_parameters()
    for x, y in zip(wa + ba, wb + bb):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("output", ["softmax", "identity"])
@pytest.mark.parametrize("backend", kernels.available_backends())
def test_round_trip_is_exact_on_every_backend(tmp_path, backend, output, dtype):
    net = random_net([7, 5, 4, 3], output, "cpu", dtype=dtype, seed=3)
    meta = {"train_config": {"learning_rate": 0.05, "keep_prob": [0.8, 0.5]}, "note": "ünïcode"}
    path = tmp_path / "model.npz"
    mlp.save_model(net, path, metadata=meta)
    loaded = mlp.load(path, backend=backend)
    assert loaded.backend == backend
    _assert_same_model(loaded, net)
    assert loaded.metadata == meta
    X = np.random.default_rng(0).standard_normal((6, 7))
    np.testing.assert_array_equal(loaded.forward(X), net.to_backend(backend).forward(X))
    # and back: a model built on this backend saves what it holds
    again = tmp_path / "again.npz"
    loaded.save(again)
    _assert_same_model(mlp.load_model(again, backend="numpy"), net)
    assert mlp.load(again).metadata == meta


def test_save_writes_exactly_the_given_path_and_keeps_training_metadata(tmp_path):
    from mlp.datasets import load_digits

    d = load_digits()
    net = MLP([64, 8, 10], seed=0, backend="cpu")
    net.fit(d.X_train[:200], d.y_train[:200], epochs=2, l2=1e-4, keep_prob=[1.0, 0.5])
    path = tmp_path / "digits-model"
    net.save(path)
    assert os.listdir(tmp_path) == ["digits-model"]
    loaded = mlp.load(path)
    assert loaded.metadata["train_config"]["l2"] == 1e-4
    assert loaded.metadata["train_config"]["keep_prob"] == [1.0, 0.5]
    assert loaded.metadata["epochs_run"] == 2
    np.testing.assert_array_equal(loaded.predict(d.X_test), net.predict(d.X_test))


def test_a_checkpoint_loads_as_a_model(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 4)), rng.integers(0, 3, 30)
    net = MLP([4, 6, 3], seed=0, backend="cpu")
    ckpt = tmp_path / "ckpt.npz"
    net.fit(X, y, epochs=2, momentum=0.5, checkpoint_path=ckpt)
    _assert_same_model(mlp.load(ckpt), net)


@pytest.fixture
def saved(tmp_path):
    net = random_net([6, 5, 3], "softmax", "cpu", dtype=np.float64, seed=1)
    path = tmp_path / "model.npz"
    net.save(path, metadata={"a": 1})
    return net, path


def test_truncated_file_raises(saved):
    _, path = saved
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 10):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated or corrupted"):
            mlp.load(path)


def test_corrupted_bytes_raise(saved):
    net, path = saved
    data = bytearray(path.read_bytes())
    # flip bytes inside W0's stored values (an uncompressed member): only its CRC-32 can tell
    W0 = net.get_parameters()[0][0]
    at = bytes(data).find(W0.tobytes()[:16])
    assert at > 0
    data[at + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="truncated or corrupted"):
        mlp.load(path)


def test_foreign_files_raise(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"not a numba-mlp model file .*format marker; its members: \['weights'\]"):
        mlp.load(other)
    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(ValueError, match=r"not a numba-mlp model file .*single NumPy array \(\.npy\)"):
        mlp.load(single)
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a model\n")
    with pytest.raises(ValueError, match="not a numba-mlp model file .*this file is text, beginning 'hello, not a"):
        mlp.load(text)
    with pytest.raises(FileNotFoundError, match="no numba-mlp model file at"):
        mlp.load(tmp_path / "missing.npz")


def test_a_directory_is_named_as_one(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory, not a numba-mlp model file"):
        mlp.load(tmp_path)


def _crafted_files(directory, model_bytes):
    """(name, bytes) of files that are not models, each in a way a user has met."""
    yield "empty.npz", b""
    yield "notes.txt", "poids du réseau\n".encode()
    yield "model.pkl", pickle.dumps({"W0": [[1.0]]}, protocol=4)
    yield "model.pkl0", pickle.dumps({"W0": 1}, protocol=0)
    yield "random.bin", np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes()
    yield "model.npz.gz", gzip.compress(model_bytes)
    yield "truncated.npz", model_bytes[:len(model_bytes) // 2]
    yield "header-only.npz", model_bytes[:10]
    objects = directory / "objects.npz"
    objects.write_bytes(model_bytes)
    _rewrite(objects, W0=np.array([{"a": 1}], dtype=object))
    yield "objects.npz", objects.read_bytes()


@pytest.mark.parametrize("name, message", [
    ("empty.npz", r"\(a numba-mlp model is a \.npz archive; this file is empty\)"),
    ("notes.txt", "this file is text, beginning 'poids du réseau'"),
    ("model.pkl", "this file is a Python pickle, which numba-mlp never loads"),
    ("model.pkl0", "this file is text"),
    ("random.bin", "this file is binary data of an unknown kind"),
    ("model.npz.gz", "this file is gzip-compressed"),
    ("truncated.npz", "truncated or corrupted"),
    ("header-only.npz", "truncated or corrupted"),
    ("objects.npz", "damaged numba-mlp model file: member 'W0' claims to hold Python objects"),
])
def test_a_file_that_is_no_model_says_what_it_is_and_never_suggests_unpickling(saved, name, message):
    _, path = saved
    crafted = dict(_crafted_files(path.parent, path.read_bytes()))
    bad = path.parent / name
    bad.write_bytes(crafted[name])
    with pytest.raises(ValueError, match=message) as info:
        mlp.load(bad)
    assert repr(str(bad)) in str(info.value)
    shown = "".join(traceback.format_exception(info.value))  # chained causes included
    assert "allow_pickle" not in shown and "pickle=True" not in shown
    assert "pickle.load" not in shown


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    for key in [k for k, val in changes.items() if val is None]:
        del arrays[key]
    np.savez(path, **arrays)


def test_newer_format_version_raises(saved):
    _, path = saved
    _rewrite(path, format_version=np.array(persistence.FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match=rf"format version {persistence.FORMAT_VERSION + 1}.*upgrade"):
        mlp.load(path)


@pytest.mark.parametrize("output, activation", [("logistic", "tanh"), ("exp", "logistic"), ("identity", "identity")])
def test_every_output_and_activation_round_trips(tmp_path, output, activation):
    net = MLP([4, 5, 3], output=output, activation=activation, seed=0, dtype=np.float64, backend="numpy")
    net.save(tmp_path / "m.npz")
    again = mlp.load(tmp_path / "m.npz", backend="numpy")
    assert (again.output, again.activation) == (output, activation)
    X = np.random.default_rng(0).normal(size=(6, 4))
    np.testing.assert_array_equal(again.forward(X), net.forward(X))


def test_a_version_1_file_is_a_relu_network_and_a_bad_activation_is_named(saved):
    _, path = saved
    _rewrite(path, format_version=np.array(1), activation=None)
    assert mlp.load(path).activation == "relu"
    _rewrite(path, format_version=np.array(2), activation=np.array("softplus"))
    with pytest.raises(ValueError, match="unknown activation 'softplus'"):
        mlp.load(path)


@pytest.mark.parametrize("change,message", [
    ({"W1": np.ones((3, 4))}, r"member 'W1' has shape \(3, 4\), expected \(3, 5\)"),
    ({"b0": None}, "layer 0 parameters are missing"),
    ({"metadata": None}, r"members \['metadata'\] are missing"),
    ({"output": np.array("sigmoid")}, "unknown output"),
    ({"W0": np.full((5, 6), np.nan)}, "NaN"),
])
def test_damaged_members_raise(saved, change, message):
    _, path = saved
    _rewrite(path, **change)
    with pytest.raises(ValueError, match=message):
        mlp.load(path)


def test_an_interrupted_save_leaves_the_previous_file_intact(saved, monkeypatch):
    net, path = saved
    before = path.read_bytes()
    real_savez = np.savez

    def savez_then_fail(file, **arrays):
        real_savez(file, **arrays)
        file.truncate(100)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(persistence.np, "savez", savez_then_fail)
    changed = random_net([6, 5, 3], "softmax", "cpu", dtype=np.float64, seed=9)
    with pytest.raises(OSError, match="simulated"):
        changed.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind
    _assert_same_model(mlp.load(path), net)


def test_an_interrupt_during_the_rename_leaves_the_previous_file_intact(saved, monkeypatch):
    net, path = saved

    def replace_interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", replace_interrupted)
    with pytest.raises(KeyboardInterrupt):
        random_net([6, 5, 3], "softmax", "cpu", dtype=np.float64, seed=9).save(path)
    monkeypatch.undo()
    assert os.listdir(path.parent) == [path.name]
    _assert_same_model(mlp.load(path), net)


def test_atomic_write_fsyncs_the_file_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    """Without the first fsync a crash after the rename can leave an empty or partial file under the
    final name; without the second, the rename itself can be lost."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        info = os.fstat(fd)
        events.append(("fsync", "directory" if stat.S_ISDIR(info.st_mode) else f"file of {info.st_size} bytes"))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.basename(src).startswith(".model.npz."), os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    files.atomic_write(tmp_path / "model.npz", lambda f: f.write(b"12345"))
    assert events == [("fsync", "file of 5 bytes"), ("replace", True, "model.npz"), ("fsync", "directory")]
    assert (tmp_path / "model.npz").read_bytes() == b"12345"


def test_bad_saves_raise(tmp_path):
    net = MLP([3, 2], backend="numpy")
    with pytest.raises(TypeError, match="JSON"):
        net.save(tmp_path / "m.npz", metadata={"f": object()})
    with pytest.raises(TypeError, match="metadata must be a dict"):
        net.save(tmp_path / "m.npz", metadata=[1, 2])
    net.weights[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []
