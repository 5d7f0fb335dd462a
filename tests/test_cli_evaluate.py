"""`mlp evaluate` and `mlp predict` on a tiny digits model; mlp.metrics against scikit-learn."""
import csv
import json
import re
import sys

import numpy as np
import pytest

import mlp
from mlp import cli
from mlp.datasets import load_digits, mnist
from mlp.metrics import averages, class_scores, confusion_matrix
from mlp.plotting import plot_confusion

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEED = 3  # the training run's seed: digits' test part depends on it
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
BACKEND = ["--backend", "numpy"]


# --------------------------------------------------------------------------- #
# mlp.metrics
# --------------------------------------------------------------------------- #
def _labels_with_gaps(seed):
    """Random labels of 5 classes where class 3 is never predicted and class 4 never true."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 5, 200))
    y_pred[y_pred == 3] = 2
    return y_true, y_pred


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_match_scikit_learn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = _labels_with_gaps(seed)
    labels = list(range(5))
    C = confusion_matrix(y_true, y_pred, 5)
    np.testing.assert_array_equal(C, sk.confusion_matrix(y_true, y_pred, labels=labels))
    scores = class_scores(C)
    p, r, f, s = sk.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(scores.precision, p, rtol=1e-12)
    np.testing.assert_allclose(scores.recall, r, rtol=1e-12)
    np.testing.assert_allclose(scores.f1, f, rtol=1e-12)
    np.testing.assert_array_equal(scores.support, s)
    assert scores.precision[3] == 0 and scores.recall[4] == 0  # the zero denominators
    report = sk.classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    for key, ours in averages(scores).items():
        assert ours["precision"] == pytest.approx(report[key]["precision"], rel=1e-12)
        assert ours["recall"] == pytest.approx(report[key]["recall"], rel=1e-12)
        assert ours["f1"] == pytest.approx(report[key]["f1-score"], rel=1e-12)


def test_confusion_matrix_counts_pairs_and_checks_its_input():
    C = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    np.testing.assert_array_equal(C, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="non-empty"):
        confusion_matrix([], [], 2)
    with pytest.raises(ValueError, match="square"):
        class_scores(np.ones((2, 3), int))


def test_plot_confusion_writes_a_png_and_checks_the_names(tmp_path):
    path = plot_confusion(np.array([[3, 1], [0, 4]]), ["cat", "dog"], tmp_path / "c.png", title="t")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="one row and column per class name"):
        plot_confusion(np.eye(3, dtype=int), ["cat", "dog"], tmp_path / "d.png")
    assert not (tmp_path / "d.png").exists()


# --------------------------------------------------------------------------- #
# a tiny model trained on digits
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=SEED)


def _save(net, path, **metadata):
    net.save(path, metadata={**net.metadata, **metadata})
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits):
    """A 64-16-10 network trained on digits, saved as `mlp train` saves it (data set, seed, class names)."""
    net = mlp.MLP([64, 16, 10], seed=0, backend="numpy")
    net.fit(digits.X_train, digits.y_train, epochs=5, batch_size=32, learning_rate=0.1, seed=SEED)
    directory = tmp_path_factory.mktemp("model")
    path = _save(net, directory / "model.npz", dataset="digits", hyperparameters={"seed": SEED},
                 class_names=NAMES)
    return net, path


def _run(capsys, *argv):
    status = cli.main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return status, out, err


def test_evaluate_prints_accuracy_loss_and_the_table(trained, digits, capsys):
    net, path = trained
    status, out, err = _run(capsys, "evaluate", path, *BACKEND, "--quiet")
    assert status == 0 and err == ""
    loss, accuracy = net.evaluate(digits.X_test, digits.y_test)
    assert f"accuracy: {accuracy:.4f} ({round(accuracy * digits.n_test)} of {digits.n_test} correct)" in out
    assert f"mean loss: {loss:.4f}" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("class"))
    assert lines[header].split() == ["class", "precision", "recall", "f1", "support"]
    rows = [line.split() for line in lines[header + 1:header + 11]]
    assert [row[0] for row in rows] == NAMES  # the metadata's class names, label order
    assert [int(row[4]) for row in rows] == np.bincount(digits.y_test).tolist()
    predicted = net.predict(digits.X_test)
    for k, row in enumerate(rows):
        recall = np.mean(predicted[digits.y_test == k] == k)
        assert float(row[2]) == pytest.approx(recall, abs=5e-5)
    # the columns line up: every number ends where its header does
    ends = [lines[header].index(h) + len(h) for h in ("precision", "recall", "f1", "support")]
    for line in lines[header + 1:header + 11]:
        assert [m.end() for m in re.finditer(r"\S+", line)][1:] == ends


def test_evaluate_writes_confusion_png_and_evaluation_json_next_to_the_model(trained, digits, capsys):
    net, path = trained
    assert _run(capsys, "evaluate", path, *BACKEND, "--quiet")[0] == 0
    assert (path.parent / "confusion.png").read_bytes()[:8] == PNG_MAGIC
    report = json.loads((path.parent / "evaluation.json").read_text())
    assert report["dataset"] == "digits" and report["seed"] == SEED and report["n_test"] == digits.n_test
    C = np.array(report["confusion"])
    np.testing.assert_array_equal(C, confusion_matrix(digits.y_test, net.predict(digits.X_test), 10))
    assert report["accuracy"] == pytest.approx(np.trace(C) / C.sum())
    assert report["class_names"] == NAMES
    assert [c["support"] for c in report["per_class"]] == C.sum(axis=1).tolist()
    assert set(report) >= {"loss", "macro avg", "weighted avg"}
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # written atomically


def test_evaluate_out_dir_seed_and_names_of_the_data_set(trained, tmp_path, capsys):
    net, _ = trained
    path = tmp_path / "bare.npz"
    net.save(path, metadata={})  # no metadata at all: the data set's names, and the seed given
    out = tmp_path / "elsewhere"
    status, stdout, _ = _run(capsys, "evaluate", path, "--dataset", "digits", "--seed", "5", *BACKEND,
                             "--out", out, "--quiet")
    assert status == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert report["seed"] == 5 and report["class_names"] == [str(k) for k in range(10)]
    assert (out / "confusion.png").is_file() and not (tmp_path / "evaluation.json").exists()


@pytest.mark.parametrize("argv,message", [
    (["--dataset", "synthetic"], "the model takes 64 input features but synthetic has 784"),
    (["--dataset", "digits", "--data-dir", "x"], "--data-dir applies to fashion-mnist and mnist only"),
])
def test_evaluate_refuses_data_that_does_not_fit(trained, capsys, argv, message):
    _, path = trained
    status, _, err = _run(capsys, "evaluate", path, *BACKEND, *argv)
    assert status == 2
    assert err.startswith("mlp evaluate: error: ") and message in err and "Traceback" not in err


def test_evaluate_refuses_a_missing_file_a_foreign_file_and_a_regressor(tmp_path, capsys):
    status, _, err = _run(capsys, "evaluate", tmp_path / "absent.npz")
    assert status == 2 and err == f"mlp evaluate: error: no model file {tmp_path / 'absent.npz'}\n"
    (tmp_path / "notes.npz").write_text("not a model")
    status, _, err = _run(capsys, "evaluate", tmp_path / "notes.npz")
    assert status == 2 and err.startswith("mlp evaluate: error: cannot read the model: ")
    assert "notes.npz" in err and "Traceback" not in err
    mlp.MLP([3, 2], output="identity", backend="numpy").save(tmp_path / "reg.npz")
    status, _, err = _run(capsys, "evaluate", tmp_path / "reg.npz", *BACKEND)
    assert status == 2 and "not a classifier: its output is 'identity'" in err


def test_evaluate_refuses_a_data_set_it_cannot_load(trained, tmp_path, capsys):
    net, _ = trained
    path = _save(net, tmp_path / "m.npz", dataset="watched-digits")
    status, _, err = _run(capsys, "evaluate", path, *BACKEND)
    assert status == 2 and "trained on 'watched-digits'" in err and "--dataset" in err


# --------------------------------------------------------------------------- #
# mlp predict
# --------------------------------------------------------------------------- #
def _predicted_lines(out):
    return [line.split() for line in out.splitlines()]


def test_predict_prints_index_class_and_probability(trained, digits, tmp_path, capsys):
    net, path = trained
    X = digits.X_test[:7]
    np.save(tmp_path / "x.npy", X)
    status, out, err = _run(capsys, "predict", path, tmp_path / "x.npy", *BACKEND)
    assert status == 0 and err == ""  # already in [0, 1]: nothing rescaled
    probs = net.predict_proba(X)
    rows = _predicted_lines(out)
    assert [int(r[0]) for r in rows] == list(range(7))
    assert [r[1] for r in rows] == [NAMES[k] for k in probs.argmax(axis=1)]
    np.testing.assert_allclose([float(r[2]) for r in rows], probs.max(axis=1), atol=5e-5)


def test_predict_scales_bytes_and_says_so(trained, digits, tmp_path, capsys):
    net, path = trained
    images = np.rint(digits.X_test[:4] * 255).astype(np.uint8)
    np.save(tmp_path / "bytes.npy", images)
    status, out, err = _run(capsys, "predict", path, tmp_path / "bytes.npy", *BACKEND, "--top", "3")
    assert status == 0 and "divided by 255" in err
    probs = net.predict_proba(images / 255)
    for row, p in zip(_predicted_lines(out), probs):
        top = np.argsort(-p)[:3]
        assert row[1::2] == [NAMES[k] for k in top]
        np.testing.assert_allclose([float(v) for v in row[2::2]], p[top], atol=5e-5)
    assert _run(capsys, "predict", path, tmp_path / "bytes.npy", *BACKEND, "--quiet")[2] == ""


def test_predict_writes_a_csv_of_every_probability(trained, digits, tmp_path, capsys):
    net, path = trained
    np.savez(tmp_path / "x.npz", X=digits.X_test[:6], y=digits.y_test[:6])  # X picked out of several arrays
    out_file = tmp_path / "preds" / "p.csv"
    status, out, _ = _run(capsys, "predict", path, tmp_path / "x.npz", "--out", out_file, *BACKEND)
    assert status == 0 and out == f"wrote 6 predictions to {out_file}\n"
    with open(out_file, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["index", "class", "probability", *(f"p({name})" for name in NAMES)]
    probs = net.predict_proba(digits.X_test[:6])
    assert [r[1] for r in rows[1:]] == [NAMES[k] for k in probs.argmax(axis=1)]
    table = np.array([[float(v) for v in r[3:]] for r in rows[1:]])
    np.testing.assert_allclose(table, probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], probs.max(axis=1), rtol=1e-5)


def _write_idx(path, images):
    """An IDX file of unsigned bytes, the header written here independently of the reader."""
    header = bytes([0, 0, 0x08, images.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    path.write_bytes(header + images.tobytes())
    return path


def test_predict_reads_idx_images_and_a_single_vector(trained, digits, tmp_path, capsys):
    net, path = trained
    images = np.rint(digits.X_test[:5] * 255).astype(np.uint8).reshape(5, 8, 8)
    _write_idx(tmp_path / "images-idx3-ubyte", images)
    status, out, _ = _run(capsys, "predict", path, tmp_path / "images-idx3-ubyte", *BACKEND, "--quiet")
    assert status == 0
    expected = net.predict(images.reshape(5, 64) / 255)
    assert [r[1] for r in _predicted_lines(out)] == [NAMES[k] for k in expected]
    np.save(tmp_path / "one.npy", digits.X_test[0])  # 1-D: one example
    status, out, _ = _run(capsys, "predict", path, tmp_path / "one.npy", *BACKEND)
    assert status == 0 and _predicted_lines(out)[0][:2] == ["0", NAMES[net.predict(digits.X_test[0])]]


def test_predict_reads_an_image_resized_to_the_input(trained, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    _, path = trained
    picture = np.zeros((16, 16, 3), np.uint8)
    picture[4:12, 6:10] = 255
    Image.fromarray(picture).save(tmp_path / "digit.png")
    status, out, err = _run(capsys, "predict", path, tmp_path / "digit.png", *BACKEND)
    assert status == 0 and "resized digit.png from 16x16 to 8x8" in err
    assert len(out.splitlines()) == 1 and out.split()[1] in NAMES


def test_predict_without_pillow_names_the_install(trained, tmp_path, capsys, monkeypatch):
    _, path = trained
    (tmp_path / "digit.png").write_bytes(PNG_MAGIC)
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL raises ImportError
    status, _, err = _run(capsys, "predict", path, tmp_path / "digit.png", *BACKEND)
    assert status == 2 and "pip install pillow" in err


@pytest.mark.parametrize("write,extra,message", [
    (lambda p: np.save(p / "w.npy", np.zeros((3, 10))), [], "holds examples of 10 features but the model takes 64"),
    (lambda p: np.save(p / "w.npy", np.zeros(10)), [], "an array (n, 64)"),
    (lambda p: np.savez(p / "w.npz", a=np.zeros((2, 64)), b=np.zeros((2, 64))), [], "name the examples X"),
    (lambda p: (p / "w.bin").write_bytes(b"garbage!"), [], "not an .npy, .npz, IDX or image file"),
    (lambda p: None, [], "no input file"),
    (lambda p: np.save(p / "w.npy", np.full((1, 64), np.nan)), [], "NaN"),
    (lambda p: np.save(p / "w.npy", np.zeros((1, 64))), ["--top", "11"], "at most the model's 10 classes"),
    (lambda p: np.save(p / "w.npy", np.zeros((1, 64))), ["--top", "2", "--out", "p.csv"], "--top applies"),
])
def test_predict_refuses_inputs_that_do_not_fit(trained, tmp_path, capsys, write, extra, message):
    _, path = trained
    write(tmp_path)
    name = next((p.name for p in tmp_path.iterdir() if p.name.startswith("w.")), "w.npy")
    status, out, err = _run(capsys, "predict", path, tmp_path / name, *BACKEND, *extra)
    assert status == 2 and out == ""
    assert err.startswith("mlp predict: error: ") and message in err and "Traceback" not in err


def test_evaluate_without_a_data_set_in_the_metadata_falls_back_as_train_does(trained, tmp_path, capsys,
                                                                               monkeypatch):
    net, _ = trained
    monkeypatch.delenv("MLP_DATA", raising=False)
    monkeypatch.setattr(mnist, "DEFAULT_FASHION_MNIST_DIR", tmp_path / "no-system-dir")
    path = _save(net, tmp_path / "m.npz", hyperparameters={"seed": SEED})
    status, out, err = _run(capsys, "evaluate", path, *BACKEND, "--quiet")
    # shown even with --quiet: the numbers are about another data set than asked
    assert status == 0 and "evaluating on scikit-learn's digits instead" in err
    assert json.loads((tmp_path / "evaluation.json").read_text())["dataset"] == "digits"
