"""Every default of the library, in one place: the network, the trainer, the main job, the estimators.

Each way of using the library starts from its own sensible place, and each reads its
defaults here rather than writing its own:

``NETWORK``    ``mlp.MLP``: the lecture's network (softmax output, std 1/sqrt(cols(W)) init).
``TRAINING``   ``mlp.TrainConfig``: a plain minibatch SGD run that a user then tunes.
``MAIN_JOB``   ``mlp train`` (what ``make train`` runs) and the fixed values of
               ``mlp search``: a recipe for Fashion-MNIST chosen on a validation
               split of its training data, never on its test set.
``RECIPES``    ``mlp train --recipe``: the main job and ``BEST_JOB``, a bigger network
               for a longer budget.
``SEARCH``     ``mlp.search.search``: how trials run when the caller says nothing.
``ESTIMATOR``  ``mlp.MLPClassifier`` / ``mlp.MLPRegressor``: scikit-learn's defaults (Adam,
               100 hidden units, up to 200 epochs, the input's float dtype).

The mappings are read-only; a caller that wants other values passes them.
"""
from types import MappingProxyType

import numpy as np

#: ``mlp.MLP``'s keyword defaults.
NETWORK = MappingProxyType({
    "output": "softmax",
    "activation": "relu",
    "init": "normal",
    "dtype": np.float32,
    "backend": "auto",
})

#: ``mlp.TrainConfig``'s field defaults.
TRAINING = MappingProxyType({
    "epochs": 20,
    "batch_size": 64,
    "learning_rate": 0.05,
    "optimizer": "sgd",
    "momentum": 0.0,
    "nesterov": False,
    "beta_1": 0.9,
    "beta_2": 0.999,
    "epsilon": 1e-8,
    "lr_schedule": "decay",
    "lr_decay": 0.0,
    "warmup_epochs": 0,
    "power_t": 0.5,
    "alpha": 0.0,
    "l2": 0.0,
    "l1": 0.0,
    "keep_prob": 1.0,
    "dropout_mode": "per_sample",
    "validation_fraction": 0.0,
    "early_stopping": False,
    "patience": 5,
    "tol": 1e-4,
    "monitor": "val_loss",
    "seed": 0,
})

# The recipes of ``mlp train`` (``--recipe``), each chosen on a stratified 10% validation split of
# Fashion-MNIST's training data, never its test set, then trained on the whole training set for
# the chosen schedule (``validation_fraction`` 0): the ablation that chose them is
# ``benchmarks/ablation.py``, its table in the README.
#: ``mlp train``'s defaults (the "main" recipe, what ``make train`` runs: one hidden layer), and the
#: values ``mlp search`` holds fixed unless told to vary them.
MAIN_JOB = MappingProxyType({
    "hidden": (256,),
    "epochs": 60,
    "batch_size": 128,
    "learning_rate": 0.05,
    "momentum": 0.9,
    "lr_schedule": "cosine",
    "lr_decay": 0.0,
    "warmup_epochs": 0,
    "l2": 5e-5,
    "l1": 0.0,
    "keep_prob_input": 0.9,
    "keep_prob_hidden": 0.7,
    "dropout_mode": "per_sample",
    "validation_fraction": 0.0,
    "patience": 5,
    "dtype": "float32",
    "seed": 0,
})

#: ``mlp train --recipe best``: any fully connected network, a longer budget.
BEST_JOB = MappingProxyType({
    **MAIN_JOB,
    "hidden": (1024,),
    "epochs": 60,
    "keep_prob_input": 0.9,
    "keep_prob_hidden": 0.5,
})

#: ``mlp train --recipe NAME``: the recipes by name.
RECIPES = MappingProxyType({"main": MAIN_JOB, "best": BEST_JOB})

#: ``mlp.search.search``'s defaults: trials on the cpu backend (reproducible, no GPU start-up per
#: trial), scored on a 10% validation split; a space that does not name ``hidden`` trains the
#: main job's network.
SEARCH = MappingProxyType({
    "method": "grid",
    "hidden": MAIN_JOB["hidden"],
    "validation_fraction": 0.1,
    "seed": 0,
    "n_jobs": 1,
    "backend": "cpu",
    "dtype": np.float32,
})

#: ``mlp.MLPClassifier`` / ``mlp.MLPRegressor``'s constructor defaults: scikit-learn's (1.9), then the
#: lecture's additions, which leave scikit-learn's behaviour unchanged at their defaults.
ESTIMATOR = MappingProxyType({
    "hidden_layer_sizes": (100,),
    "activation": "relu",
    "solver": "adam",
    "alpha": 0.0001,
    "batch_size": "auto",
    "learning_rate": "constant",
    "learning_rate_init": 0.001,
    "power_t": 0.5,
    "max_iter": 200,
    "shuffle": True,
    "random_state": None,
    "tol": 1e-4,
    "verbose": False,
    "warm_start": False,
    "momentum": 0.9,
    "nesterovs_momentum": True,
    "early_stopping": False,
    "validation_fraction": 0.1,
    "beta_1": 0.9,
    "beta_2": 0.999,
    "epsilon": 1e-8,
    "n_iter_no_change": 10,
    "max_fun": 15000,
    "loss": "squared_error",
    "l1": 0.0,
    "l2": 0.0,
    "keep_prob": 1.0,
    "dropout_mode": "per_sample",
    "backend": "cpu",
    "dtype": None,
})
