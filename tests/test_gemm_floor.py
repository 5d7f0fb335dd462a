"""``mlp.gemm_floor``: the unit in which `mlp train` states its time."""
import numpy as np
import pytest

from mlp import gemm_floor


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("batch, net", [(1, (7, 5, 3)), (7, (257, 7, 1)), (64, gemm_floor.FLOOR_NET)])
def test_the_floor_step_computes_the_five_products(backend, batch, net):
    _, check = gemm_floor.gemm_floor_step(backend, batch, net)
    for got, want in check():
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_the_epoch_floor_is_its_steps_times_the_steps_of_an_epoch(monkeypatch):
    # a clock that advances 0.5 ms per reading: every timed step takes 0.5 ms
    ticks = iter(np.arange(0.0, 10.0, 0.0005))
    monkeypatch.setattr(gemm_floor.time, "perf_counter", lambda: next(ticks))
    assert gemm_floor.epoch_floor_seconds(steps=5) == pytest.approx(0.0005 * 938)
