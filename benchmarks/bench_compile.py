"""What numba's JIT costs a user: the cpu backend's first calls, cold and from the on-disk cache.

Each benchmark is one fresh interpreter running compile_probe.py (import the
backend, call every kernel once) with NUMBA_CACHE_DIR pointing at a directory
of this module: empty for the cold run, filled by it for the cached run. The
timing is the whole subprocess (what a user waits for); the probe's own split
into import and first calls goes to extra_info.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("compile_probe.py")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("numba_cache")


def _probe(cache_dir):
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    finished = subprocess.run([sys.executable, str(PROBE)], cwd=PROBE.parent, env=environment,
                              capture_output=True, text=True, check=True)
    return json.loads(finished.stdout.splitlines()[-1])


def _record(benchmark, cache, cache_dir):
    benchmark.group = "jit: import the cpu backend and call every kernel once (fresh process)"
    benchmark.extra_info.update(role="compile", cache=cache)
    measured = benchmark.pedantic(_probe, args=(cache_dir,), rounds=1, iterations=1)
    benchmark.extra_info.update(measured)
    assert measured["functions"] > 0


def test_compile_cold(benchmark, cache_dir):
    assert not any(cache_dir.iterdir()), "the cold run needs an empty cache"
    _record(benchmark, "cold", cache_dir)
    assert any(cache_dir.iterdir()), "the cold run should have filled the cache"


def test_compile_cached(benchmark, cache_dir):
    if not any(cache_dir.iterdir()):  # selected without the cold run (-k): fill the cache untimed
        _probe(cache_dir)
    _record(benchmark, "cached", cache_dir)
