"""Training under faults: divergence beyond NaN, bad data and paths found before training, SIGTERM,
SIGKILL then --resume, and a save that fails at the end.

The signals are real: ``python -m mlp train`` runs in a subprocess that is sent SIGTERM or SIGKILL
once its first checkpoint is on disk; the failed save is a real one (the output directory is
replaced by a file while the run trains).
"""
import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import mlp
from mlp import MLP, Trainer, cli
from mlp.cli.train import RUN_FILES
from mlp.datasets import load_digits

REPO = Path(__file__).resolve().parents[2]
# A tiny run: digits, one hidden layer of 8 units, one thread (bit-reproducible).
TINY = ["--dataset", "digits", "--hidden", "8", "--threads", "1", "--backend", "cpu", "--quiet"]
# Long enough that a signal sent after the first checkpoint always lands mid-run (every epoch
# writes and fsyncs the checkpoint); the signalled runs stop long before the end.
MANY_EPOCHS = ["--epochs", "3000"]
SECONDS = 60  # the most a subprocess may take to reach a checkpoint or to exit


@pytest.fixture(scope="module")
def digits():
    d = load_digits(seed=0)
    return d.X_train, d.y_train


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _parameters(path):
    weights, biases = mlp.load(path).get_parameters()
    return weights + biases


# ---------------------------------------------------------------- subprocesses
def _start(args, tmp_path):
    """``python -m mlp train ARGS`` in a subprocess; its temporary directory is tmp_path/tmp."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmp))
    return subprocess.Popen([sys.executable, "-m", "mlp", "train", *TINY, *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, process):
    """Return once ``path`` exists (the trainer writes a checkpoint atomically: it exists whole)."""
    deadline = time.monotonic() + SECONDS
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended (status {process.returncode}) before writing {path}: "
                        f"{process.communicate()[1]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {path} after {SECONDS} s")
        time.sleep(0.005)


def _finish(process):
    """(status, stderr) of the process, after it exits."""
    _, err = process.communicate(timeout=SECONDS)
    return process.returncode, err


def test_sigterm_writes_the_files_with_the_best_parameters_then_exits_143(tmp_path):
    out = tmp_path / "run"
    process = _start([*MANY_EPOCHS, "--checkpoint", "--out", str(out)], tmp_path)
    _wait_for(out / "checkpoint.npz", process)
    process.send_signal(signal.SIGTERM)
    status, err = _finish(process)
    assert status == 143, err
    assert "terminated" in err
    # Every file whole, no temporary file left.
    assert {p.name for p in out.iterdir()} == set(RUN_FILES) | {"checkpoint.npz"}
    summary = _read_json(out / "summary.json")
    assert summary["stop_reason"] == "interrupted"
    assert 1 <= summary["epochs_run"] < 3000
    assert summary["kept_epoch"] == summary["best_epoch"]
    assert len(_read_json(out / "history.json")["records"]) == summary["epochs_run"]
    # The model loads and is the one the summary scored.
    test = load_digits(seed=0)
    accuracy = float(np.mean(mlp.load(out / "model.npz").predict(test.X_test) == test.y_test))
    assert accuracy == summary["test_accuracy"]


def test_resume_after_sigkill_gives_the_uninterrupted_model_bit_for_bit(tmp_path):
    args = ["--epochs", "40", "--checkpoint"]
    killed = tmp_path / "killed"
    process = _start([*args, "--out", str(killed)], tmp_path)
    _wait_for(killed / "checkpoint.npz", process)
    process.send_signal(signal.SIGKILL)
    status, _ = _finish(process)
    assert status == -signal.SIGKILL
    assert not (killed / "model.npz").exists()  # killed mid-run: nothing but the checkpoint
    stopped_after = _read_json_checkpoint_epoch(killed / "checkpoint.npz")
    assert stopped_after < 39

    assert cli.main(["train", *TINY, *args, "--out", str(killed), "--resume"]) == 0
    whole = tmp_path / "whole"
    assert cli.main(["train", *TINY, "--epochs", "40", "--out", str(whole)]) == 0
    for resumed, uninterrupted in zip(_parameters(killed / "model.npz"), _parameters(whole / "model.npz")):
        np.testing.assert_array_equal(resumed, uninterrupted)
    records = [_read_json(run / "history.json")["records"] for run in (killed, whole)]
    assert [r["train_loss"] for r in records[0]] == [r["train_loss"] for r in records[1]]
    assert len(records[0]) == 40


def _read_json_checkpoint_epoch(path):
    """The last epoch a checkpoint holds (its JSON member)."""
    with np.load(path) as arrays:
        return json.loads(str(arrays["checkpoint"]))["epoch"]


def test_a_save_that_fails_at_the_end_puts_the_model_in_the_temporary_directory(tmp_path):
    out, checkpoint = tmp_path / "run", tmp_path / "ckpt.npz"
    process = _start([*MANY_EPOCHS, "--checkpoint", str(checkpoint), "--out", str(out)], tmp_path)
    _wait_for(checkpoint, process)
    # --out was checked at the start; now it is gone, a file in its place: every save into it fails.
    out.rmdir()
    out.write_text("not a directory")
    process.send_signal(signal.SIGTERM)  # end the run now, which saves
    status, err = _finish(process)
    assert status == 3, err
    rescued = list((tmp_path / "tmp").glob("mlp-train-rescue-*"))
    assert len(rescued) == 1 and str(rescued[0]) in err and str(out) in err
    assert {p.name for p in rescued[0].iterdir()} == set(RUN_FILES)
    summary = _read_json(rescued[0] / "summary.json")
    test = load_digits(seed=0)
    assert float(np.mean(mlp.load(rescued[0] / "model.npz").predict(test.X_test) == test.y_test)) \
        == summary["test_accuracy"]


# ---------------------------------------------------------------- divergence
def test_an_exploding_loss_stops_training_with_the_last_good_parameters(tmp_path):
    # identity output, SGD just above its stable learning rate: the loss grows for a few epochs
    # before any NaN; the watch stops it at the first epoch ten times above the start.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4))
    Y = X @ rng.standard_normal((4, 1))
    net = MLP([4, 8, 1], output="identity", seed=0, backend="cpu")
    kept = {}
    with pytest.warns(RuntimeWarning, match=r"rose to .*more than 10 times its start"):
        history = Trainer(net, epochs=100, batch_size=64, learning_rate=0.8, momentum=0.0, threads=1).fit(
            X, Y, callback=lambda record: kept.update({record["epoch"]: net.get_parameters()}),
            checkpoint_path=tmp_path / "ckpt.npz")
    assert history.stop_reason == "diverged" and len(history) >= 2
    assert all(r["train_loss"] < 10 * history.start_loss for r in history.records)
    last_good = kept[history.records[-1]["epoch"]]
    for now, good, saved in zip(sum(net.get_parameters(), []), sum(last_good, []),
                                _parameters(tmp_path / "ckpt.npz")):
        np.testing.assert_array_equal(now, good)
        np.testing.assert_array_equal(saved, good)


@pytest.mark.parametrize("output", ["softmax", "identity", "logistic", "exp"])
def test_the_constant_guess_loss_is_the_reference_loss_of_the_best_constant_prediction(output):
    """Closed forms of divergence.constant_guess_loss against the numpy reference loss of that prediction."""
    from kernels import numpy_backend as K
    from mlp.divergence import constant_guess_loss

    rng = np.random.default_rng(0)
    n = 57
    if output == "softmax":
        y = rng.integers(0, 4, n)
        logits = np.tile(np.log(np.bincount(y) / n), (n, 1))
        loss, args = K.softmax_cross_entropy, (logits, y)
    elif output == "identity":
        y = rng.standard_normal((n, 3))
        loss, args = K.squared_error, (np.tile(y.mean(axis=0), (n, 1)), y)
    elif output == "logistic":
        y = (rng.random((n, 3)) < 0.3) * 1.0
        mean = y.mean(axis=0)
        loss, args = K.sigmoid_cross_entropy, (np.tile(np.log(mean / (1 - mean)), (n, 1)), y)
    else:
        y = rng.poisson(2.0, (n, 2)) * 1.0
        loss, args = K.poisson_loss, (np.tile(np.log(y.mean(axis=0)), (n, 1)), y)
    out = np.full(1, np.nan)
    workspaces = [np.empty_like(args[0]) for _ in range(1 if output == "identity" else 2)]
    loss(*args, *workspaces, out)
    assert constant_guess_loss(output, y) == pytest.approx(out[0], rel=1e-12)


def test_a_warm_start_may_rise_far_above_its_start_while_better_than_a_constant_guess(digits):
    """A fit continuing from trained parameters starts at a small loss; an epoch at a large rate may rise
    more than ten times that and still be a network that learnt: it is not called diverged."""
    X, y = digits
    net = MLP([64, 64, 10], seed=0, backend="cpu")
    net.fit(X, y, epochs=40, threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        history = net.fit(X, y, epochs=3, learning_rate=1.0, threads=1)
    assert history.stop_reason == "max_epochs"
    assert max(r["train_loss"] for r in history.records) > 10 * history.start_loss  # the case the rule is for
    assert net.evaluate(X, y)[1] > 0.5


def test_a_network_that_became_constant_has_diverged(digits):
    X, y = digits
    net = MLP([64, 16, 10], seed=0, backend="cpu")
    initial = net.get_parameters()
    with pytest.warns(RuntimeWarning, match="hidden layer 1 gives the same output .*become a constant"):
        history = net.fit(X, y, epochs=3, learning_rate=1e3, threads=1)
    assert history.stop_reason == "diverged" and len(history) == 0
    for now, start in zip(sum(net.get_parameters(), []), sum(initial, [])):
        np.testing.assert_array_equal(now, start)


def test_a_checkpoint_write_that_fails_mid_run_warns_and_training_goes_on(digits, tmp_path):
    """After epoch 1 the checkpoint's directory becomes a file (as a full disk would, the write fails for
    real): one warning, every epoch trained, and the same parameters as a run without checkpoints."""
    X, y = digits
    directory = tmp_path / "checkpoints"
    directory.mkdir()

    def break_the_directory(record):
        if record["epoch"] == 1:
            (directory / "ckpt.npz").unlink()
            directory.rmdir()
            directory.write_text("no longer a directory")

    net = MLP([64, 8, 10], seed=0, backend="cpu")
    with pytest.warns(RuntimeWarning, match=r"could not write the checkpoint .*ckpt\.npz after epoch 2") as caught:
        history = net.fit(X, y, epochs=4, threads=1, callback=break_the_directory,
                          checkpoint_path=directory / "ckpt.npz")
    assert len([w for w in caught if "checkpoint" in str(w.message)]) == 1
    assert history.stop_reason == "max_epochs" and len(history) == 4
    plain = MLP([64, 8, 10], seed=0, backend="cpu")
    plain.fit(X, y, epochs=4, threads=1)
    for now, expected in zip(sum(net.get_parameters(), []), sum(plain.get_parameters(), [])):
        np.testing.assert_array_equal(now, expected)


def test_mlp_train_lr_1000_exits_1_with_the_last_good_model_saved(tmp_path):
    out = tmp_path / "run"
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.warns(RuntimeWarning, match="diverged in epoch 0"):
        status = cli.main(["train", *TINY, "--epochs", "2", "--lr", "1000", "--out", str(out)])
    assert status == 1
    assert signal.getsignal(signal.SIGTERM) is handler  # the CLI gives the handler back
    assert _read_json(out / "summary.json")["stop_reason"] == "diverged"
    initial = MLP([64, 8, 10], seed=0, dtype=np.float32, backend="cpu").get_parameters()
    for saved, start in zip(_parameters(out / "model.npz"), sum(initial, [])):
        np.testing.assert_array_equal(saved, start)  # epoch 0 diverged: the parameters it started from


# ---------------------------------------------------------------- found before training
def _write_idx(path, array):
    """An IDX file of unsigned bytes (gzip-compressed when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def _idx_directory(directory, train_labels, gz=""):
    rng = np.random.default_rng(0)
    directory.mkdir()
    _write_idx(directory / f"train-images-idx3-ubyte{gz}", rng.integers(0, 256, (len(train_labels), 28, 28)))
    _write_idx(directory / f"train-labels-idx1-ubyte{gz}", train_labels)
    _write_idx(directory / f"t10k-images-idx3-ubyte{gz}", rng.integers(0, 256, (10, 28, 28)))
    _write_idx(directory / f"t10k-labels-idx1-ubyte{gz}", np.arange(10))


def _label_10(directory):
    _idx_directory(directory, np.r_[np.arange(10), 10])
    return "auto", "train-labels-idx1-ubyte"


def _truncated_gzip(directory):
    _idx_directory(directory, np.arange(40) % 10, gz=".gz")
    images = directory / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:2000])
    return "mnist", "cannot be read"


@pytest.mark.parametrize("craft", [_label_10, _truncated_gzip])
def test_a_malformed_data_file_exits_2_before_training(craft, tmp_path, capsys):
    dataset, named = craft(tmp_path / "data")
    out = tmp_path / "run"
    status = cli.main(["train", "--dataset", dataset, "--data-dir", str(tmp_path / "data"), "--quiet",
                       "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("mlp train: error:") and named in err and "Traceback" not in err
    assert not out.exists()


def _out_under_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    return ["--out", str(tmp_path / "file" / "run")], "cannot be created"


def _run_file_is_a_directory(tmp_path):
    (tmp_path / "run" / "summary.json").mkdir(parents=True)
    return ["--out", str(tmp_path / "run"), "--overwrite"], "is a directory"


def _checkpoint_is_a_directory(tmp_path):
    return ["--out", str(tmp_path / "run"), "--checkpoint", str(tmp_path)], "--checkpoint"


def _checkpoint_in_a_missing_directory(tmp_path):
    return ["--out", str(tmp_path / "run"), "--checkpoint", str(tmp_path / "no" / "ckpt.npz")], "does not exist"


def _earlier_checkpoint_without_resume(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"")
    return ["--out", str(tmp_path / "run"), "--checkpoint"], "--resume"


def _resume_without_a_run(tmp_path):
    return ["--resume"], "--out"


@pytest.mark.parametrize("paths", [_out_under_a_file, _run_file_is_a_directory, _checkpoint_is_a_directory,
                                   _checkpoint_in_a_missing_directory, _earlier_checkpoint_without_resume,
                                   _resume_without_a_run])
def test_an_unwritable_output_exits_2_before_training(paths, tmp_path, capsys):
    args, named = paths(tmp_path)
    status = cli.main(["train", *TINY, "--epochs", "1", *args])
    err = capsys.readouterr().err
    assert status == 2, err
    assert named in err
    assert not (tmp_path / "run" / "model.npz").exists()


@pytest.mark.parametrize("where, error", [("", IsADirectoryError), ("missing/ckpt.npz", FileNotFoundError)])
def test_trainer_checks_the_checkpoint_path_before_the_first_epoch(where, error, tmp_path, digits):
    X, y = digits
    epochs = []
    with pytest.raises(error, match="checkpoint_path"):
        Trainer(MLP([64, 8, 10], seed=0, backend="cpu"), epochs=1, threads=1).fit(
            X, y, checkpoint_path=tmp_path / where, callback=epochs.append)
    assert epochs == []
