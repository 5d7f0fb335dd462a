"""Hyper-parameter search: grid or random, on a validation split, in parallel, resumable.

The lecture asks for the per-layer strengths alpha(j), beta(j) (``l2``, ``l1``)
and the dropout keep probabilities to be "optimized on a separate validation
set (not the test set)". :func:`search` does exactly that:

1. The *training* part of the data is split once, stratified, with
   :func:`mlp.datasets.train_validation_split` (``validation_fraction``,
   ``seed``): every trial sees the same training and validation samples.
2. Each trial trains a fresh network on the training split and is scored on
   the validation split: accuracy (the ranking score) and mean cross-entropy.
   Trials receive only those four arrays; the test set is not sent to them.
3. The best trial (highest validation accuracy; ties: lower validation loss,
   then the earlier trial) is trained again in this process on the same
   training split with the same seed and BLAS thread count, which reproduces
   the trial's network (so no trial's network need be stored or shipped
   back), and only that network is evaluated on the test set, once.

>>> from mlp.search import search
>>> result = search("digits", {"hidden": [32], "l2": [0, 1e-4], "keep_prob_hidden": [0.5, 1.0],
...                            "epochs": 3, "learning_rate": 0.1}, out_dir="runs/search")
>>> result.best_params, result.test_accuracy

The space
---------
A dict from parameter name to its candidates. A list (or tuple or array) is
a list of candidates; a scalar is one fixed value; :class:`LogUniform` /
:class:`Uniform` are distributions, for random search only. Names:

``hidden``            hidden layer sizes of one network: ``[(256,), (512, 256)]``
                      (an int means one hidden layer; ``()`` means none)
``l2``, ``l1``        one strength, or a tuple with one per weight matrix
``keep_prob``         one keep probability, or a tuple: the input's, then each hidden layer's
``keep_prob_input``, ``keep_prob_hidden``
                      the input's and every hidden layer's keep probability
                      (instead of ``keep_prob``; a missing one is 1.0)
``activation``        the hidden layers' activation: "relu", "tanh", "logistic" or "identity"
``learning_rate``, ``optimizer``, ``momentum``, ``nesterov``, ``beta_1``, ``beta_2``,
``epsilon``, ``lr_schedule``, ``lr_decay``, ``warmup_epochs``, ``power_t``, ``epochs``, ``batch_size``,
``dropout_mode``, ``early_stopping``, ``patience``, ``tol``, ``monitor``
                      the :class:`mlp.config.TrainConfig` fields: e.g.
                      ``{"optimizer": ["sgd", "adam"], "activation": ["relu", "tanh"]}``
                      (a grid also pairs Adam with every momentum; momentum
                      matters to "sgd" only, beta_1, beta_2, epsilon to "adam" only)

Parameters not in the space keep the :class:`~mlp.config.TrainConfig`
defaults (and :class:`mlp.MLP`'s relu); ``hidden`` defaults to ``(256,)``, the lecture's 784-256-10 net
(``mlp.defaults.SEARCH`` holds the defaults of :func:`search`).
Every trial uses the same ``seed`` for its initial weights, shuffling and
dropout masks, so differences between trials come from the hyper-parameters
and a trial's result does not depend on where or in which order it runs (to
the bit with the same BLAS thread count, see ``threads_per_trial``).

``method="grid"`` runs the full product of the candidate lists (the last name
varies fastest). ``method="random"`` draws ``n_trials`` configurations from
``numpy.random.default_rng(seed)``: without repetition when every entry is a
list (at most the grid's size), independently per trial when there is a
distribution.

Where trials run
----------------
``n_jobs=1``: one after another in this process. ``n_jobs=k > 1``: in ``k``
worker processes (joblib's loky backend); each worker runs numba's parallel
loops on one thread and limits BLAS to ``max(1, cores // k)`` threads, so
the machine is not oversubscribed (``threads_per_trial`` overrides the
count). ``client=`` (a ``dask.distributed.Client``) or
``scheduler="tcp://host:port"``: on a Dask cluster; the data are scattered
to every worker once, each trial is a task (numba and BLAS on one thread per
task: a worker runs as many trials at once as it has threads), and results are
collected as they complete. If a worker dies, the scheduler reruns its trials
elsewhere; if the data died with it (its last copy), the search waits for a
worker (``worker_timeout``, 60 s), scatters the data again and resubmits the
unfinished trials, never a finished one. Dask and joblib are optional (``pip install 'numba-mlp[dask]'``);
this package imports them only when asked to use them.

Nothing lost
------------
With ``out_dir``, each finished trial is appended to ``out_dir/journal.jsonl``
(JSON Lines, flushed and fsynced line by line) as soon as its result arrives,
keyed by a hash of its parameters, the data, the split and the seed. Running
the same search again skips the journalled trials: a crash, Ctrl-C or a killed
worker loses only the trials that were running. A line that is no usable
record (cut short by a crash, or scores that are not numbers) is ignored with
one warning, that trial runs again, and the journal is rewritten (atomically)
without it. Under joblib a killed worker stops the search with
:class:`SearchIncomplete` (the journal keeps every finished trial; run again
to complete the rest), and so does a Dask cluster left without a worker for
``worker_timeout`` seconds. The joblib workers exit within a second of the
search's own process, even a SIGKILLed one.

One search at a time per ``out_dir``: the search holds an exclusive lock on
it (``out_dir/.mlp-search.lock``) from reading the journal to writing
``best.json``; a second search fails at once with :class:`DirectoryLocked`,
which names the holder (pid, host, start time, command). The kernel drops the
lock of a killed search; its lock file, if left, is taken over by the next.
Before any trial runs, the search checks that its result files can be
written there (``mlp.files.check_writable``).

Files written into ``out_dir`` (atomically, except the journal):
``trials.csv`` and ``trials.json`` (one row per trial: its parameters,
validation accuracy and loss, epochs run, seconds), ``best.json`` (best
parameters, validation and test accuracy), ``best_model.npz`` (the retrained
best network, ``mlp.load``), ``search.png`` (validation accuracy against each
varied hyper-parameter, log scale for l2, l1, learning rate) and the journal.

The scikit-learn route
----------------------
:class:`mlp.MLPClassifier` is a scikit-learn estimator, so scikit-learn's own
searches work too, with cross-validation instead of one split::

    from sklearn.model_selection import GridSearchCV
    gs = GridSearchCV(mlp.MLPClassifier(hidden_layer_sizes=(256,), max_iter=10),
                      {"l2": [0, 1e-4], "keep_prob": [1.0, (0.8, 0.5)]}, n_jobs=2)
    gs.fit(X_train, y_train)                       # joblib processes on this machine
    with joblib.parallel_backend("dask"):          # or the fits on a Dask cluster,
        gs.fit(X_train, y_train)                   # after dask.distributed.Client(...)

That route has no journal and does not limit numba's threads per worker.

Command line: ``mlp search`` (see :mod:`mlp.cli.search`).

The modules, in the order a search uses them
--------------------------------------------
``space``    the distributions, the parameters a space may name and how each
             candidate is checked, grid and random configurations, trial keys
``data``     the input data split once; the test part kept for the end
``trials``   one trial (what a worker runs), under the thread limit of ``mlp.threads``
``watchdog`` a joblib worker exits when the search's process is gone
``journal``  the append-only record of finished trials, and reading it back
``lock``     one search at a time per output directory
``runners``  running the trials here, in joblib workers or on a Dask cluster
``results``  ``SearchResult``, the ranking, the tables and the plot
``driver``   :func:`search` itself, as a few named steps
"""
from .driver import search
from .journal import JOURNAL_NAME, read_journal
from .lock import DirectoryLocked
from .results import SearchResult
from .runners import SearchIncomplete
from .space import METHODS, PARAMETERS, LogUniform, Uniform, trial_key
from .trials import run_trial

__all__ = ["search", "SearchResult", "SearchIncomplete", "DirectoryLocked", "LogUniform", "Uniform", "run_trial",
           "read_journal", "trial_key", "METHODS", "PARAMETERS", "JOURNAL_NAME"]
