"""mlp.search: grid/random search on a validation split, journal and resume, joblib and Dask workers."""
import csv
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

import mlp
from mlp import search as S
from mlp.datasets import load_dataset

# Tiny trials: digits (64 features), 8 hidden units, 2 epochs; a trial takes milliseconds.
BASE = {"hidden": [8], "epochs": 2, "learning_rate": 0.1, "batch_size": 32}
SLOWER = {"hidden": [64], "epochs": 10, "learning_rate": 0.1, "batch_size": 32}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def space(**candidates):
    return {**BASE, **candidates}


def scores(result):
    return [(row["key"], row["val_accuracy"], row["val_loss"]) for row in result.trials]


def assert_same_scores(result, reference):
    """Equal up to rounding: BLAS sums in another order when a worker has fewer threads than this process."""
    assert [row["key"] for row in result.trials] == [row["key"] for row in reference.trials]
    for row, ref in zip(result.trials, reference.trials):
        # One validation sample (of 135) may flip only if rounding moves a tie.
        assert row["val_accuracy"] == pytest.approx(ref["val_accuracy"], abs=0.008)
        assert row["val_loss"] == pytest.approx(ref["val_loss"], rel=1e-5)


def journal_lines(out_dir):
    return (out_dir / S.JOURNAL_NAME).read_bytes().splitlines(keepends=True)


def kill_worker_of(row):
    """SIGKILL the worker process that ran this trial (row['worker'] is 'host:pid')."""
    os.kill(int(row["worker"].rsplit(":", 1)[1]), signal.SIGKILL)


# --------------------------------------------------------------------------- configurations
def test_grid_runs_the_full_product_in_order(digits):
    grid = {"hidden": [8, (8, 4)], "l2": [0.0, 1e-3], "keep_prob_hidden": [0.5, 1.0]}
    result = S.search(digits, {"epochs": 2, **grid})
    got = [(row["hidden"], row["l2"], row["keep_prob_hidden"]) for row in result.trials]
    # The space's order, the last name varying fastest.
    assert got == list(itertools.product([[8], [8, 4]], [0.0, 1e-3], [0.5, 1.0]))
    assert [row["trial"] for row in result.trials] == list(range(8))
    assert len({row["key"] for row in result.trials}) == 8
    assert result.n_trained == 8 and result.n_resumed == 0
    assert all(0 <= row["val_accuracy"] <= 1 and row["epochs_run"] == 2 for row in result.trials)
    assert result.best is min(result.trials, key=lambda r: (-r["val_accuracy"], r["val_loss"], r["trial"]))


def test_per_layer_strengths_reach_the_trainer(digits):
    # A huge L1 on one weight matrix crushes it to (almost) zero; the other keeps its weights.
    for l1 in ((5.0, 0.0), (0.0, 5.0)):
        result = S.search(digits, space(l1=[l1]))
        assert result.best_params["l1"] == list(l1)
        crushed, free = (result.best_model.get_parameters()[0][i] for i in ((0, 1) if l1[0] else (1, 0)))
        assert np.abs(crushed).max() < 0.02 < 0.2 < np.abs(free).max()


@pytest.fixture
def trained_with(monkeypatch):
    """What each Trainer the search builds in this process got: (activation, TrainConfig)."""
    from mlp.search import trials

    seen = []

    class RecordingTrainer(trials.Trainer):
        def __init__(self, net, config=None, **overrides):
            super().__init__(net, config, **overrides)
            seen.append((net.activation, self.config))

    monkeypatch.setattr(trials, "Trainer", RecordingTrainer)
    return seen


# The numpy engine is the reference; the cpu engine must train the same options.
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_optimizer_and_activation_axes_reach_every_trial(digits, trained_with, backend):
    result = S.search(digits, space(optimizer=["sgd", "adam"], activation=["relu", "tanh"], nesterov=True,
                                    momentum=0.5, learning_rate=[0.01]), backend=backend)
    grid = list(itertools.product(["sgd", "adam"], ["relu", "tanh"]))
    assert [(row["optimizer"], row["activation"]) for row in result.trials] == grid
    assert all(row["nesterov"] is True and row["momentum"] == 0.5 for row in result.trials)
    # Every trial, then the best one retrained, was trained with its values.
    got = [(config.optimizer, activation, config.nesterov, config.momentum) for activation, config in trained_with]
    best = (result.best_params["optimizer"], result.best_params["activation"])
    assert got == [(o, a, True, 0.5) for o, a in grid + [best]]
    # And they matter: four different networks, four different validation losses.
    assert len({row["val_loss"] for row in result.trials}) == 4
    assert result.best_model.activation == result.best_params["activation"]
    assert result.best_model.metadata["train_config"]["optimizer"] == result.best_params["optimizer"]


def test_fixed_adam_and_schedule_values_reach_the_trainer(digits, trained_with):
    result = S.search(digits, space(optimizer="adam", beta_1=0.8, beta_2=[0.99], epsilon=1e-7,
                                    lr_schedule=["invscaling"], power_t=0.25, activation="logistic",
                                    learning_rate=0.01), backend="numpy")
    [row] = result.trials
    assert (row["optimizer"], row["beta_1"], row["beta_2"], row["epsilon"]) == ("adam", 0.8, 0.99, 1e-7)
    for activation, config in trained_with:
        assert activation == "logistic"
        assert (config.optimizer, config.beta_1, config.beta_2, config.epsilon) == ("adam", 0.8, 0.99, 1e-7)
        assert (config.lr_schedule, config.power_t) == ("invscaling", 0.25)


def test_random_search_draws_adam_rates(digits):
    result = S.search(digits, space(optimizer="adam", beta_1=S.Uniform(0.5, 0.95), power_t=S.Uniform(0.1, 0.9),
                                    lr_schedule="invscaling", learning_rate=0.01),
                      method="random", n_trials=3, seed=2, backend="numpy")
    assert len({row["beta_1"] for row in result.trials}) == 3
    assert all(0.5 <= row["beta_1"] <= 0.95 and 0.1 <= row["power_t"] <= 0.9 for row in result.trials)


def test_random_search_is_reproducible_and_without_repetition(digits):
    grid = {"l2": [0.0, 1e-4, 1e-3, 1e-2], "keep_prob_hidden": [0.5, 0.75, 1.0]}
    draws = [S.search(digits, space(**grid), method="random", n_trials=5, seed=seed) for seed in (3, 3, 4)]
    params = [[(r["l2"], r["keep_prob_hidden"]) for r in d.trials] for d in draws]
    assert params[0] == params[1] and scores(draws[0]) == scores(draws[1])
    assert len(set(params[0])) == 5 and set(params[0]) <= set(itertools.product(*grid.values()))
    assert params[0] != params[2]


def test_random_search_samples_distributions(digits):
    result = S.search(digits, space(l2=S.LogUniform(1e-6, 1e-2), keep_prob_input=S.Uniform(0.6, 1.0)),
                      method="random", n_trials=4, seed=1)
    l2 = [row["l2"] for row in result.trials]
    assert len(set(l2)) == 4 and all(1e-6 <= a <= 1e-2 for a in l2)
    assert all(0.6 <= row["keep_prob_input"] <= 1.0 for row in result.trials)


@pytest.mark.parametrize("bad, kwargs, error, words", [
    ({"alpha": [1.0]}, {}, ValueError, "unknown search parameter"),
    ({"l2": S.LogUniform(1e-5, 1e-3)}, {}, ValueError, "method='random'"),
    ({"l2": [0.0]}, {"n_trials": 3}, ValueError, "n_trials is for method='random'"),
    ({"l2": [0.0]}, {"method": "random"}, ValueError, "needs n_trials"),
    ({"l2": [-1.0]}, {}, ValueError, "space['l2']"),
    ({"l2": [(1e-4, 1e-4, 1e-4)]}, {}, ValueError, "one value per weight matrix"),
    ({"keep_prob_hidden": [0.0]}, {}, ValueError, "keep_prob_hidden"),
    ({"keep_prob": [0.5], "keep_prob_input": [0.8]}, {}, ValueError, "not both"),
    ({"hidden": ["wide"]}, {}, TypeError, "hidden"),
    ({"epochs": [0]}, {}, ValueError, "epochs"),
    ({"l2": []}, {}, ValueError, "no candidates"),
    ({"l2": [0.0]}, {"n_jobs": 0}, ValueError, "n_jobs"),
    ({"l2": [0.0]}, {"validation_fraction": 1.0}, ValueError, "validation_fraction"),
    ({"optimizer": ["sgd", "rmsprop"]}, {}, ValueError, "space['optimizer']"),
    ({"activation": ["softsign"]}, {}, ValueError, "space['activation']"),
    ({"lr_schedule": ["step"]}, {}, ValueError, "space['lr_schedule']"),
    ({"nesterov": ["yes"]}, {}, TypeError, "space['nesterov']"),
    ({"beta_1": [1.0]}, {}, ValueError, "space['beta_1']"),
    ({"beta_2": [-0.1]}, {}, ValueError, "space['beta_2']"),
    ({"epsilon": [0.0]}, {}, ValueError, "space['epsilon']"),
    ({"power_t": [-1.0]}, {}, ValueError, "space['power_t']"),
    ({"activation": S.Uniform(0, 1)}, {"method": "random", "n_trials": 2}, ValueError, "give a list"),
])
def test_bad_input_is_named(digits, bad, kwargs, error, words):
    with pytest.raises(error) as info:
        S.search(digits, space(**bad), **kwargs)
    assert words in str(info.value)


# --------------------------------------------------------------------------- the test set
class WatchedDataset:
    """A data set whose test arrays note how many trials were journalled when they were read."""

    def __init__(self, dataset, journal):
        self._dataset, self._journal = dataset, journal
        self.X_train, self.y_train = dataset.X_train, dataset.y_train
        self.n_classes, self.name = dataset.n_classes, "watched-digits"
        self.test_reads = []

    def _read(self, name):
        self.test_reads.append((name, len(S.read_journal(self._journal))))
        return getattr(self._dataset, name)

    X_test = property(lambda self: self._read("X_test"))
    y_test = property(lambda self: self._read("y_test"))


def test_test_set_is_read_once_after_every_trial(digits, tmp_path):
    watched = WatchedDataset(digits, tmp_path / S.JOURNAL_NAME)
    result = S.search(watched, space(l2=[0.0, 1e-3], keep_prob_hidden=[0.5, 1.0]), out_dir=tmp_path)
    assert watched.test_reads == [("X_test", 4), ("y_test", 4)]
    expected = float(np.mean(result.best_model.predict(digits.X_test) == digits.y_test))
    assert result.test_accuracy == pytest.approx(expected)
    # Retraining the best configuration on the same split and seed reproduces its trial.
    assert result.refit_val_accuracy == result.best["val_accuracy"]


def test_arrays_without_a_test_part_give_no_test_accuracy(digits):
    result = S.search((digits.X_train, digits.y_train), space(l2=[0.0, 1e-3]))
    assert result.test_accuracy is None and len(result.trials) == 2


# --------------------------------------------------------------------------- files and journal
def test_results_files(digits, tmp_path):
    result = S.search(digits, space(l2=[0.0, 1e-3], keep_prob_input=[0.8, 1.0], l1=[(0.0, 1e-4)]),
                      out_dir=tmp_path)
    with open(tmp_path / "trials.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4
    assert [float(r["val_accuracy"]) for r in table] == [r["val_accuracy"] for r in result.trials]
    assert {"l2", "keep_prob_input", "l1", "hidden", "epochs_run", "seconds", "val_loss"} <= set(table[0])
    assert json.loads(table[0]["l1"]) == [0.0, 1e-4]
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert rows == json.loads(json.dumps(result.trials))
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["params"] == result.best_params and best["test_accuracy"] == result.test_accuracy
    assert best["val_accuracy"] == max(r["val_accuracy"] for r in result.trials)
    assert (tmp_path / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reloaded = mlp.load_model(tmp_path / "best_model.npz")
    np.testing.assert_array_equal(reloaded.predict(digits.X_test), result.best_model.predict(digits.X_test))
    assert len(journal_lines(tmp_path)) == 4


def test_rerun_resumes_only_the_missing_trials(digits, tmp_path):
    grid = space(l2=[0.0, 1e-3], keep_prob_hidden=[0.5, 1.0])
    first = S.search(digits, grid, out_dir=tmp_path)
    lines = journal_lines(tmp_path)
    (tmp_path / S.JOURNAL_NAME).write_bytes(b"".join(lines[:1] + lines[2:]))  # lose trial 1's record
    second = S.search(digits, grid, out_dir=tmp_path)
    assert (second.n_trained, second.n_resumed) == (1, 3)
    assert [r["resumed"] for r in second.trials] == [True, False, True, True]
    assert scores(second) == scores(first)
    assert len(S.read_journal(tmp_path / S.JOURNAL_NAME)) == 4
    reported = []
    third = S.search(digits, grid, out_dir=tmp_path, callback=reported.append)
    assert (third.n_trained, third.n_resumed) == (0, 4)
    # Progress counts the journal's trials as done.
    assert [(r["trial"], r["resumed"]) for r in reported] == [(i, True) for i in range(4)]


def test_an_interrupted_refit_leaves_every_trial_written_and_no_best(digits, tmp_path, monkeypatch):
    from mlp.search import driver

    def interrupted(plan, best_row):
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "_refit_best", interrupted)
    with pytest.raises(KeyboardInterrupt):
        S.search(digits, space(l2=[0.0, 1e-3]), out_dir=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {S.JOURNAL_NAME, "trials.csv", "trials.json", "search.png"}
    monkeypatch.undo()
    result = S.search(digits, space(l2=[0.0, 1e-3]), out_dir=tmp_path)
    assert result.n_resumed == 2 and (tmp_path / "best.json").exists()
    # The best model keeps what names its classes and data set.
    model = mlp.load_model(tmp_path / "best_model.npz")
    assert model.metadata["class_names"] == list(digits.class_names) and model.metadata["dataset"] == "digits"


def test_changed_split_does_not_reuse_journalled_trials(digits, tmp_path):
    grid = space(l2=[0.0, 1e-3])
    S.search(digits, grid, out_dir=tmp_path)
    other = S.search(digits, grid, out_dir=tmp_path, validation_fraction=0.2)
    assert (other.n_trained, other.n_resumed) == (2, 0)


def test_torn_last_journal_line_is_ignored_with_a_warning(digits, tmp_path):
    grid = space(l2=[0.0, 1e-3], keep_prob_hidden=[0.5, 1.0])
    first = S.search(digits, grid, out_dir=tmp_path)
    lines = journal_lines(tmp_path)
    # A crash in the middle of writing the last record: half a line, no newline.
    (tmp_path / S.JOURNAL_NAME).write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    with pytest.warns(RuntimeWarning, match=r"not a complete trial record, ignored; removed from the journal: "
                                            r"line 4 \(not valid JSON"):
        second = S.search(digits, grid, out_dir=tmp_path)
    assert (second.n_trained, second.n_resumed) == (1, 3)
    assert scores(second) == scores(first)
    # The torn fragment was dropped from the journal and the new record went on a line of its own:
    # every line is whole again, and no later run warns.
    assert len(journal_lines(tmp_path)) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(S.read_journal(tmp_path / S.JOURNAL_NAME)) == 4


# --------------------------------------------------------------------------- joblib workers
def test_two_joblib_workers_give_the_scores_of_one_process(digits, tmp_path):
    grid = {**SLOWER, "l2": [0.0, 1e-3], "keep_prob_hidden": [0.5, 1.0]}
    # The same BLAS thread count in both: bit-identical scores.
    sequential = S.search(digits, grid, threads_per_trial=1)
    parallel = S.search(digits, grid, n_jobs=2, out_dir=tmp_path)
    assert [r["threads"] for r in parallel.trials] == [max(1, len(os.sched_getaffinity(0)) // 2)] * 4
    if parallel.trials[0]["threads"] == 1:
        assert scores(parallel) == scores(sequential)
    assert_same_scores(parallel, sequential)
    # The retrained best network runs with the thread count of its trial: the same network.
    assert parallel.refit_val_accuracy == parallel.best["val_accuracy"]
    workers = {row["worker"] for row in parallel.trials}
    assert f"{platform.node()}:{os.getpid()}" not in workers
    assert len(S.read_journal(tmp_path / S.JOURNAL_NAME)) == 4


def test_killed_joblib_worker_keeps_the_journal_and_rerun_completes(digits, tmp_path):
    # Trials of ~0.2 s, so that the others are still running when a worker is killed.
    grid = {**SLOWER, "l2": [0.0, 1e-3, 1e-2], "keep_prob_hidden": [0.5, 1.0]}
    killed = []

    def kill_once(row):
        if not killed:
            killed.append(row["key"])
            kill_worker_of(row)

    with pytest.raises(S.SearchIncomplete, match="run the same search again") as info:
        S.search(digits, grid, n_jobs=2, out_dir=tmp_path, callback=kill_once)
    done = S.read_journal(tmp_path / S.JOURNAL_NAME)
    assert killed[0] in done and len(done) == info.value.n_done < info.value.n_total == 6
    # The rest in this process, with the workers' thread count: the scores of an uninterrupted search.
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    rerun = S.search(digits, grid, out_dir=tmp_path, threads_per_trial=threads)
    assert (rerun.n_trained, rerun.n_resumed) == (6 - len(done), len(done))
    assert scores(rerun) == scores(S.search(digits, grid, threads_per_trial=threads))


# --------------------------------------------------------------------------- Dask
@pytest.fixture(scope="module")
def dask_client():
    import dask.distributed as distributed

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_cluster_runs_the_search_on_its_workers(digits, tmp_path, dask_client):
    grid = space(l2=[0.0, 1e-3], keep_prob_hidden=[0.5, 1.0])
    result = S.search(digits, grid, client=dask_client, out_dir=tmp_path)
    assert scores(result) == scores(S.search(digits, grid, threads_per_trial=1))
    worker_pids = set(dask_client.run(os.getpid).values())
    assert {int(row["worker"].rsplit(":", 1)[1]) for row in result.trials} <= worker_pids
    assert len(S.read_journal(tmp_path / S.JOURNAL_NAME)) == 4


def test_dask_scheduler_address_and_a_killed_worker(digits, tmp_path, dask_client):
    grid = {**SLOWER, "l2": [0.0, 1e-3, 1e-2], "keep_prob_hidden": [0.5, 1.0]}
    pids_before = dask_client.run(os.getpid)
    in_flight_on_killed = []

    def kill_once(row):
        if not in_flight_on_killed:
            pid = int(row["worker"].rsplit(":", 1)[1])
            address = next(a for a, p in pids_before.items() if p == pid)
            in_flight_on_killed.append(list(dask_client.processing()[address]))
            kill_worker_of(row)

    result = S.search(digits, grid, scheduler=dask_client.scheduler.address, out_dir=tmp_path,
                      callback=kill_once)
    # The killed worker held a trial; the scheduler ran it elsewhere and the search finished.
    assert in_flight_on_killed[0]
    assert len(result.trials) == 6 and result.n_trained == 6
    assert len(S.read_journal(tmp_path / S.JOURNAL_NAME)) == 6
    assert scores(result) == scores(S.search(digits, grid, threads_per_trial=1))
    dask_client.wait_for_workers(2, timeout=30)
    assert set(dask_client.run(os.getpid).values()) != set(pids_before.values())


def test_sklearn_grid_search_on_the_dask_backend(digits, dask_client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    gs = GridSearchCV(mlp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0),
                      {"l2": [0.0, 1e-3], "keep_prob": [1.0, (1.0, 0.5)]}, cv=2, n_jobs=2)
    with joblib.parallel_backend("dask"):
        gs.fit(digits.X_train, digits.y_train)
    assert len(gs.cv_results_["params"]) == 4 and 0 <= gs.best_score_ <= 1


# --------------------------------------------------------------------------- command line
def test_cli_search_writes_results_and_resumes(tmp_path, capsys):
    from mlp.cli import main

    argv = ["search", "--dataset", "digits", "--hidden", "8", "--hidden", "8", "4", "--l2", "0,1e-3", "--l1", "0",
            "--keep-prob-input", "1", "--keep-prob-hidden", "0.5,1", "--epochs", "2",
            "--batch-size", "32", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "8 trials (8 trained now, 0 from the journal)" in out and "test accuracy" in out
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["params"]["hidden"] in ([8], [8, 4]) and best["n_trials"] == 8
    assert main(argv) == 0
    assert "8 trials (0 trained now, 8 from the journal)" in capsys.readouterr().out
    random = ["search", "--dataset", "digits", "--hidden", "8", "--l2", "log:1e-5:1e-2", "--epochs", "1",
              "--method", "random", "--n-trials", "3", "--out", str(tmp_path / "random"), "--quiet"]
    assert main(random) == 0
    assert len(json.loads((tmp_path / "random" / "trials.json").read_text())) == 3


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_cli_search_over_optimizer_and_activation(tmp_path, capsys, backend):
    from mlp.cli import main

    argv = ["search", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--batch-size", "32", "--lr", "0.01",
            "--optimizer", "sgd,adam", "--activation", "relu,tanh", "--nesterov", "--backend", backend,
            "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    assert "4 trials (4 trained now, 0 from the journal)" in capsys.readouterr().out
    journalled = [record["params"] for record in S.read_journal(tmp_path / S.JOURNAL_NAME).values()]
    assert sorted((p["optimizer"], p["activation"]) for p in journalled) == sorted(
        itertools.product(["sgd", "adam"], ["relu", "tanh"]))
    assert all(p["nesterov"] is True for p in journalled)
    with open(tmp_path / "trials.csv", newline="") as f:
        table = list(csv.DictReader(f))
    # The grid's order: the optional names come after the others, in the order of the help.
    assert [(r["activation"], r["optimizer"]) for r in table] == list(
        itertools.product(["relu", "tanh"], ["sgd", "adam"]))
    best = json.loads((tmp_path / "best.json").read_text())
    model = mlp.load_model(tmp_path / "best_model.npz")
    assert model.activation == best["params"]["activation"]
    assert model.metadata["search_best"]["params"]["optimizer"] == best["params"]["optimizer"]
    assert main(argv) == 0  # resumes: the same keys
    assert "4 trials (0 trained now, 4 from the journal)" in capsys.readouterr().out


def test_cli_search_names_the_new_options_only_when_given():
    from mlp.cli import build_parser
    from mlp.cli.search import _space

    def names(*options):
        return list(_space(build_parser(["search"]).parse_args(["search", *options])))

    # Without them the space is what it was before they existed, so journals of earlier searches resume;
    # except the schedule, always named since the main job's became "cosine": an earlier trial under
    # "decay" is another trial.
    assert names() == ["hidden", "l2", "l1", "keep_prob_input", "keep_prob_hidden", "learning_rate", "momentum",
                       "lr_schedule", "lr_decay", "epochs", "batch_size"]
    space = _space(build_parser(["search"]).parse_args(
        ["search", "--optimizer", "adam", "--beta-1", "0.8,0.9", "--beta-2", "uniform:0.9:0.999",
         "--epsilon", "1e-7", "--lr-schedule", "decay,invscaling", "--power-t", "0.5", "--activation", "tanh",
         "--nesterov", "false,true"]))
    assert space["optimizer"] == ["adam"] and space["beta_1"] == [0.8, 0.9] and space["epsilon"] == [1e-7]
    assert space["beta_2"] == S.Uniform(0.9, 0.999)
    assert space["lr_schedule"] == ["decay", "invscaling"] and space["power_t"] == [0.5]
    assert space["activation"] == ["tanh"] and space["nesterov"] == [False, True]


@pytest.mark.parametrize("argv, words", [
    (["--l2", "-1"], "argument --l2: value must be >= 0"),
    (["--l2", "log:1e-3:1e-5"], "needs LOW < HIGH"),
    (["--method", "random"], "needs n_trials"),
    (["--l2", "log:1e-5:1e-3"], "method='random'"),
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--activation", "softsign"], "--activation"),
    (["--lr-schedule", "step"], "--lr-schedule"),
    (["--nesterov", "maybe"], "--nesterov"),
    (["--beta-1", "1"], "argument --beta-1"),
    (["--epsilon", "0"], "argument --epsilon"),
    (["--lr", "0.1", "log:1e-3:1e-1"], "--lr takes one value"),
    (["--lr", "0.01", "0.1"], "joined by commas: --lr 0.01,0.1"),
    (["--lr", "0.1", "--lr", "log:1e-3:1e-1", "--method", "random", "--n-trials", "2"], "stands alone"),
    (["--epochs", "log:1:5"], "draws real numbers"),
    (["--l2", "1e-4", "0", "0"], "--hidden 8 needs one value or 2"),
    (["--keep-prob", "0.9", "--keep-prob-hidden", "0.5"], "not both"),
    (["--hidden", "none", "8"], "--hidden none stands alone"),
])
def test_cli_bad_arguments_exit_2(tmp_path, capsys, argv, words):
    from mlp.cli import main

    base = ["search", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    assert main(base + argv) == 2
    assert words in capsys.readouterr().err


def test_importable_without_dask_and_a_clear_error_when_it_is_needed():
    code = ("import sys\n"
            "sys.modules['dask'] = sys.modules['distributed'] = None  # as if not installed\n"
            "import mlp.search as S\n"
            "try:\n"
            "    S.search('digits', {'hidden': [8], 'epochs': 1}, scheduler='tcp://127.0.0.1:1')\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pip install 'numba-mlp[dask]'" in done.stdout


def test_thread_limit_covers_the_blas_that_numba_loads_late():
    # A fresh process, as a worker is: numba's BLAS is not loaded until the first trial uses it.
    code = ("import threadpoolctl\n"
            "from mlp.search.trials import limited_threads, train_trial\n"
            "import numpy as np\n"
            "rng = np.random.default_rng(0)\n"
            "X, y = rng.random((300, 64), dtype=np.float32), rng.integers(0, 10, 300)\n"
            "split = (X[:200], y[:200], X[200:], y[200:])\n"
            "settings = dict(n_features=64, n_classes=10, seed=0, dtype='float32', backend='cpu')\n"
            "with limited_threads(1):\n"
            "    train_trial({'hidden': [8], 'epochs': 1}, split, settings)\n"
            "    print(max(i['num_threads'] for i in threadpoolctl.threadpool_info()))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
