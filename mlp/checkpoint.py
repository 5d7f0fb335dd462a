"""Trainer checkpoints: a model file with the state a run needs to continue exactly where it stopped.

A checkpoint is a model file (``mlp.persistence``; ``mlp.load`` reads its live
parameters) with more members:

    checkpoint        JSON: kind, last completed epoch, number of training
                      examples, the TrainConfig, the history, the
                      early-stopping state (best value, epochs waited), the
                      learning rate of the next epoch (the "adaptive" schedule's)
    ckpt_{key}{l}                   the optimizer state of layer l, one member per key of
                                    ``OPTIMIZER_STATE[rule]`` (velocities vW, vb; Adam's mW, mb, vW, vb)
    ckpt_bestW{l}, ckpt_bestb{l}    the best epoch's parameters, when there is one

Shuffling and masks are pure functions of (seed, epoch, step), so a resumed
run continues exactly as an uninterrupted one would; every configuration
field but ``epochs``, ``early_stopping`` and ``patience`` must match.
"""
import json

import numpy as np

from . import persistence
from .engines import OPTIMIZER_STATE
from .history import History

CHECKPOINT_KIND = "numba-mlp-trainer-checkpoint"
# The config fields that must match to resume (epochs, patience and early_stopping may change, except
# under the cosine schedule, whose rates depend on the number of epochs).
RESUME_FIXED = ("batch_size", "learning_rate", "optimizer", "momentum", "nesterov", "beta_1", "beta_2", "epsilon",
                "lr_schedule", "lr_decay", "warmup_epochs", "power_t", "alpha", "l2", "l1", "keep_prob",
                "dropout_mode", "validation_fraction", "tol", "monitor", "seed")


def save_checkpoint(path, net, config, epoch, history, engine, best, n_train, next_learning_rate):
    """Write the checkpoint after ``epoch`` atomically; ``best`` is the trainer's ``BestEpoch``."""
    arrays = persistence.model_arrays(net, {"train_config": config.to_dict()})
    meta = {"kind": CHECKPOINT_KIND, "epoch": epoch, "n_train": n_train, "config": config.to_dict(),
            "history": history.to_dict(), "best_value": best.value, "wait": best.wait,
            "has_best": best.params is not None, "next_learning_rate": next_learning_rate}
    arrays["checkpoint"] = np.array(json.dumps(meta))
    for key, per_layer in engine.get_optimizer_state().items():
        for l, array in enumerate(per_layer):
            arrays[f"ckpt_{key}{l}"] = array
    if best.params is not None:
        for l, (W, b) in enumerate(zip(*best.params)):
            arrays[f"ckpt_bestW{l}"] = W
            arrays[f"ckpt_bestb{l}"] = b
    persistence.write_npz(path, arrays)


def load_checkpoint(path, net, config, engine, best, n_train):
    """Restore the parameters, the optimizer and early-stopping state; return (next epoch, history, its learning rate).

    ValueError when the file is no checkpoint, or holds another network, configuration or data size.
    """
    arrays = persistence.read_npz(path)
    if "checkpoint" not in arrays:
        raise ValueError(f"{path!r} is a model file, not a trainer checkpoint")
    meta = json.loads(str(arrays["checkpoint"]))
    if meta.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path!r} is not a numba-mlp trainer checkpoint")
    layer_sizes, output, activation, dtype, weights, biases, _ = persistence.parse_model(arrays, path)
    saved_net = (layer_sizes, output, activation, np.dtype(dtype).name)
    this_net = (net.layer_sizes, net.output, net.activation, np.dtype(net.dtype).name)
    if saved_net != this_net:
        raise ValueError(f"checkpoint {path!r} holds a {' '.join(map(str, saved_net))} network; "
                         f"this one is {' '.join(map(str, this_net))}")
    saved = meta["config"]
    now = config.to_dict()
    fixed = RESUME_FIXED + (("epochs",) if now["lr_schedule"] == "cosine" else ())
    # a checkpoint written before warmup_epochs existed had none: 0
    changed = [k for k in fixed if saved.get(k, 0 if k == "warmup_epochs" else None) != now[k]]
    if changed:
        raise ValueError(f"cannot resume from {path!r}: TrainConfig field(s) {changed} differ from the "
                         f"checkpoint's ({ {k: saved.get(k) for k in changed} })")
    if meta["n_train"] != n_train:
        raise ValueError(f"cannot resume from {path!r}: it was trained on {meta['n_train']} examples, "
                         f"this data has {n_train}")
    net.set_parameters(weights, biases)
    L = net.n_layers
    engine.set_optimizer_state({key: [arrays[f"ckpt_{key}{l}"] for l in range(L)]
                                for key in OPTIMIZER_STATE[engine.rule]})
    best.value = meta["best_value"]
    best.wait = meta["wait"]
    if meta["has_best"]:
        best.params = ([arrays[f"ckpt_bestW{l}"] for l in range(L)], [arrays[f"ckpt_bestb{l}"] for l in range(L)])
    return meta["epoch"] + 1, History.from_dict(meta["history"]), meta.get("next_learning_rate", config.learning_rate)
