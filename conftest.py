"""Test-session set-up that must happen before numba is first imported.

Without a GPU the cuda backend runs under numba's CUDA simulator, which only
takes effect when NUMBA_ENABLE_CUDASIM is set before numba is imported; pytest
loads this file before any test module, so the whole suite (CUDA tests
included) runs in one process. An explicit NUMBA_ENABLE_CUDASIM=0 in the
environment forces the real target, as on a GPU machine.
"""
import os
import shutil
import sys


def _gpu_present():
    return shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidiactl")


if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _gpu_present():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    # setup.cfg's filterwarnings names a numba warning class, so pytest may have
    # imported numba already: make it read the variable again.
    if "numba" in sys.modules:
        sys.modules["numba"].core.config.reload_config()
