"""Training engines: one per backend, behind one small interface (``mlp.engines.base.Engine``).

==========  ===============  ==================================================
backend     engine           how an epoch runs
==========  ===============  ==================================================
``numpy``   ``NumpyEngine``  one Python iteration per minibatch on the reference
                             kernels: the reference loop, read beside the lecture
``cpu``     ``CpuEngine``    one compiled (numba) call per epoch, buffers made once
``cuda``    ``CudaEngine``   data and buffers on the GPU, a few fused launches per
                             step, one host read per epoch
==========  ===============  ==================================================

The trainer asks this registry for its network's engine (``make_engine``) and
never imports an engine itself; no engine imports the trainer. Engines load on
first use, as the kernel backends do: a numpy-only user never imports numba's
compiled epoch, and the cuda engine only where the cuda backend is asked for.

Adding an engine: subclass ``Engine`` in a module here (``backend``,
``dropout_modes``, ``run_epoch``; the optimizer state comes with the base
class) and name it in ``ENGINES``.
"""
import importlib

from .base import OPTIMIZER_STATE, UPDATE_RULES, Engine, EpochResult, update_rule

__all__ = ["ENGINES", "OPTIMIZER_STATE", "UPDATE_RULES", "Engine", "EpochResult", "engine_class", "check_supported",
           "make_engine", "update_rule"]

#: backend name -> "module:class" of its engine
ENGINES = {
    "numpy": "mlp.engines.numpy:NumpyEngine",
    "cpu": "mlp.engines.cpu:CpuEngine",
    "cuda": "mlp.engines.cuda:CudaEngine",
}


def engine_class(backend):
    """The ``Engine`` subclass that trains networks on ``backend``."""
    try:
        module, name = ENGINES[backend].split(":")
    except KeyError:
        raise ValueError(f"no training engine for backend {backend!r}; engines: {sorted(ENGINES)}") from None
    return getattr(importlib.import_module(module), name)


def check_supported(backend, config):
    """ValueError naming what to change when ``backend``'s engine cannot run ``config``."""
    try:
        engine_class(backend).check_supported(config)
    except ValueError as exc:
        others = [b for b in ENGINES if b != backend and config.dropout_mode in engine_class(b).dropout_modes]
        raise ValueError(f"{exc}; use another dropout_mode, or a backend whose engine has it: {others}") from None


def make_engine(net, config, X, y, batch, l2, l1, keep, sample_weight=None):
    """The engine for ``net.backend``, holding the data and buffers of one fit (see ``Engine``)."""
    engine = engine_class(net.backend)
    if sample_weight is None:
        return engine(net, config, X, y, batch, l2, l1, keep)
    return engine(net, config, X, y, batch, l2, l1, keep, sample_weight=sample_weight)
