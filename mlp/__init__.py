"""numba-mlp: multilayer perceptrons trained from scratch, the back-propagation lecture's math as kernels."""
from ._version import __version__
from .model import MLP

__all__ = ["MLP", "__version__"]
