"""Every kernel, on every backend (its alternatives and PyTorch's op beside it), at training shapes.

One pytest-benchmark group per kernel and shape, so a table shows the variants
side by side; the cases come from ``kernels.spec`` through cases.py. Each
variant's output is first checked against the NumPy reference on the same
inputs; that call also compiles the numba kernels, so JIT time stays out of the
timings (see bench_compile.py for it).
"""
import numpy as np
import pytest
import torch

import kernels
from kernels import spec
from cases import (
    FUSED_ELEMENTWISE, MATMULS, NOT_TIMED, TIMED_KERNELS, Case, benchmark_backends, kernel_cases, site_bindings,
    torch_peers, variants,
)

REFERENCE = kernels.get_backend("numpy")
HOST_BACKENDS = ("numpy", "cpu")
# float32 rounding on unit-scale inputs: relative 1e-4, plus an absolute term
# growing with the length of the sums inside one output element.
RTOL, ATOL_PER_TERM = 1e-4, 2e-6


def _params():
    return [pytest.param(case, variant, id=f"{case.id}-{variant.name}")
            for case in kernel_cases() for variant in variants(case.kernel)]


def test_every_kernel_is_benchmarked():
    """Each kernel of each benchmarked backend is timed or excused, and each alternative replaces a timed kernel."""
    for backend in benchmark_backends():
        unaccounted = [k for k in kernels.kernel_names(backend) if k not in TIMED_KERNELS and k not in NOT_TIMED]
        assert not unaccounted, f"{backend} kernels with neither benchmark shapes nor a NOT_TIMED reason: {unaccounted}"
    assert set(TIMED_KERNELS) <= set(kernels.KERNELS)
    assert set(site_bindings((784, 256, 10), 32)) == set(spec.SITES), "cases.py must bind every site of the spec"
    for backend in benchmark_backends():
        for alternative, standard in getattr(kernels.get_backend(backend), "ALTERNATIVES", {}).items():
            assert standard in TIMED_KERNELS, f"{backend}.{alternative} replaces an untimed kernel {standard!r}"


def _reference_result(case):
    args = case.build()
    returned = getattr(REFERENCE, case.kernel)(*args)
    return [args[i] for i in case.outputs], returned


def _check(case, variant, outputs, returned):
    want_outputs, want_returned = _reference_result(case)
    if case.spec.exact:
        if variant.backend is not None:
            # e.g. a counter-based stream: every backend must draw the reference's mask bit for bit
            for got, want in zip(outputs, want_outputs):
                np.testing.assert_array_equal(got, want)
        else:
            # PyTorch's dropout: the same distribution from its own generator
            (got,) = outputs
            keep = case.scalar("keep")
            assert set(np.unique(got)) <= {np.float32(0), np.float32(1 / keep)}
            assert abs(np.count_nonzero(got) / got.size - keep) < 0.03
        return
    atol = ATOL_PER_TERM * case.reduce_len
    for position, got, want in zip(case.outputs, outputs, want_outputs):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol,
                                   err_msg=f"{variant.name} {case.kernel} argument {position}")
    if want_returned is not None:
        np.testing.assert_allclose(returned, want_returned, rtol=RTOL, err_msg=f"{variant.name} {case.kernel}")


def _prepare(case, variant):
    """The zero-argument call to time, after checking its result; and the arguments it works on."""
    host_args = case.build()
    if variant.backend is None:
        tensors = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in host_args]
        run = torch_peers()[case.kernel](*tensors)
        returned = run()
        _check(case, variant, [host_args[i] for i in case.outputs], returned)
        return run, ()
    K = kernels.get_backend(variant.backend)
    function = getattr(K, variant.function)
    args = [K.to_device(a) if isinstance(a, np.ndarray) else a for a in host_args]
    returned = function(*args)
    K.synchronize()
    _check(case, variant, [K.to_host(args[i]) for i in case.outputs], returned)
    if variant.backend in HOST_BACKENDS:
        return function, args  # pytest-benchmark calls function(*args): nothing in between

    def run():
        function(*args)
        K.synchronize()
    return run, ()


def _record(benchmark, role, case, variant):
    benchmark.group = case.group
    benchmark.extra_info.update(
        role=role, kernel=case.kernel, variant=variant.name, backend=variant.backend,
        net=case.net, batch=case.batch, where=case.where, shape=case.shape, flops=case.flops,
        fused=case.kernel in FUSED_ELEMENTWISE, matmul=case.kernel in MATMULS)


@pytest.mark.parametrize("case, variant", _params())
def test_kernel(benchmark, case, variant):
    run, args = _prepare(case, variant)
    _record(benchmark, "kernel", case, variant)
    benchmark(run, *args)


SGEMM_N = 1024
SGEMM_CASE = Case("matmul_nn", "sgemm", SGEMM_N, "square", {"n": SGEMM_N, "k": SGEMM_N, "m": SGEMM_N})


@pytest.mark.parametrize("variant", variants("matmul_nn"), ids=lambda v: v.name)
def test_sgemm_rate(benchmark, variant):
    """This machine's float32 GEMM rate (1024^3), the yardstick of the report's "% of sgemm" column."""
    run, args = _prepare(SGEMM_CASE, variant)
    _record(benchmark, "sgemm", SGEMM_CASE, variant)
    benchmark.group = f"sgemm {SGEMM_N}^3 float32"
    benchmark(run, *args)
