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

Loading reads what ``mlp.persistence.read_npz`` reads of a model, the
``checkpoint`` JSON and the ``ckpt_*`` members of the resuming run's update
rule, each checked to have its parameter's shape and dtype before its data
are read. Whatever is wrong with the file (a member or a JSON field missing or
of the wrong kind, JSON that is no JSON) is a ValueError naming the
checkpoint and the problem.
"""
import json
import os

import numpy as np

from . import persistence
from .engines import OPTIMIZER_STATE
from .history import STOP_REASONS, History

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


def _member_reader(rule):
    """A ``read_npz`` ``more``: the checkpoint JSON, then the optimizer state of ``rule`` and the best parameters.

    Each ``ckpt_{key}{l}`` array must have the shape and dtype of the parameter
    it goes with (``W{l}`` for a key ending in W, ``b{l}`` for one ending in b).
    """
    keys = OPTIMIZER_STATE[rule] + ("bestW", "bestb")

    def read(archive, arrays):
        found = {}
        if "checkpoint" in archive.names:
            found["checkpoint"] = archive.scalar("checkpoint", "U", persistence.MAX_JSON_BYTES)
        for key in keys:
            for l in range(len(arrays["layer_sizes"]) - 1):
                if f"ckpt_{key}{l}" in archive.names:
                    like = arrays[f"{key[-1]}{l}"]
                    found[f"ckpt_{key}{l}"] = archive.array(f"ckpt_{key}{l}", like.shape, like.dtype)
        return found

    return read


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_history(value):
    return (isinstance(value, dict) and isinstance(value.get("records"), list)
            and all(isinstance(r, dict) and _is_count(r.get("epoch")) for r in value["records"])
            and (value.get("best_epoch") is None or _is_count(value.get("best_epoch")))
            and value.get("stop_reason") in STOP_REASONS)


# The fields of the checkpoint JSON: a test of each, and the words that say what it must be.
_FIELDS = {
    "epoch": (_is_count, "a count"),
    "n_train": (_is_count, "a count"),
    "config": (lambda v: isinstance(v, dict), "a JSON object"),
    "history": (_is_history, "a history (records: objects with an epoch each, best_epoch, stop_reason)"),
    "best_value": (lambda v: v is None or _is_number(v), "a number or null"),
    "wait": (_is_count, "a count"),
    "has_best": (lambda v: isinstance(v, bool), "true or false"),
    "next_learning_rate": (_is_number, "a number"),
}


def _read_meta(arrays, path):
    """The checkpoint JSON of ``arrays``, every field checked; ValueError naming ``path`` and the field."""
    if "checkpoint" not in arrays:
        raise ValueError(f"{path!r} is a model file, not a trainer checkpoint")
    meta = persistence.parse_json(str(arrays["checkpoint"]), "checkpoint", path)
    if not isinstance(meta, dict) or meta.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"{path!r} is not a numba-mlp trainer checkpoint")
    for field, (valid, what) in _FIELDS.items():
        # next_learning_rate is absent from checkpoints written before the "adaptive" schedule kept it
        if field not in meta and field != "next_learning_rate":
            raise ValueError(f"checkpoint {path!r} is damaged: its JSON lacks the field {field!r}")
        if field in meta and not valid(meta[field]):
            raise ValueError(f"checkpoint {path!r} is damaged: the field {field!r} must be {what}; "
                             f"it is {json.dumps(meta[field])[:80]}")
    return meta


def load_checkpoint(path, net, config, engine, best, n_train):
    """Restore the parameters, the optimizer and early-stopping state; return (next epoch, history, its learning rate).

    ValueError when the file is no checkpoint, is damaged (the message names
    the member or JSON field), or holds another network, configuration or data
    size.
    """
    path = os.fspath(path)
    arrays = persistence.read_npz(path, more=_member_reader(engine.rule))
    meta = _read_meta(arrays, path)
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
    L = net.n_layers
    keys = OPTIMIZER_STATE[engine.rule] + (("bestW", "bestb") if meta["has_best"] else ())
    missing = [f"ckpt_{key}{l}" for key in keys for l in range(L) if f"ckpt_{key}{l}" not in arrays]
    if missing:
        raise ValueError(f"checkpoint {path!r} is damaged: members {missing[:8]} are missing")
    for name in (f"ckpt_{key}{l}" for key in keys for l in range(L)):
        if not np.isfinite(arrays[name]).all():
            raise ValueError(f"checkpoint {path!r} is damaged: member {name!r} contains NaN or inf")
    net.set_parameters(weights, biases)
    engine.set_optimizer_state({key: [arrays[f"ckpt_{key}{l}"] for l in range(L)]
                                for key in OPTIMIZER_STATE[engine.rule]})
    best.value = meta["best_value"]
    best.wait = meta["wait"]
    if meta["has_best"]:
        best.params = ([arrays[f"ckpt_bestW{l}"] for l in range(L)], [arrays[f"ckpt_bestb{l}"] for l in range(L)])
    return meta["epoch"] + 1, History.from_dict(meta["history"]), meta.get("next_learning_rate", config.learning_rate)
