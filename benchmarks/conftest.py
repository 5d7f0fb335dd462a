"""Benchmark session set-up: one thread count for every pool, and the facts a result needs.

Threads. Each library here has its own pool: OpenBLAS twice (NumPy's and
SciPy's copy; the cpu kernels call NumPy's where it is there, see
``kernels.cpu_blas``), numba's parallel layer (the ``prange`` matmul
alternatives), PyTorch's OpenMP and scikit-learn's. They take
turns, never run at once, so each may use every core but no more: with
``BENCH_THREADS`` unset that is the cores this process may run on (2 here).
The smoke pass (``--benchmark-disable``) times nothing and uses one thread:
on a shared machine a 2-thread BLAS call stalls whenever another process holds
one of the cores, which made the smoke pass several times slower.

The limits hold from the first benchmark to the end of the session (the
``tests/`` suite, which runs first in ``make test``, keeps its defaults);
threadpoolctl can only cap libraries already loaded, so the ones that load
lazily are imported here first.

Idle OpenMP threads must sleep, not spin: PyTorch's, scikit-learn's and
numba's OpenMP pools otherwise keep busy-waiting after each parallel region
and steal the cores from the next contender's BLAS threads. Measured here
(2026-11-27, interleaved epochs of 784-256-10 at batch 64): the cpu epoch took
1.15 s with spinning pools and 0.41 s with OMP_WAIT_POLICY=PASSIVE. It must
be set before any OpenMP runtime loads, so here, before the imports.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import platform
import time

import numba
import numpy as np
import pytest
import scipy
import scipy.linalg  # loads SciPy's OpenBLAS (the cpu kernels' fallback, numba's np.dot)
import sklearn
import sklearn.neural_network  # loads scikit-learn's OpenMP runtime
import threadpoolctl
import torch

import kernels
from machine_load import busy_ticks, others_share

BENCH_THREADS = int(os.environ.get("BENCH_THREADS", len(os.sched_getaffinity(0))))
SMOKE_THREADS = 1
_active_threads = None  # what the session runs with, for the machine info
_others_busy_at_start = None


@pytest.fixture(scope="session")
def smoke(request):
    """True under ``--benchmark-disable`` (``make test``): every benchmark runs once, on small data."""
    return request.config.getoption("benchmark_disable")


@pytest.fixture(scope="session", autouse=True)
def thread_limits(smoke):
    """Every pool capped at the same count for the rest of the session (see the module docstring)."""
    global _active_threads, _others_busy_at_start
    _active_threads = SMOKE_THREADS if smoke else BENCH_THREADS
    if not smoke:
        _others_busy_at_start = others_cpu_share()
    numba_before, torch_before = numba.get_num_threads(), torch.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=_active_threads):
        numba.set_num_threads(_active_threads)
        torch.set_num_threads(_active_threads)
        yield _active_threads
    numba.set_num_threads(numba_before)
    torch.set_num_threads(torch_before)


def others_cpu_share(seconds=1.0):
    """Fraction of all CPUs' time that other processes used during ``seconds``, or None (``machine_load``)."""
    before = busy_ticks()
    time.sleep(seconds)
    return others_share(before, busy_ticks())


_CPUINFO_KEYS = {"model name": "model", "cpu family": "family", "model": "model_number", "stepping": "stepping"}


def _cpu_identity():
    """The first processor's name, family/model numbers and SIMD extensions, from /proc/cpuinfo."""
    identity = {"model": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = (part.strip() for part in line.partition(":"))
                if key in _CPUINFO_KEYS:
                    identity[_CPUINFO_KEYS[key]] = value
                elif key == "flags":
                    flags = set(value.split())
                    identity["simd"] = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx_vnni") if f in flags]
    except OSError:
        pass
    return identity


def _numba_threading_layer():
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process
        return "not initialised (no parallel kernel ran)"


def _torch_build():
    """PyTorch's own BLAS (it links MKL statically, so threadpoolctl does not list it) and SIMD level."""
    lines = [line.strip(" -") for line in torch.__config__.show().splitlines()]
    return {"math_library": next((line for line in lines if "Math Kernel Library" in line or "BLAS" in line), None),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def pytest_benchmark_update_machine_info(config, machine_info):
    """Store what a reader of results.json / RESULTS.md needs to reproduce or compare a run."""
    import matplotlib

    machine_info["mlp_bench"] = {
        "cpu": _cpu_identity(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "others_cpu_share": {"before": _others_busy_at_start, "after": others_cpu_share()},
        "threads": {
            "setting": _active_threads,
            "blas_and_openmp_limit": _active_threads,
            "numba": numba.get_num_threads(),
            "numba_threading_layer": _numba_threading_layer(),
            "torch": torch.get_num_threads(),
        },
        "threadpools": threadpoolctl.threadpool_info(),
        "environment": {name: os.environ.get(name) for name in (
            "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
            "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER", "BENCH_THREADS")},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "numba": numba.__version__,
            "llvmlite": __import__("llvmlite").__version__,
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "threadpoolctl": threadpoolctl.__version__,
            "matplotlib": matplotlib.__version__,
        },
        "torch_build": _torch_build(),
        "backends": kernels.available_backends(include_simulator=False),
    }
