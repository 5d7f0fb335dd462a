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

# The simulator runs each GPU thread of a block as a Python thread while the launching thread
# polls them in a busy loop that holds the GIL; at syncthreads (the tiled products, every
# reduction) each simulated thread waits for its turn at the GIL. Python's default switch
# interval of 5 ms makes those hand-offs the bulk of a launch: at 0.2 ms the simulated tests
# take about 40% less time (tests/test_cuda_backend.py: 155 s -> 88 s on 2 cores), running
# exactly the same kernels. Only the interpreter's scheduling changes, and only under the simulator.
if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    sys.setswitchinterval(0.0002)
