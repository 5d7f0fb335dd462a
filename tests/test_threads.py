"""The thread setting of a fit (``mlp.threads``): limits, "auto"'s choice and re-choice, what is recorded.

Timings are injected (``ThreadChooser(measure=...)``) wherever a choice is
checked: no assertion here depends on the wall clock.
"""
import os
import types

import numba
import numpy as np
import pytest
import threadpoolctl

import mlp
from mlp import threads as T
from mlp.config import TrainConfig
from mlp.datasets import load_digits


def blas_threads():
    """The most threads any loaded BLAS may use now."""
    return max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    return data.X_train.astype(np.float32), data.y_train


def fit(digits, backend="cpu", **kwargs):
    X, y = digits
    net = mlp.MLP([64, 24, 10], seed=0, backend=backend)
    history = net.fit(X, y, **dict({"epochs": 3, "batch_size": 32, "learning_rate": 0.1}, **kwargs))
    return net, history


def fake_timings(*per_probe):
    """A ``measure`` whose step at count c takes ``per_probe[k][c]`` seconds during the k-th probe.

    A probe asks for ``T.ROUNDS`` steps of each candidate; the k-th probe is told apart by counting calls.
    """
    calls = []

    def measure(count):
        calls.append(count)
        return per_probe[(len(calls) - 1) // (2 * T.ROUNDS)][count]

    return measure


# ---------------------------------------------------------------- the setting
@pytest.mark.parametrize("bad, error", [("two", ValueError), (0, ValueError), (-1, ValueError),
                                        (1.5, TypeError), (True, TypeError), ([2], TypeError)])
def test_an_invalid_setting_is_refused_naming_threads(digits, bad, error):
    with pytest.raises(error, match="threads"):
        T.check_threads(bad)
    net = mlp.MLP([64, 8, 10], seed=0, backend="cpu")
    with pytest.raises(error, match="threads"):
        mlp.Trainer(net, epochs=1, threads=bad)
    with pytest.raises(error, match="threads"):
        mlp.fit(net, *digits, epochs=1, threads=bad)


def test_valid_settings_and_the_default():
    assert T.DEFAULT_THREADS == "auto"
    assert [T.check_threads(s) for s in ("auto", 1, np.int64(3), None)] == ["auto", 1, 3, None]
    assert T.usable_cores() >= 1


# ---------------------------------------------------------------- a fixed count
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_an_int_limits_blas_and_numba_during_the_fit_and_is_recorded(digits, backend):
    before = (blas_threads(), numba.get_num_threads())
    seen = []
    net, history = fit(digits, backend, threads=1,
                       callback=lambda record: seen.append((blas_threads(), numba.get_num_threads())))
    assert seen == [(1, 1)] * 3
    assert [r["threads"] for r in history.records] == [1, 1, 1]
    assert net.metadata["threads"] == {"setting": 1, "counts": [1], "probes": []}
    assert (blas_threads(), numba.get_num_threads()) == before  # restored after the fit


def test_none_leaves_the_callers_limit_and_records_it(digits):
    seen = []
    with T.limited_threads(1):
        net, history = fit(digits, threads=None, callback=lambda record: seen.append(blas_threads()))
    assert seen == [1, 1, 1]
    assert [r["threads"] for r in history.records] == [1, 1, 1]
    assert net.metadata["threads"]["setting"] is None


def test_limited_threads_limits_and_restores():
    before = (blas_threads(), numba.get_num_threads())
    with T.limited_threads(1):
        assert (blas_threads(), numba.get_num_threads()) == (1, 1)
    with T.limited_threads(None):
        assert (blas_threads(), numba.get_num_threads()) == before
    assert (blas_threads(), numba.get_num_threads()) == before


# ---------------------------------------------------------------- "auto"
@pytest.mark.parametrize("timings, chosen", [({1: 0.010, 4: 0.002}, 4), ({1: 0.002, 4: 0.010}, 1),
                                             ({1: 0.005, 4: 0.005}, 1)])
def test_auto_keeps_the_faster_count(timings, chosen):
    with T.ThreadChooser("auto", cores=4, measure=fake_timings(timings)) as chooser:
        assert chooser.count == chosen
        assert blas_threads() == chosen
    assert chooser.probes == [{"after_epochs": 0, "seconds": {"1": timings[1], "4": timings[4]},
                               "chosen": chosen}]


def test_auto_compares_medians_not_single_steps():
    # one lucky fast step at 2 threads among slow ones (what a loaded core gives) does not win
    steps = iter([0.002, 0.001, 0.02, 0.002, 0.002, 0.02, 0.002, 0.02, 0.002, 0.02])
    with T.ThreadChooser("auto", cores=2, measure=lambda count: next(steps)) as chooser:
        assert chooser.count == 1


def test_a_slow_epoch_makes_auto_time_again_and_switch():
    measure = fake_timings({1: 0.010, 2: 0.002}, {1: 0.010, 2: 0.050})
    with T.ThreadChooser("auto", cores=2, measure=measure) as chooser:
        assert chooser.count == 2
        chooser.epoch_done(1.0)
        chooser.epoch_done(1.4)     # slower, but not 1.5 times: no timing
        assert len(chooser.probes) == 1 and chooser.count == 2
        chooser.epoch_done(2.2)     # > 1.5 x 1.4: times again, 1 thread is now the faster
        assert len(chooser.probes) == 2 and chooser.count == 1
        assert blas_threads() == 1 and numba.get_num_threads() == 1
        chooser.epoch_done(1.0)
    assert chooser.counts == [2, 2, 2, 1]
    assert chooser.summary()["counts"] == [2, 1]
    assert chooser.probes[1]["after_epochs"] == 3 and chooser.probes[1]["chosen"] == 1


def test_short_epochs_and_fixed_counts_never_time_again():
    with T.ThreadChooser("auto", cores=2, measure=fake_timings({1: 0.01, 2: 0.001})) as chooser:
        chooser.epoch_done(T.MIN_EPOCH_SECONDS / 10)
        chooser.epoch_done(T.MIN_EPOCH_SECONDS / 2)  # five times slower, but too short to matter
    assert len(chooser.probes) == 1

    def refuse(count):
        raise AssertionError("an int setting is never timed")

    with T.ThreadChooser(2, cores=2, measure=refuse) as chooser:
        chooser.epoch_done(1.0)
        chooser.epoch_done(10.0)
    assert chooser.counts == [2, 2] and chooser.probes == []


def test_auto_does_not_time_on_one_core(digits, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert T.usable_cores() == 1

    def no_probe(*args, **kwargs):
        raise AssertionError("auto timed steps on one usable core")

    monkeypatch.setattr(mlp.trainer, "training_probe", no_probe)
    net, history = fit(digits, threads="auto")
    assert [r["threads"] for r in history.records] == [1, 1, 1]
    assert net.metadata["threads"] == {"setting": "auto", "counts": [1], "probes": []}


def test_auto_stays_within_a_blas_limit_the_caller_set(digits, monkeypatch):
    def no_probe(*args, **kwargs):
        raise AssertionError("auto timed steps under a limit of one thread")

    monkeypatch.setattr(mlp.trainer, "training_probe", no_probe)
    with T.limited_threads(1):
        net, history = fit(digits, threads="auto")
    assert [r["threads"] for r in history.records] == [1, 1, 1]
    assert net.metadata["threads"]["probes"] == []


def test_auto_does_not_time_on_cuda(monkeypatch):
    monkeypatch.setattr(T, "usable_cores", lambda: 4)

    def no_probe():
        raise AssertionError("auto timed steps on cuda")

    chooser = T.ThreadChooser.for_net("auto", types.SimpleNamespace(backend="cuda"), no_probe)
    every = min(4, blas_threads())  # every usable core, within BLAS's current limit
    assert not chooser.timed and chooser.candidates == sorted({1, every})
    with chooser:
        assert chooser.count == every
    assert chooser.probes == []


@pytest.mark.skipif(T.usable_cores() < 2, reason="auto times only with two usable cores or more")
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_auto_trains_what_a_fixed_count_trains(digits, backend):
    net_auto, history = fit(digits, backend, threads="auto", keep_prob=[1.0, 0.8], momentum=0.9)
    [probe] = net_auto.metadata["threads"]["probes"]  # digits' epochs are too short to time again
    counts = [r["threads"] for r in history.records]
    assert counts == [probe["chosen"]] * 3
    net_one, _ = fit(digits, backend, threads=1, keep_prob=[1.0, 0.8], momentum=0.9)
    net_same, _ = fit(digits, backend, threads=probe["chosen"], keep_prob=[1.0, 0.8], momentum=0.9)
    for P_auto, P_one, P_same in zip(*(sum(n.get_parameters(), []) for n in (net_auto, net_one, net_same))):
        np.testing.assert_allclose(P_auto, P_one, rtol=1e-4, atol=1e-5)  # BLAS's last bits only
        np.testing.assert_array_equal(P_auto, P_same)  # timing on a copy changed nothing


def test_the_probe_trains_a_copy_not_the_network(digits):
    X, y = digits
    net = mlp.MLP([64, 24, 10], seed=0, backend="cpu")
    config = TrainConfig(batch_size=32, learning_rate=0.5, momentum=0.9)
    before = net.get_parameters()
    l2, l1, keep = config.per_layer(net)
    step = T.training_probe(net, config, X, y, 32, l2, l1, keep)
    for _ in range(3):
        step()
    for P, Q in zip(sum(before, []), sum(net.get_parameters(), [])):
        np.testing.assert_array_equal(P, Q)
