"""Atomic writes: the permissions an ordinary open() gives, long names, nothing left behind on failure."""
import os
import stat

import pytest

import mlp
from mlp import files
from helpers import random_net


@pytest.fixture
def umask():
    """Set the process umask for one test; the old one comes back whatever happens."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _save_model(path):
    random_net([3, 4, 2], "softmax", "numpy", seed=0).save(path)


def _write_json(path):
    files.write_json(path, {"loss": 0.5})


@pytest.mark.parametrize("writer", [_save_model, _write_json], ids=["net.save", "write_json"])
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o000, 0o666)])
def test_a_new_file_gets_the_mode_open_would_give(tmp_path, umask, writer, mask, expected):
    umask(mask)
    path = tmp_path / "out"
    writer(path)
    assert _mode(path) == expected
    with open(tmp_path / "by-open", "w"):
        pass
    assert _mode(tmp_path / "by-open") == expected


def test_a_replaced_file_keeps_its_permission_bits(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "model.npz"
    _save_model(path)
    os.chmod(path, 0o640)
    before = path.read_bytes()
    random_net([3, 4, 2], "softmax", "numpy", seed=5).save(path)
    assert path.read_bytes() != before
    assert _mode(path) == 0o640
    # the special bits stay off: a rewritten file is new content
    os.chmod(path, 0o2751)
    files.write_text(path, "again")
    assert _mode(path) == 0o751


@pytest.mark.parametrize("length", [240, 250, 255])
def test_a_name_near_the_file_name_limit_is_written(tmp_path, length):
    path = tmp_path / ("m" * (length - 4) + ".npz")
    _save_model(path)
    assert os.listdir(tmp_path) == [path.name]
    assert mlp.load(path).layer_sizes == [3, 4, 2]
    files.write_text(path, "overwritten")
    assert path.read_text() == "overwritten"


def test_temporary_names_fit_the_limit_and_stay_next_to_the_file(tmp_path):
    for name in ["model.npz", "é" * 127, "x" * 255]:
        tmp = files.temporary_name(str(tmp_path / name))
        assert os.path.dirname(tmp) == str(tmp_path)
        base = os.path.basename(tmp)
        assert base.startswith(".") and base.endswith(".tmp")
        assert len(os.fsencode(base)) <= files.NAME_MAX
        assert base[1:].startswith(name[:100])  # the destination stays recognisable
    # a multi-byte character is dropped whole, never cut into an invalid byte sequence
    os.fsencode(files.temporary_name("é" * 127)).decode("utf-8")
    assert files.temporary_name("a") != files.temporary_name("a")


def test_a_taken_temporary_name_is_skipped(tmp_path, monkeypatch):
    taken = str(tmp_path / ".out.taken.tmp")
    open(taken, "w").close()
    names = iter([taken, str(tmp_path / ".out.free.tmp")])
    monkeypatch.setattr(files, "temporary_name", lambda path: next(names))
    files.write_text(tmp_path / "out", "content")
    assert (tmp_path / "out").read_text() == "content"
    assert sorted(os.listdir(tmp_path)) == [".out.taken.tmp", "out"]


@pytest.mark.parametrize("error", [OSError("disk full (simulated)"), KeyboardInterrupt()])
def test_an_interrupted_write_leaves_the_old_content_and_no_temporary_file(tmp_path, error):
    path = tmp_path / "summary.json"
    files.write_json(path, {"old": True})
    before = path.read_bytes()

    def write_then_fail(f):
        f.write(b'{"new": tru')
        raise error

    with pytest.raises(type(error)):
        files.atomic_write(path, write_then_fail)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["summary.json"]
