"""What numba's JIT costs a user: the first ``mlp train`` and the cpu backend's first calls, cold and cached.

Each benchmark is one fresh interpreter running compile_probe.py with
NUMBA_CACHE_DIR pointing at a directory of this module, one per probe: empty for
the cold run, filled by it for the cached run. The probes:

* ``train``: the first ``mlp train`` (the main job's recipe, one epoch on digits):
  what a user waits for before the first epoch; the issue's target is <= 10 s
  cold and <= 1 s cached;
* ``kernels``: import the backend and call every kernel once: the cost of the
  whole kernel set, which no training run compiles all of.

The timing is the whole subprocess; the probe's own split into import and the
timed calls goes to extra_info.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("compile_probe.py")
PROBES = ("train", "kernels")


@pytest.fixture(scope="module")
def cache_dirs(tmp_path_factory):
    return {probe: tmp_path_factory.mktemp(f"numba_cache_{probe}") for probe in PROBES}


def _probe(probe, cache_dir):
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    finished = subprocess.run([sys.executable, str(PROBE), probe], cwd=PROBE.parent, env=environment,
                              capture_output=True, text=True, check=True)
    return json.loads(finished.stdout.splitlines()[-1])


def _record(benchmark, probe, cache, cache_dir):
    benchmark.group = f"jit: {probe} probe in a fresh process"
    benchmark.extra_info.update(role="compile", probe=probe, cache=cache)
    measured = benchmark.pedantic(_probe, args=(probe, cache_dir), rounds=1, iterations=1)
    benchmark.extra_info.update(measured)
    assert measured["probe"] == probe


@pytest.mark.parametrize("probe", PROBES)
def test_compile_cold(benchmark, cache_dirs, probe):
    cache_dir = cache_dirs[probe]
    assert not any(cache_dir.iterdir()), "the cold run needs an empty cache"
    _record(benchmark, probe, "cold", cache_dir)
    assert any(cache_dir.iterdir()), "the cold run should have filled the cache"


@pytest.mark.parametrize("probe", PROBES)
def test_compile_cached(benchmark, cache_dirs, probe):
    if not any(cache_dirs[probe].iterdir()):  # selected without the cold run (-k): fill the cache untimed
        _probe(probe, cache_dirs[probe])
    _record(benchmark, probe, "cached", cache_dirs[probe])
