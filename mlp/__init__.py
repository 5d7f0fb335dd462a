"""numba-mlp: multilayer perceptrons trained from scratch, the back-propagation lecture's math as kernels."""
from ._version import __version__
from .checks import UnscaledInputWarning
from .config import TrainConfig
from .history import History
from .model import MLP, load_model
from .persistence import save_model
from .trainer import Trainer, fit

load = load_model

__all__ = ["MLP", "__version__", "Trainer", "TrainConfig", "History", "UnscaledInputWarning", "fit", "load",
           "load_model", "save_model"]

# Not in __all__: ``from mlp import *`` must work without scikit-learn.
_ESTIMATORS = ("MLPClassifier", "MLPRegressor")


def __getattr__(name):
    # The scikit-learn estimators load on first use: `import mlp` works without scikit-learn.
    if name in _ESTIMATORS:
        from . import estimators
        return getattr(estimators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    # The estimators are attributes too, though loaded on first use.
    return sorted(set(globals()) | set(_ESTIMATORS))
