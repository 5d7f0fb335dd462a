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
    verdicts = dict(report.target_rows(report.Results(json.loads(results_json.read_text()))))
    assert len(verdicts) == 7  # floor, PyTorch, numpy, two dropout modes, two fused kernels
    floor, torch, numpy, per_sample, per_batch, bias_relu, relu = verdicts.values()
    assert floor.startswith("**met**") and "1.111×" in floor
    assert torch.startswith("**met**") and "3.000×" in torch
    assert numpy.startswith("**met**") and "2.000×" in numpy
    assert per_sample.startswith("**missed** by 25%")
    assert per_batch.startswith("**met**") and "6.000×" in per_batch
    assert bias_relu.startswith("**met**") and "4.000×" in bias_relu
    assert relu.startswith("**missed** by 33%")


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
    floor, torch, numpy, per_sample, per_batch = list(dict(report.target_rows(results)).values())[:5]
    assert floor.startswith("**missed** by 74%")  # 1.0 / 0.5 = 2.000x, not the separate runs' 1.11x
    assert numpy.startswith("**missed** by 14%")
    assert per_sample.startswith("**met**") and "5.000×" in per_sample
    assert "Interleaved" in report.render(results, "results.png")


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
