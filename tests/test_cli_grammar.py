"""One grammar for `mlp train` and `mlp search`; the command line's errors, each a message and exit 2."""
import json

import numpy as np
import pytest

import kernels
from mlp import cli
from mlp.cli import grammar
from mlp.cli import train as train_command
from mlp.cli.search import _space

FAST = ["--dataset", "digits", "--hidden", "16", "--batch-size", "32", "--backend", "cpu", "--quiet"]


def _train_args(*words):
    return train_command.apply_recipe(cli.build_parser(["train"]).parse_args(["train", *words]))


def _search_space(*words):
    return _space(cli.build_parser(["search"]).parse_args(["search", *words]))


# --------------------------------------------------------------------------- the same words, the same meaning
@pytest.mark.parametrize("words, name, value", [
    (["--hidden", "128", "64"], "hidden", [128, 64]),   # one network, two hidden layers
    (["--hidden", "none"], "hidden", []),
    (["--hidden"], "hidden", []),
    (["--l2", "1e-4", "0", "0", "--hidden", "8", "8"], "l2", [1e-4, 0.0, 0.0]),  # one per weight matrix
    (["--keep-prob", "0.9", "0.7"], "keep_prob", [0.9, 0.7]),  # the input's, then the hidden layer's
    (["--lr", "0.01"], "learning_rate", 0.01),
    (["--optimizer", "adam"], "optimizer", "adam"),
    (["--nesterov"], "nesterov", True),
    (["--nesterov", "false"], "nesterov", False),
])
def test_what_train_accepts_means_the_same_in_search(words, name, value):
    trained = getattr(_train_args(*words), name)
    assert trained == value
    searched = _search_space(*words)[name]
    assert searched == [tuple(value) if name == "hidden" else value]


@pytest.mark.parametrize("words, name, candidates", [
    (["--lr", "0.01,0.05,0.1"], "learning_rate", [0.01, 0.05, 0.1]),
    (["--hidden", "256,512"], "hidden", [(256,), (512,)]),
    (["--hidden", "512", "128,256"], "hidden", [(512, 128), (512, 256)]),
    (["--hidden", "256", "--hidden", "512", "256"], "hidden", [(256,), (512, 256)]),
    (["--hidden", "none", "--hidden", "8"], "hidden", [(), (8,)]),
    (["--l2", "0,1e-4"], "l2", [0.0, 1e-4]),                         # one strength for every layer
    (["--l2", "1e-4", "0,1e-5"], "l2", [[1e-4, 0.0], [1e-4, 1e-5]]),  # per layer, the second an axis
    (["--optimizer", "sgd,adam"], "optimizer", ["sgd", "adam"]),
    (["--nesterov", "false,true"], "nesterov", [False, True]),
])
def test_a_search_axis_and_train_refusing_it(words, name, candidates, capsys):
    assert _search_space(*words)[name] == candidates
    assert cli.main(["train", *[w for w in FAST if w not in ("--hidden", "16")], *words]) == 2
    assert "search axis (mlp search)" in capsys.readouterr().err


def test_a_distribution_is_an_axis_of_a_random_search(capsys):
    assert _search_space("--l2", "log:1e-6:1e-2")["l2"].low == 1e-6
    assert cli.main(["train", *FAST, "--l2", "log:1e-6:1e-2"]) == 2
    assert "search axis" in capsys.readouterr().err


def test_the_space_without_options_is_the_main_job():
    space = _search_space()
    args = _train_args()
    assert space["hidden"] == [tuple(args.hidden)] and space["learning_rate"] == [args.learning_rate]
    assert space["l2"] == args.l2 and space["epochs"] == [args.epochs]


def test_every_option_of_the_grammar_is_in_both_commands():
    for command in ("train", "search"):
        parser = cli.build_parser([command])
        sub = next(a for a in parser._actions if a.dest == "command").choices[command]
        flags = {flag for action in sub._actions for flag in action.option_strings}
        assert {option.flag for option in grammar.OPTIONS} <= flags


def test_help_shows_one_word_for_one_value_and_no_markup(capsys):
    assert cli.main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--lr LR " in text and "--lr LR [LR" not in text and "--l2 A [A ...]" in text
    assert "``" not in text
    assert cli.main(["search", "--help"]) == 0
    text = capsys.readouterr().out
    assert "search axis" in text and "--lr 0.01,0.05,0.1" in text and "``" not in text


# --------------------------------------------------------------------------- errors: a message, exit 2
def test_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    assert cli.main(["train", *FAST, "--epochs", "1", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert cli.main(["search", *FAST, "--epochs", "1", "--out", str(target)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_a_run_is_not_written_over_another_without_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", *FAST, "--epochs", "1", "--out", str(out)]) == 0
    before = (out / "model.npz").read_bytes()
    assert cli.main(["train", *FAST, "--epochs", "2", "--seed", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds an earlier run" in err and "--overwrite" in err
    assert (out / "model.npz").read_bytes() == before
    # A search does not write into a training run's directory either.
    assert cli.main(["search", *FAST, "--epochs", "1", "--out", str(out)]) == 2
    assert "mlp train run" in capsys.readouterr().err
    assert cli.main(["train", *FAST, "--epochs", "2", "--seed", "1", "--out", str(out), "--overwrite"]) == 0
    assert (out / "model.npz").read_bytes() != before
    assert json.loads((out / "summary.json").read_text())["epochs_run"] == 2


def test_a_wrong_mlp_data_is_an_error_not_another_data_set(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLP_DATA", str(tmp_path / "nowhere"))
    out = tmp_path / "run"
    words = [w for w in FAST if w not in ("--dataset", "digits")]
    assert cli.main(["train", *words, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "$MLP_DATA" in err and "nowhere" in err
    assert not out.exists()


def test_an_unusable_backend_is_a_usage_error_in_both_commands(tmp_path, monkeypatch, capsys):
    def no_gpu(name):
        if name == "cuda":
            raise kernels.BackendUnavailableError("no CUDA GPU is usable here")
        return real(name)

    real = kernels.get_backend
    monkeypatch.setattr(kernels, "get_backend", no_gpu)
    for command in ("train", "search"):
        words = [w if w != "cpu" else "cuda" for w in FAST]
        assert cli.main([command, *words, "--epochs", "1", "--out", str(tmp_path / command)]) == 2
        assert "--backend cuda: no CUDA GPU" in capsys.readouterr().err


def test_a_bad_space_fails_before_the_progress_bar(tmp_path, capsys):
    words = [w for w in FAST if w != "--quiet"]
    assert cli.main(["search", *words, "--l2", "log:1e-5:1e-3", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "method='random'" in err and "trial/s" not in err and "data:" not in err
    assert not (tmp_path / "s").exists()


def test_search_reports_its_data_in_words_and_counts_its_trials(tmp_path, capsys):
    words = [w for w in FAST if w != "--quiet"]
    assert cli.main(["search", *words, "--epochs", "1", "--out", str(tmp_path / "s")]) == 0
    captured = capsys.readouterr()
    assert "Dataset(" not in captured.err and "data: digits (" in captured.err
    assert "1/1" in captured.err  # the bar knows its total
    assert "1 trial (" in captured.out


def test_one_epoch_is_singular(tmp_path, capsys):
    assert cli.main(["train", *FAST, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "(1 epoch," in out and "1 epochs" not in out
    assert np.isfinite(json.loads((tmp_path / "run" / "summary.json").read_text())["test_accuracy"])



def test_every_option_of_the_grammar_is_a_search_parameter():
    from mlp.search import PARAMETERS

    assert {option.name for option in grammar.OPTIONS} <= set(PARAMETERS)


def test_a_warm_up_reaches_the_search_trials(tmp_path, capsys):
    out = tmp_path / "s"
    assert cli.main(["search", *FAST, "--epochs", "3", "--warmup-epochs", "0,1", "--out", str(out)]) == 0
    best = json.loads((out / "best.json").read_text())
    assert best["space"]["warmup_epochs"] == [0, 1] and "2 trials" in capsys.readouterr().out
