"""report.py on a small hand-made pytest-benchmark JSON: every section renders and the verdicts add up."""
import json

import pytest

import report


def _bench(group, median, **info):
    return {"group": group, "name": group, "stats": {"median": median}, "extra_info": info}


def _kernel(kernel, variant, median, batch=128, flops=1e6):
    group = f"{kernel} 128x256 (784-256-10 hidden n={batch})"
    return _bench(group, median, role="kernel", kernel=kernel, variant=variant, backend=variant, net="784-256-10",
                  batch=batch, where="hidden", shape="128x256", flops=flops, fused=True, matmul=False)


def _epoch(implementation, dropout, median, batch=64, backend=None):
    group = f"epoch 784-256-10 n={batch} {'no dropout' if dropout == 'none' else 'dropout 0.8/0.5'}"
    return _bench(group, median, role="epoch", implementation=implementation, net="784-256-10", batch=batch,
                  dropout=dropout, rows=60000, backend=backend, epoch_loop_seconds_median=median * 0.9)


@pytest.fixture
def results_json(tmp_path):
    steps = 60000 / 64
    benchmarks = [
        _bench("sgemm", 0.02, role="sgemm", variant="numpy", flops=2.0 * 1024 ** 3),
        _bench("sgemm", 0.01, role="sgemm", variant="torch", flops=2.0 * 1024 ** 3),
        _kernel("bias_activation_forward", "numpy", 40e-6), _kernel("bias_activation_forward", "cpu", 10e-6),
        _kernel("bias_activation_forward", "torch", 20e-6),
        _kernel("activation_backward", "numpy", 20e-6), _kernel("activation_backward", "cpu", 10e-6),
        _epoch("numba-mlp cpu", "none", 1.0, backend="cpu"), _epoch("numba-mlp numpy", "none", 2.0, backend="numpy"),
        _epoch("PyTorch", "none", 3.0), _epoch("scikit-learn", "none", 6.0),
        _epoch("numba-mlp cpu", "per_sample", 1.0, backend="cpu"),
        _epoch("numba-mlp cpu", "per_batch", 0.5, backend="cpu"),
        _epoch("PyTorch", "torch.nn.Dropout", 3.0),
        _bench("floor", 0.9 / steps, role="gemm_floor", implementation="cpu BLAS", backend="cpu", batch=64,
               rows=60000, steps_per_epoch=steps, flops=1e6),
        _bench("jit", 5.0, role="compile", cache="cold", import_seconds=0.2, first_calls_seconds=4.5, functions=21),
        _bench("jit", 12.0, role="compile", probe="train", cache="cold", import_seconds=0.3,
               first_train_seconds=11.5, jit_seconds=10.5),
        _bench("jit", 2.0, role="compile", probe="train", cache="cached", import_seconds=0.3,
               first_train_seconds=1.5, jit_seconds=0.2),
    ]
    data = {"datetime": "2026-11-27T12:00:00", "version": "5.3.1", "benchmarks": benchmarks,
            "machine_info": {"mlp_bench": {"cpu": {"model": "AMD EPYC", "family": "26", "model_number": "2"},
                                           "threads": {"setting": 2}, "backends": ["numpy", "cpu"],
                                           "others_cpu_share": {"before": 0.0, "after": 0.4}}}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    return path


def test_report_writes_markdown_and_chart(results_json, tmp_path):
    markdown, png = tmp_path / "RESULTS.md", tmp_path / "results.png"
    report.main([str(results_json), "--markdown", str(markdown), "--png", str(png)])
    text = markdown.read_text()
    assert png.read_bytes().startswith(b"\x89PNG")
    for heading in ("## Machine", "## Targets", "## Training epoch", "## sgemm", "## JIT", "## Kernels"):
        assert heading in text
    assert "(Zen 5)" in text
    assert "after the run 40% — **above 5%: the machine was not quiet" in text
    verdicts = _verdicts(report.Results(json.loads(results_json.read_text())))
    # floor, larger batch, PyTorch at 64 and 512, numpy, two dropout modes vs PyTorch, per_batch vs none,
    # Adam, estimator, the first mlp train's JIT cold and cached, two fused kernels
    assert len(verdicts) == 14
    (floor, larger_batch, torch, torch_512, numpy, per_sample, per_batch, per_batch_vs_none, adam, estimator,
     jit_cold, jit_cached, bias_relu, relu) = verdicts
    # the JIT share of the run (10.5 s), not the whole process or the whole mlp train call
    assert jit_cold.startswith("**missed** by 5.0%") and "(10.500 s > 10.0 s)" in jit_cold
    assert jit_cached.startswith("**met**") and "(0.200 s ≤ 1.0 s)" in jit_cached
    assert "| train | cold | 12.000 | 0.3 | 11.5 | 10.5 | — |" in text
    assert floor.startswith("**met**") and "1.111×" in floor
    assert torch.startswith("**met**") and "3.000×" in torch
    assert numpy.startswith("**met**") and "2.000×" in numpy
    assert per_sample.startswith("**missed** by 25%")
    assert per_batch.startswith("**met**") and "6.000×" in per_batch
    assert per_batch_vs_none.startswith("**met**") and "2.000×" in per_batch_vs_none
    assert bias_relu.startswith("**met**") and "4.000×" in bias_relu
    assert relu.startswith("**missed** by 33%")
    # only the sweep measures these
    assert larger_batch == torch_512 == adam == estimator == "not measured"
    assert "## Epoch sweep" not in text


def test_epoch_targets_come_from_the_interleaved_run(results_json, tmp_path):
    data = json.loads(results_json.read_text())
    epochs = [{"implementation": implementation, "dropout": dropout, "median": median, "seconds": [median]}
              for implementation, dropout, median in (
                  ("numba-mlp cpu", "none", 1.0), ("numba-mlp numpy", "none", 1.2), ("PyTorch", "none", 3.0),
                  ("numba-mlp cpu", "per_sample", 1.0), ("numba-mlp cpu", "per_batch", 1.0),
                  ("PyTorch", "torch.nn.Dropout", 5.0), ("GEMM floor", "none", 0.5))]
    data["benchmarks"].append(_bench("interleaved", 30.0, role="epoch_interleaved", net="784-256-10", batch=64,
                                     rows=60000, epochs=epochs))
    results = report.Results(data)
    floor, _, torch, _, numpy, per_sample, per_batch, per_batch_vs_none = _verdicts(results)[:8]
    assert floor.startswith("**missed** by 74%")  # 1.0 / 0.5 = 2.000x, not the separate runs' 1.11x
    assert numpy.startswith("**missed** by 20%")  # 1.2x < 1.5x
    assert per_sample.startswith("**met**") and "5.000×" in per_sample
    assert per_batch_vs_none.startswith("**missed**") and "1.000×" in per_batch_vs_none  # 1.0 / 1.0, not 2.0
    assert "Interleaved" in report.render(results, "results.png")


def _verdicts(results):
    return [verdict for _, verdict, _ in report.target_rows(results)]


def _sweep_shape(hidden, batch, cpu, floor, estimator, model=0.02, loop=None, **peers):
    """One shape of bench_sweep's extra_info: the cpu Trainer (built in ``model`` s; its epoch loop alone
    ``loop`` s when given), the estimator (its ``estimator`` s include building), the floor, and peers as
    adam=/numpy=/torch= medians."""
    def entry(implementation, optimizer, median, build):
        return {"implementation": implementation, "optimizer": optimizer, "median": median, "seconds": [median],
                "model_seconds": [build], "median_with_model": median + build}

    names = {"adam": ("numba-mlp cpu", "adam"), "numpy": ("numba-mlp numpy", "sgd"), "torch": ("PyTorch", "sgd")}
    epochs = [entry("numba-mlp cpu", "sgd", cpu, model), entry("mlp.MLPClassifier", "sgd", estimator, 0.0)]
    epochs += [entry(*names[peer], median, model) for peer, median in peers.items()]
    epochs.append({"implementation": "GEMM floor", "optimizer": None, "median": floor, "seconds": [floor]})
    if loop is not None:
        epochs.append({"implementation": "numba-mlp cpu epoch loop", "optimizer": "sgd", "median": loop,
                       "seconds": [loop]})
    rows = 60000 if hidden == 256 else 20000
    return {"net": f"784-{hidden}-10", "hidden": hidden, "batch": batch, "rows": rows,
            "steps_per_epoch": rows / batch, "epochs": epochs}


def test_sweep_targets_name_the_worst_shape(results_json, tmp_path):
    data = json.loads(results_json.read_text())
    shapes = [
        _sweep_shape(256, 64, cpu=1.0, floor=0.9, estimator=1.04, adam=1.05, numpy=2.0, torch=2.4),
        _sweep_shape(256, 512, cpu=0.5, floor=0.46, estimator=0.53, adam=0.6, numpy=0.7, torch=0.6),
        # the estimator's fit includes building the net: 1.06 / (1.0 + 0.02), not 1.06 / 1.0;
        # the floor ratio takes the epoch loop where it was recorded: 0.96 / 0.8, not 1.0 / 0.8
        _sweep_shape(1024, 32, cpu=1.0, floor=0.8, estimator=1.06, loop=0.96),
        # slower by a little at each larger batch: adjacent pairs stay below 1.01x, 32 -> 128 does not
        _sweep_shape(1024, 64, cpu=1.01, floor=0.9, estimator=1.04),
        _sweep_shape(1024, 128, cpu=1.02, floor=0.95, estimator=1.05),
    ]
    data["benchmarks"].append(_bench("sweep", 60.0, role="epoch_sweep", rounds=3, others_cpu_share=[0.0, 0.3, 0.01],
                                     shapes=shapes))
    results = report.Results(data)
    (floor, larger_batch, torch, torch_512, numpy, per_sample, per_batch, per_batch_vs_none, adam,
     estimator) = _verdicts(results)[:10]
    assert floor.startswith("**missed** by 4.3%") and "1.200×" in floor and floor.endswith("784-1024-10 n=32")
    # every pair, not only neighbours, and the epoch loop where recorded (0.96 s at n=32, not its fit's 1.0 s)
    assert larger_batch.startswith("**missed** by 6.2%")
    assert larger_batch.endswith("784-1024-10 n=32 0.960 s → n=128 1.020 s")
    assert torch.startswith("**missed** by 4.0%")  # the sweep's 2.4x, not the separate benchmarks' 3.0x
    assert torch_512.startswith("**missed** by 20%")
    assert numpy.startswith("**missed** by 6.7%") and "1.400×" in numpy  # the lesser: batch 512
    assert per_sample.startswith("**missed** by 25%")  # dropout: still the separate benchmarks
    assert adam.startswith("**missed** by 9.1%") and adam.endswith("784-256-10 n=512")
    assert estimator.startswith("**met**") and "1.039×" in estimator and estimator.endswith("784-1024-10 n=32")
    sources = [source for _, _, source in report.target_rows(results)]
    assert sources[:5] == ["sweep", "sweep", "sweep, n=64", "sweep, n=512", "sweep, n=512"]
    assert sources[5] == "separate benchmarks, n=64"

    section = report.sweep_section(results)
    assert "per round: 0.0%, 30%, 1.0%. **Above 5% in some rounds" in section
    assert "| 1024 | 32 | 20000 | 0.800 | 0.960 | 1.000 | **1.20×** | 1.020 | 1.060 | **1.04×** | — | — | — |" in section
    assert "| 256 | 512 | 60000 | 0.460 | — | 0.500 | 1.09× | 0.520 | 0.530 | 1.02× | 1.20× | 1.40× | 1.20× |" \
        in section
    markdown, png = tmp_path / "RESULTS.md", tmp_path / "results.png"
    results_json.write_text(json.dumps(data))
    report.main([str(results_json), "--markdown", str(markdown), "--png", str(png)])
    assert "## Epoch sweep" in markdown.read_text() and png.read_bytes().startswith(b"\x89PNG")


def test_estimator_section_compares_scikit_learn_per_solver(results_json):
    data = json.loads(results_json.read_text())
    fits = [{"implementation": name, "solver": solver, "median_epoch": seconds, "epoch_seconds": [seconds],
             "test_accuracy": 0.85} for name, solver, seconds in (
                 ("scikit-learn", "adam", 4.0), ("numba-mlp", "adam", 1.0),
                 ("scikit-learn", "sgd", 3.0), ("numba-mlp", "sgd", 1.5))]
    data["benchmarks"].append(_bench("estimators", 30.0, role="estimator_interleaved", hidden=[256], rows=60000,
                                     epochs=2, fits=fits, gemm_floor_epoch=0.5))
    section = report.estimator_section(report.Results(data)).replace("  ", " ")
    assert "| adam | 4.000 | 1.000 | 4.00× | 8.00× | 2.00× | 0.8500 | 0.8500 |" in section
    assert "| sgd | 3.000 | 1.500 | 2.00× | 6.00× | 3.00× |" in section


def test_report_refuses_a_run_without_timings(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"benchmarks": [{"group": "g", "stats": None, "extra_info": {"role": "kernel"}}]}))
    with pytest.raises(SystemExit, match="benchmark-disable"):
        report.main([str(path), "--markdown", str(tmp_path / "r.md"), "--png", str(tmp_path / "r.png")])


def test_others_share_is_the_busy_fraction_between_two_readings():
    from machine_load import busy_ticks, others_share
    assert others_share((100, 1000), (150, 1200)) == 0.25
    assert others_share((100, 1000), (90, 1200)) == 0.0  # this process's ticks subtracted can overshoot
    assert others_share(None, (150, 1200)) is None
    reading = busy_ticks()
    assert reading is None or (reading[1] > 0 and reading[0] <= reading[1])
