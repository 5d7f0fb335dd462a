"""The compiled cpu epoch against the numpy engine (the reference loop), for every hidden
activation, output layer and update rule, with and without dropout (per example and per
minibatch) and regularisation (l2, l1, scikit-learn's alpha).

Tiny data (23 rows, 5 features, minibatches of 7 so the last one is short), two hidden layers
of 4 units, 3 outputs: each fit takes milliseconds once the two compiled epochs (full and
reduced, per dtype) are in numba's cache. Tolerances, relative to the largest magnitude of the
reference array: float64 1e-10, float32 1e-4.
"""
import itertools

import numpy as np
import pytest

import mlp
from kernels.codes import ACTIVATIONS, OUTPUTS
from mlp import MLP, TrainConfig
from mlp.engines import OPTIMIZER_STATE, UPDATE_RULES, make_engine

RTOL = {np.float64: 1e-10, np.float32: 1e-4}
LAYERS = [5, 4, 4, 3]
ROWS, BATCH = 23, 7

RULES = {
    "sgd": {"learning_rate": 0.05, "momentum": 0.0},
    "momentum": {"learning_rate": 0.05, "momentum": 0.9},
    "nesterov": {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    "adam": {"learning_rate": 0.01, "optimizer": "adam"},
}
DROPOUT = {
    "none": {},
    "per_sample": {"keep_prob": [0.8, 0.6, 0.7]},
    "per_batch": {"keep_prob": [0.8, 0.6, 0.7], "dropout_mode": "per_batch"},
}
REGULARISATION = {
    "plain": {"l2": 0.0},
    "alpha": {"alpha": 0.3, "l2": 0.0},
    "l1": {"l1": 0.01, "l2": 0.05},
    "alpha_l1": {"alpha": 0.3, "l1": 0.01},
}


def data(output, dtype):
    rng = np.random.default_rng(OUTPUTS.index(output))
    X = rng.standard_normal((ROWS, LAYERS[0])) * (0.3 if output == "exp" else 1.0)  # exp(z): keep z small
    X = X.astype(dtype)
    k = LAYERS[-1]
    y = {"softmax": lambda: rng.integers(0, k, ROWS),
         "identity": lambda: rng.standard_normal((ROWS, k)).astype(dtype),
         "logistic": lambda: (rng.random((ROWS, k)) < 0.5).astype(dtype),
         "exp": lambda: rng.poisson(1.0, (ROWS, k)).astype(dtype)}[output]()
    return X, y


def relative_error(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.abs(got - want).max()) / max(float(np.abs(want).max()), 1e-30)


def cases():
    """Every activation x output x rule in float64, dropout and regularisation cycling through their
    choices so that each pair of (rule, activation, output) meets each dropout mode; a quarter of
    them again in float32."""
    params = []
    for i, (activation, output, rule) in enumerate(itertools.product(ACTIVATIONS, OUTPUTS, UPDATE_RULES)):
        a, o, r = ACTIVATIONS.index(activation), OUTPUTS.index(output), UPDATE_RULES.index(rule)
        dropout = tuple(DROPOUT)[(a + o + r) % len(DROPOUT)]
        regularisation = tuple(REGULARISATION)[(a + 2 * o + r) % len(REGULARISATION)]
        dtypes = [np.float64] + ([np.float32] if (a + r) % 4 == o else [])
        for dtype in dtypes:
            params.append(pytest.param(activation, output, rule, dropout, regularisation, dtype,
                                       id=f"{activation}-{output}-{rule}-{dropout}-{regularisation}-"
                                          f"{np.dtype(dtype).name}"))
    return params


def fit(backend, activation, output, dtype, config):
    X, y = data(output, dtype)
    if output == "exp":  # exp(z) grows fast: a gentler step keeps every combination finite
        config = dict(config, learning_rate=config["learning_rate"] / 5)
    net = MLP(LAYERS, output=output, activation=activation, seed=3, dtype=dtype, backend=backend)
    history = mlp.trainer.fit(net, X, y, epochs=2, batch_size=BATCH, seed=5, **config)
    return net, history


@pytest.mark.parametrize("activation, output, rule, dropout, regularisation, dtype", cases())
def test_cpu_fit_matches_the_numpy_engine(activation, output, rule, dropout, regularisation, dtype):
    config = dict(RULES[rule], **DROPOUT[dropout], **REGULARISATION[regularisation])
    ref, ref_history = fit("numpy", activation, output, dtype, config)
    cpu, cpu_history = fit("cpu", activation, output, dtype, config)
    assert ref_history.stop_reason == cpu_history.stop_reason == "max_epochs"
    (ref_w, ref_b), (cpu_w, cpu_b) = ref.get_parameters(), cpu.get_parameters()
    for name, want, got in zip([f"W{l}" for l in range(len(ref_w))] + [f"b{l}" for l in range(len(ref_b))],
                               ref_w + ref_b, cpu_w + cpu_b):
        assert got.dtype == want.dtype
        err = relative_error(got, want)
        assert err <= RTOL[dtype], f"{name}: relative error {err:.3g}"
    err = relative_error(cpu_history.column("train_loss"), ref_history.column("train_loss"))
    assert err <= RTOL[dtype], f"train_loss: relative error {err:.3g}"
    # the fit trained: the parameters left their initial values
    init = MLP(LAYERS, output=output, activation=activation, seed=3, dtype=dtype, backend="numpy")
    assert np.abs(cpu_w[0] - init.get_parameters()[0][0]).max() > 1e-4


@pytest.mark.parametrize("rule", UPDATE_RULES)
@pytest.mark.parametrize("dropout", ["per_sample", "per_batch"])
def test_cpu_optimizer_state_matches_the_numpy_engine_epoch_by_epoch(rule, dropout):
    """Engines driven directly: the loss sums, parameters and every state array after each of three epochs
    (first_step carried on, so Adam's bias correction and the dropout streams move on), and a state set
    between epochs (a checkpoint's restore) is the one the next epoch uses."""
    dtype = np.float64
    X, y = data("logistic", dtype)
    config = TrainConfig(**RULES[rule], **DROPOUT[dropout], alpha=0.1, l1=0.01, seed=2)
    engines = {}
    for backend in ("numpy", "cpu"):
        net = MLP(LAYERS, output="logistic", activation="tanh", seed=1, dtype=dtype, backend=backend)
        engines[backend] = make_engine(net, config, X, y, BATCH, *config.per_layer(net))
    steps = -(-ROWS // BATCH)
    for epoch in range(3):
        order = np.random.default_rng([2, epoch]).permutation(ROWS)
        if epoch == 2:  # a restored state: the same on both, and used by both
            restored = engines["numpy"].get_optimizer_state()
            for engine in engines.values():  # each its own copy: the engines update their state in place
                engine.set_optimizer_state({key: [0.5 * a for a in arrays] for key, arrays in restored.items()})
        results = {b: e.run_epoch(order, 0.05, epoch * steps) for b, e in engines.items()}
        assert results["cpu"].steps == results["numpy"].steps == steps
        assert not results["cpu"].diverged and not results["numpy"].diverged
        assert relative_error(results["cpu"].loss_sum, results["numpy"].loss_sum) <= RTOL[dtype]
        ref_state, cpu_state = (engines[b].get_optimizer_state() for b in ("numpy", "cpu"))
        assert sorted(cpu_state) == sorted(OPTIMIZER_STATE[rule])
        for key in OPTIMIZER_STATE[rule]:
            for l, (want, got) in enumerate(zip(ref_state[key], cpu_state[key])):
                assert np.abs(want).max() > 0, f"{key}{l} never updated"
                err = relative_error(got, want)
                assert err <= RTOL[dtype], f"epoch {epoch} {key}{l}: relative error {err:.3g}"
        (ref_w, ref_b), (cpu_w, cpu_b) = (engines[b].net.get_parameters() for b in ("numpy", "cpu"))
        for want, got in zip(ref_w + ref_b, cpu_w + cpu_b):
            assert relative_error(got, want) <= RTOL[dtype]


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("dropout", DROPOUT)
def test_sample_weights_match_the_numpy_engine(output, dropout):
    """Weighted minibatches (``mlp.propagation.weight_rows``), zero weights and a short last batch
    included: the same loss sums and parameters, and alpha divided by the weight sum."""
    dtype = np.float64
    X, y = data(output, dtype)
    weights = np.random.default_rng(9).uniform(0, 2, ROWS)
    weights[[0, 5, 21, 22]] = 0.0  # the last minibatch (rows 21, 22 in order) weighs nothing
    config = TrainConfig(**RULES["adam"], **DROPOUT[dropout], alpha=0.2, seed=3)
    results, params = {}, {}
    for backend in ("numpy", "cpu"):
        net = MLP(LAYERS, output=output, activation="tanh", seed=1, dtype=dtype, backend=backend)
        engine = make_engine(net, config, X, y, BATCH, *config.per_layer(net), sample_weight=weights)
        results[backend] = [engine.run_epoch(np.arange(ROWS), 0.01, epoch * 4) for epoch in range(2)]
        params[backend] = net.get_parameters()
    for got, want in zip(results["cpu"], results["numpy"]):
        assert relative_error(got.loss_sum, want.loss_sum) <= RTOL[dtype]
    for want, got in zip(params["numpy"][0] + params["numpy"][1], params["cpu"][0] + params["cpu"][1]):
        assert relative_error(got, want) <= RTOL[dtype]
    unweighted = MLP(LAYERS, output=output, activation="tanh", seed=1, dtype=dtype, backend="cpu")
    engine = make_engine(unweighted, config, X, y, BATCH, *config.per_layer(unweighted))
    for epoch in range(2):
        engine.run_epoch(np.arange(ROWS), 0.01, epoch * 4)
    assert relative_error(unweighted.get_parameters()[0][0], params["cpu"][0][0]) > 1e-6  # the weights mattered


def test_a_diverging_epoch_stops_at_the_same_step_on_both():
    """A huge learning rate on the exp output overflows: both engines report the same step, diverged."""
    X, y = data("exp", np.float64)
    config = TrainConfig(learning_rate=50.0, momentum=0.9, seed=0)
    results = {}
    for backend in ("numpy", "cpu"):
        net = MLP(LAYERS, output="exp", activation="identity", seed=1, dtype=np.float64, backend=backend)
        engine = make_engine(net, config, X, y, BATCH, *config.per_layer(net))
        with np.errstate(all="ignore"):
            results[backend] = engine.run_epoch(np.arange(ROWS), 50.0, 0)
    assert results["cpu"].diverged and results["numpy"].diverged
    assert results["cpu"].steps == results["numpy"].steps
    assert relative_error(results["cpu"].loss_sum, results["numpy"].loss_sum) <= RTOL[np.float64]


def test_the_compiled_epochs_are_keyed_on_every_module_they_compile_in():
    """The epochs compile in the cpu kernels, the dropout generator's constants, the codes of
    activations and outputs and the shared steps: an edit to any of them must recompile the cached epochs."""
    from kernels import codes, counter_rng, cpu_backend, cpu_blas, cpu_losses, cpu_updates, jit
    from mlp.engines import cpu, cpu_reduced, cpu_steps

    assert set(cpu_steps.KERNEL_MODULES) == {cpu_backend, cpu_blas, cpu_losses, cpu_updates, counter_rng, codes}
    kernels_digest = jit.sources_digest(cpu_steps.KERNEL_MODULES)
    epoch_digest = jit.sources_digest(cpu_steps.KERNEL_MODULES + (cpu_steps,))
    for name in ("sgd_step", "momentum_step", "adam_step", "gradient_and_update", "target_loss", "weight_rows",
                 "alpha_l2", "adam_step_size"):
        assert jit.dependency_digest(getattr(cpu_steps, name)) == kernels_digest, name
    for module, name in ((cpu, "train_epoch"), (cpu, "_forward"), (cpu_reduced, "train_epoch_reduced")):
        assert jit.dependency_digest(getattr(module, name)) == epoch_digest, name
