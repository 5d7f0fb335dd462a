"""The `mlp` command line: `mlp train` end to end on digits, its files, its errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlp
from mlp import cli, datasets
from mlp.cli import train as train_command
from mlp.datasets import mnist
from mlp.defaults import MAIN_JOB, RECIPES, TRAINING
from mlp.files import write_json
from mlp.plotting import plot_history

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Small and quick: digits (64 features), one narrow hidden layer.
FAST = ["--dataset", "digits", "--batch-size", "32", "--backend", "cpu", "--quiet"]
# The network of the runs that do not choose their own (an option given twice is a search axis).
NET = ["--hidden", "32"]
# The recipes train on the whole training set; these runs hold out the validation split the recipes
# were chosen on, to check what is reported about it.
VALIDATED = ["--validation-fraction", "0.1"]
OUTPUT_FILES = {"model.npz", "history.json", "curves.png", "summary.json"}


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One in-process `mlp train` on digits, shared by the checks of its output."""
    out = tmp_path_factory.mktemp("cli") / "run"
    status = cli.main(["train", *FAST, *NET, *VALIDATED, "--epochs", "4", "--seed", "3", "--out", str(out)])
    return status, out


def test_train_exits_zero_and_writes_exactly_its_four_files(digits_run):
    status, out = digits_run
    assert status == 0
    # No temporary files left behind by the atomic writes.
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES


def test_history_has_one_record_per_epoch(digits_run):
    _, out = digits_run
    history = _read_json(out / "history.json")
    records = history["records"]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]  # 0-based, as the trainer counts
    assert all(np.isfinite(r["train_loss"]) for r in records)
    assert all(0 <= r["val_accuracy"] <= 1 for r in records)
    assert history["stop_reason"] == "max_epochs"


def test_summary_describes_the_run(digits_run):
    _, out = digits_run
    summary = _read_json(out / "summary.json")
    data = datasets.load_digits(seed=3)
    assert summary["dataset"] == "digits"
    assert summary["backend"] == "cpu"
    assert summary["layer_sizes"] == [64, 32, 10]
    assert summary["activation"] == "relu"
    assert summary["epochs_run"] == 4
    assert summary["kept_epoch"] == 3  # without early stopping: the last epoch's parameters
    assert summary["hyperparameters"]["epochs"] == 4
    assert summary["hyperparameters"]["batch_size"] == 32
    # The main job's optimizer: SGD with classical momentum, the cosine schedule.
    assert summary["hyperparameters"]["optimizer"] == "sgd"
    assert summary["hyperparameters"]["momentum"] == MAIN_JOB["momentum"]
    assert summary["hyperparameters"]["nesterov"] is False
    assert summary["hyperparameters"]["lr_schedule"] == MAIN_JOB["lr_schedule"] == "cosine"
    assert summary["recipe"] == "main"
    assert summary["n_train"] + summary["n_validation"] == data.n_train
    assert summary["n_validation"] == round(0.1 * data.n_train)
    assert summary["n_test"] == data.n_test
    assert summary["seconds_per_epoch_median"] > 0
    assert summary["training_seconds"] >= summary["seconds_per_epoch_median"]
    # the time in this machine's GEMM floors, and the compilation timed apart from the epochs
    assert summary["gemm_floor_seconds"] > 0 and summary["compile_seconds"] > 0
    assert summary["training_floors"] == pytest.approx(summary["training_seconds"] / summary["gemm_floor_seconds"])
    # Ten classes: chance is 0.1; four epochs on digits get far above it.
    assert summary["test_accuracy"] > 0.5
    assert summary["validation_accuracy"] > 0.5


def test_saved_model_predicts_the_reported_test_accuracy(digits_run):
    _, out = digits_run
    summary = _read_json(out / "summary.json")
    net = mlp.load(out / "model.npz", backend="cpu")
    assert net.layer_sizes == [64, 32, 10]
    data = datasets.load_digits(seed=3)
    accuracy = float(np.mean(net.predict(data.X_test) == data.y_test))
    assert accuracy == pytest.approx(summary["test_accuracy"], abs=1e-12)
    assert net.metadata["hyperparameters"]["epochs"] == 4
    assert net.metadata["dataset"] == "digits"


def test_curves_are_a_png(digits_run):
    _, out = digits_run
    data = (out / "curves.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_python_dash_m_mlp_train(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "mlp", "train", *FAST, *NET, *VALIDATED, "--epochs", "2", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy:" in proc.stdout
    assert "validation accuracy:" in proc.stdout
    assert "median time per epoch:" in proc.stdout
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES
    assert len(_read_json(out / "history.json")["records"]) == 2


def test_per_layer_options_reach_the_trainer(tmp_path):
    out = tmp_path / "run"
    status = cli.main(["train", *FAST, "--hidden", "16", "8", "--l2", "1e-4", "0", "0",
                       "--keep-prob", "1", "0.8", "0.5", "--dropout-mode", "per_batch",
                       "--epochs", "1", "--out", str(out)])
    assert status == 0
    summary = _read_json(out / "summary.json")
    assert summary["layer_sizes"] == [64, 16, 8, 10]
    assert summary["hyperparameters"]["l2"] == [1e-4, 0.0, 0.0]
    assert summary["hyperparameters"]["keep_prob"] == [1.0, 0.8, 0.5]
    assert summary["hyperparameters"]["dropout_mode"] == "per_batch"


@pytest.mark.parametrize("recipe", ["main", "best"])
def test_defaults_are_the_recipe(recipe):
    args = cli.build_parser(["train"]).parse_args(["train"] + (["--recipe", recipe] if recipe != "main" else []))
    train_command.apply_recipe(args)
    assert args.activation == "relu"
    job = RECIPES[recipe]
    assert args.hidden == list(job["hidden"]) and args.validation_fraction == job["validation_fraction"] == 0
    config = train_command._train_config(args)
    expected = mlp.TrainConfig(
        epochs=job["epochs"], batch_size=job["batch_size"], learning_rate=job["learning_rate"],
        momentum=job["momentum"], lr_schedule=job["lr_schedule"], warmup_epochs=job["warmup_epochs"],
        l2=job["l2"], l1=job["l1"], keep_prob=[job["keep_prob_input"]] + [job["keep_prob_hidden"]] * len(job["hidden"]),
        dropout_mode=job["dropout_mode"], patience=job["patience"], seed=job["seed"])
    assert config == expected
    assert (config.optimizer, config.nesterov) == ("sgd", False)
    assert (config.beta_1, config.beta_2, config.epsilon, config.power_t) == tuple(
        TRAINING[k] for k in ("beta_1", "beta_2", "epsilon", "power_t"))


def test_an_option_given_overrides_the_recipe(tmp_path):
    args = cli.build_parser(["train"]).parse_args(["train", "--recipe", "best", "--hidden", "64", "--epochs", "7",
                                                   "--lr-schedule", "decay", "--lr-decay", "0.1"])
    train_command.apply_recipe(args)
    config = train_command._train_config(args)
    assert args.hidden == [64] and config.epochs == 7
    assert (config.lr_schedule, config.lr_decay) == ("decay", 0.1)
    assert config.keep_prob == [RECIPES["best"]["keep_prob_input"], RECIPES["best"]["keep_prob_hidden"]]


# The numpy engine is the reference; the cpu engine must train the same options.
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_adam_tanh_and_invscaling_reach_the_trainer_and_the_files(backend, tmp_path):
    out = tmp_path / "run"
    fast = [a if a != "cpu" else backend for a in FAST]
    status = cli.main(["train", *fast, "--hidden", "16", "--epochs", "2", "--optimizer", "adam", "--lr", "0.01",
                       "--beta-1", "0.8", "--beta-2", "0.99", "--epsilon", "1e-7", "--activation", "tanh",
                       "--lr-schedule", "invscaling", "--power-t", "0.25", "--out", str(out)])
    assert status == 0
    summary = _read_json(out / "summary.json")
    hyper = summary["hyperparameters"]
    assert summary["backend"] == backend and summary["activation"] == "tanh"
    assert (hyper["optimizer"], hyper["beta_1"], hyper["beta_2"], hyper["epsilon"]) == ("adam", 0.8, 0.99, 1e-7)
    assert (hyper["lr_schedule"], hyper["power_t"]) == ("invscaling", 0.25)
    net = mlp.load(out / "model.npz", backend="numpy")
    assert net.activation == "tanh"
    # train_config is the trainer's own record of the configuration it ran with.
    trained = net.metadata["train_config"]
    assert (trained["optimizer"], trained["beta_1"], trained["beta_2"], trained["epsilon"]) == ("adam", 0.8, 0.99, 1e-7)
    assert (trained["lr_schedule"], trained["power_t"]) == ("invscaling", 0.25)
    assert net.metadata["activation"] == "tanh" and net.metadata["hyperparameters"] == hyper
    # The schedule ran: epoch 1's rate is lr / (samples seen + 1) ** power_t.
    records = _read_json(out / "history.json")["records"]
    assert records[1]["learning_rate"] == pytest.approx(0.01 / (summary["n_train"] + 1) ** 0.25)
    assert summary["test_accuracy"] > 0.5


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_nesterov_and_the_adaptive_schedule_reach_the_trainer(backend, tmp_path):
    out = tmp_path / "run"
    fast = [a if a != "cpu" else backend for a in FAST]
    status = cli.main(["train", *fast, *NET, "--epochs", "2", "--nesterov", "--momentum", "0.5", "--activation",
                       "logistic", "--lr-schedule", "adaptive", "--out", str(out)])
    assert status == 0
    net = mlp.load(out / "model.npz", backend="numpy")
    trained = net.metadata["train_config"]
    assert (trained["optimizer"], trained["nesterov"], trained["momentum"]) == ("sgd", True, 0.5)
    assert trained["lr_schedule"] == "adaptive" and net.activation == "logistic"
    assert _read_json(out / "summary.json")["hyperparameters"]["nesterov"] is True


def test_no_hidden_layer_is_softmax_regression_with_default_input_dropout(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", *FAST, "--hidden", "--epochs", "1", "--out", str(out)]) == 0
    summary = _read_json(out / "summary.json")
    assert summary["layer_sizes"] == [64, 10]
    assert summary["hyperparameters"]["keep_prob"] == [MAIN_JOB["keep_prob_input"]]


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    out = tmp_path / "run"
    status = cli.main(["train", *FAST, *NET, *VALIDATED, "--epochs", "30", "--early-stopping", "--patience", "2",
                       "--lr", "0.3", "--out", str(out)])
    assert status == 0
    summary = _read_json(out / "summary.json")
    history = _read_json(out / "history.json")
    assert summary["stop_reason"] in ("early_stopping", "max_epochs")
    assert summary["kept_epoch"] == summary["best_epoch"]
    best = min(r["val_loss"] for r in history["records"])
    # Improvements smaller than the trainer's tol (1e-4) do not move the best epoch.
    assert history["records"][summary["best_epoch"]]["val_loss"] <= best + 1e-4


@pytest.mark.parametrize("args, option", [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "many"], "--epochs"),
    (["--lr", "-0.1"], "--lr"),
    (["--keep-prob", "1.5"], "--keep-prob"),
    (["--momentum", "1"], "--momentum"),
    (["--validation-fraction", "1"], "--validation-fraction"),
    (["--dataset", "cifar10"], "--dataset"),
    (["--backend", "tpu"], "--backend"),
    (["--hidden", "0"], "--hidden"),
    (["--l2", "-1"], "--l2"),
    (["--l2", "1e-4", "1e-4", "1e-4"], "--l2"),          # 2 weight matrices, not 3
    (["--keep-prob", "0.9", "0.5", "0.5"], "--keep-prob"),  # input + 1 hidden, not 3
    (["--data-dir", "/nonexistent"], "--data-dir"),        # digits takes no directory
    (["--early-stopping", "--validation-fraction", "0"], "--early-stopping"),
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--activation", "softsign"], "--activation"),
    (["--lr-schedule", "step"], "--lr-schedule"),
    (["--warmup-epochs", "-1"], "--warmup-epochs"),
    (["--warmup-epochs", "1"], "--warmup-epochs"),                                 # not less than --epochs 1
    (["--lr-schedule", "invscaling", "--warmup-epochs", "0"], "--warmup-epochs"),  # invscaling has none
    (["--lr-schedule", "decay", "--recipe", "fast"], "--recipe"),
    (["--beta-1", "1"], "--beta-1"),
    (["--beta-2", "-0.1"], "--beta-2"),
    (["--epsilon", "0"], "--epsilon"),
    (["--power-t", "-1"], "--power-t"),
    # Options that the chosen optimizer or schedule would ignore.
    (["--optimizer", "adam", "--momentum", "0.5"], "--momentum"),
    (["--optimizer", "adam", "--nesterov"], "--nesterov"),
    (["--nesterov", "--momentum", "0"], "--nesterov"),
    (["--beta-1", "0.8"], "--beta-1"),
    (["--epsilon", "1e-6"], "--epsilon"),
    (["--lr-schedule", "invscaling", "--lr-decay", "0.1"], "--lr-decay"),
    (["--power-t", "0.3"], "--power-t"),
])
def test_bad_arguments_exit_2_naming_the_option(args, option, tmp_path, capsys):
    out = tmp_path / "run"
    net = [] if "--hidden" in args else NET
    status = cli.main(["train", *FAST, *net, "--epochs", "1", "--out", str(out), *args])
    assert status == 2
    assert option in capsys.readouterr().err
    assert not out.exists()


def test_explicit_fashion_mnist_missing_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["train", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "empty"),
                       "--out", str(out), "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in err
    assert "not found" in err
    assert not out.exists()


def test_auto_with_a_data_dir_does_not_fall_back(tmp_path, capsys):
    status = cli.main(["train", "--dataset", "auto", "--data-dir", str(tmp_path), "--quiet",
                       "--out", str(tmp_path / "run")])
    assert status == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_auto_falls_back_to_digits_with_a_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mnist, "DEFAULT_FASHION_MNIST_DIR", tmp_path / "no-fashion-mnist")
    monkeypatch.delenv("MLP_DATA", raising=False)
    out = tmp_path / "run"
    args = [a for a in FAST if a not in ("--dataset", "digits")]
    status = cli.main(["train", "--dataset", "auto", *args, *NET, "--epochs", "1", "--out", str(out)])
    assert status == 0
    # Shown even with --quiet: the numbers are about another data set than asked.
    assert "training on scikit-learn's digits instead" in capsys.readouterr().err
    summary = _read_json(out / "summary.json")
    assert summary["dataset"] == "digits"
    assert "dataset-fashion-mnist" in summary["dataset_notice"]


def test_keyboard_interrupt_keeps_the_model_writes_the_files_and_exits_130(tmp_path, monkeypatch):
    real_progress = train_command.epoch_progress

    def progress_interrupted_at_epoch_2(args, total):
        bar, callback = real_progress(args, total)

        def interrupting(record):
            callback(record)
            if len(seen) == 1:
                raise KeyboardInterrupt
            seen.append(record)

        seen = []
        return bar, interrupting

    monkeypatch.setattr(train_command, "epoch_progress", progress_interrupted_at_epoch_2)
    out = tmp_path / "run"
    status = cli.main(["train", *FAST, *NET, "--epochs", "10", "--out", str(out)])
    assert status == 130
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES
    summary = _read_json(out / "summary.json")
    assert summary["stop_reason"] == "interrupted"
    assert summary["kept_epoch"] == summary["best_epoch"]
    assert summary["epochs_run"] < 10
    assert summary["test_accuracy"] > 0.1


def test_search_without_mlp_search_is_a_clear_error(monkeypatch, capsys):
    # None in sys.modules makes `import mlp.search` raise ImportError.
    monkeypatch.setitem(sys.modules, "mlp.search", None)
    monkeypatch.delattr(mlp, "search", raising=False)
    status = cli.main(["search", "--anything"])
    assert status == 2
    err = capsys.readouterr().err
    assert "search" in err and "mlp.search" in err


def test_help_and_version_exit_zero(capsys):
    assert cli.main(["--version"]) == 0
    assert mlp.__version__ in capsys.readouterr().out
    assert cli.main(["train", "--help"]) == 0
    help_text = capsys.readouterr().out
    for option in ("--dataset", "--hidden", "--keep-prob", "--l2", "--early-stopping", "--out", "--optimizer",
                   "--nesterov", "--beta-1", "--beta-2", "--epsilon", "--lr-schedule", "--power-t", "--activation"):
        assert option in help_text


def test_no_subcommand_is_a_usage_error(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


def test_write_json_replaces_nan_with_null(tmp_path):
    path = tmp_path / "x.json"
    write_json(path, {"a": float("nan"), "b": [1.5, np.float32(2.0), float("inf")], "c": np.int64(3)})
    assert _read_json(path) == {"a": None, "b": [1.5, 2.0, None], "c": 3}
    assert os.listdir(tmp_path) == ["x.json"]


def test_plot_history_skips_missing_values_and_rejects_bad_records(tmp_path):
    records = [{"epoch": 1, "train_loss": 1.0, "val_loss": None, "val_accuracy": float("nan")},
               {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6, "val_accuracy": 0.8}]
    path = plot_history(records, tmp_path / "c.png", title="t", kept_epoch=2)
    assert path.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="records\\[0\\]"):
        plot_history([{"loss": 1.0}], tmp_path / "d.png")


@pytest.mark.parametrize("threads, expected", [("1", 1), ("auto", "auto")])
def test_threads_option_reaches_the_trainer_and_the_summary(threads, expected, tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", *FAST, *NET, "--epochs", "2", "--threads", threads, "--out", str(out)]) == 0
    summary = _read_json(out / "summary.json")
    assert summary["threads"]["setting"] == expected
    counts = [r["threads"] for r in _read_json(out / "history.json")["records"]]
    assert len(counts) == 2 and all(c >= 1 for c in counts)
    if expected == 1:
        assert counts == [1, 1] and summary["threads"]["probes"] == []


@pytest.mark.parametrize("bad", ["0", "two", "1.5"])
def test_a_bad_thread_count_is_a_usage_error(bad, tmp_path, capsys):
    assert cli.main(["train", *FAST, *NET, "--epochs", "1", "--threads", bad, "--out", str(tmp_path / "r")]) == 2
    assert "--threads" in capsys.readouterr().err
