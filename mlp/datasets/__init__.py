"""Data sets for training: Fashion-MNIST / MNIST (IDX files), scikit-learn's digits, synthetic.

Every loader returns a :class:`Dataset`: features as ``float32`` in ``[0, 1]``
with shape ``(n_samples, n_features)`` and integer labels as ``int64`` with
shape ``(n_samples,)``, for a training and a test part, and the names of the
classes (``class_names``: Fashion-MNIST's "T-shirt/top", "Trouser"...; the
digits "0" .. "9" for MNIST and digits; "0", "1"... for synthetic data).

The test part is only for the final evaluation: carve a validation set for
tuning out of the *training* part with :func:`train_validation_split`.

Where the data come from
------------------------
Fashion-MNIST is looked up in the first of these that is given, and only there:

1. the ``path`` argument of :func:`load_fashion_mnist`,
2. ``$MLP_DATA`` (the directory itself or its ``fashion-mnist/`` subdirectory),
3. ``/usr/share/datasets/fashion-mnist``, where the Debian/Ubuntu package
   ``dataset-fashion-mnist`` installs the four gzip-compressed IDX files
   (``apt-get install dataset-fashion-mnist``).

A directory of IDX files must hold ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
``t10k-labels-idx1-ubyte``, each possibly compressed with gzip (``.gz``).

The modules
-----------
``dataset``    :class:`Dataset`, the checked pair of training and test parts
``idx``        :func:`read_idx`: one IDX file, raw or gzip-compressed
``mnist``      Fashion-MNIST and MNIST: a directory of four IDX files
               (:func:`load_idx_dir`), where it is looked for, how it is loaded
``digits``     scikit-learn's 8x8 digits (:func:`load_digits`)
``synthetic``  :func:`make_synthetic`, a learnable set of any size
``split``      :func:`train_validation_split`, stratified by class
``by_name``    :func:`load_dataset`: one of :data:`DATASETS` by name
"""
from .by_name import DATASETS, load_dataset
from .dataset import Dataset
from .digits import load_digits
from .idx import read_idx
from .mnist import (DEFAULT_FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, IDX_FILES, load_fashion_mnist, load_idx_dir,
                    load_mnist)
from .split import train_validation_split
from .synthetic import make_synthetic

__all__ = [
    "Dataset",
    "DATASETS",
    "DEFAULT_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "IDX_FILES",
    "read_idx",
    "load_idx_dir",
    "load_fashion_mnist",
    "load_mnist",
    "load_digits",
    "make_synthetic",
    "load_dataset",
    "train_validation_split",
]
