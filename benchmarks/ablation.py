"""What each ingredient of a recipe adds, on the validation split only: the ablation behind ``mlp.defaults.RECIPES``.

    python benchmarks/ablation.py --recipe main            # every variant, about 6 minutes on 2 cores
    python benchmarks/ablation.py --recipe best --only recipe no_dropout

Each variant trains the recipe's network with one ingredient removed, changed
or added, on Fashion-MNIST's training data less a stratified 10% validation
split (seed 0), and is scored on that split: the test set is never read here.
The recipe itself then trains on the whole training set (``mlp train``), so
the data-size row (``less_data``: the same run on 90% of the split's training
part) shows what retraining on train + validation buys, which the validation
split cannot measure directly.

Ingredients the library does not keep are measured here on the host, through
the public API, so that the table says why they were left out:

* ``swa``: the mean of the parameters at the end of each of the last 25% of
  epochs (stochastic weight averaging), kept in a callback;
* ``flip``, ``shift``: horizontal flips and random shifts of +-1 pixel,
  drawn afresh for every example at every epoch by rewriting the training
  array in place between epochs (what an augmenting gather would do);
* ``mc_dropout``: the recipe trained with dropout (its own, else keep 0.9 input /
  0.7 hidden), predicted by averaging 20 sampled reduced networks
  (``MLP.mc_dropout_proba``) instead of the full one: compare it with the
  ``dropout`` row, the same network predicted plainly.

Writes ``benchmarks/ablation-<recipe>.json`` (``--only`` replaces its variants there) and
prints the README's table.
Validation accuracy on 6,000 examples has a standard error of about 0.004:
differences below 0.003 are noise.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from mlp import MLP, Trainer
from mlp.datasets import load_fashion_mnist, train_validation_split
from mlp.defaults import RECIPES
from mlp.gemm_floor import epoch_floor_seconds

HERE = Path(__file__).resolve().parent
VALIDATION_FRACTION = 0.1
SWA_FRACTION = 0.25
MC_SAMPLES = 20
DROPOUT = (0.9, 0.7)  # keep probabilities (input, hidden) of the dropout rows when a recipe has none

#: name -> (what it changes, TrainConfig overrides, hidden sizes or None, host-side extra or None)
VARIANTS = {
    "recipe": ("the recipe as it is", {}, None, None),
    "plain_sgd": ("plain SGD: constant rate, no momentum, dropout or L2", dict(
        momentum=0.0, lr_schedule="decay", lr_decay=0.0, keep_prob=1.0, l2=0.0), None, None),
    "decay_schedule": ("1/(1 + 0.05 e) decay instead of cosine (the previous main job's)", dict(
        lr_schedule="decay", lr_decay=0.05), None, None),
    "previous_main_job": ("the previous main job: decay 0.05, 80 epochs, dropout 0.9/0.7", dict(
        lr_schedule="decay", lr_decay=0.05, epochs=80), None, "with_dropout"),
    "shorter": ("3/4 of the epochs", {}, None, "shorter"),
    "longer": ("5/4 of the epochs", {}, None, "longer"),
    "warmup": ("cosine after 3 epochs of linear warm-up", dict(warmup_epochs=3), None, None),
    "no_momentum": ("no momentum", dict(momentum=0.0), None, None),
    "nesterov": ("Nesterov's momentum", dict(nesterov=True), None, None),
    "dropout": ("dropout toggled: none if the recipe has it, else keep 0.9 input / 0.7 hidden", {}, None,
                "dropout"),
    "no_l2": ("no L2", dict(l2=0.0), None, None),
    "batch_64": ("minibatches of 64", dict(batch_size=64), None, None),
    "less_data": ("90% of the training part (what retraining on train + validation adds)", {}, None, "less_data"),
    "swa": (f"+ weight averaging over the last {SWA_FRACTION:.0%} of epochs", {}, None, "swa"),
    "flip": ("+ horizontal flips (augmentation)", {}, None, "flip"),
    "shift": ("+ flips and shifts of +-1 pixel (augmentation)", {}, None, "shift"),
    "mc_dropout": (f"with dropout (the recipe's, else 0.9/0.7), predicted by Monte-Carlo dropout ({MC_SAMPLES} "
                   "networks)", {}, None, "mc_dropout"),
    "wider": ("twice the hidden units", {}, "wider", None),
}


def recipe_config(recipe):
    """(hidden sizes, TrainConfig fields) of a recipe of ``mlp.defaults.RECIPES``."""
    job = RECIPES[recipe]
    hidden = list(job["hidden"])
    fields = {k: job[k] for k in ("epochs", "batch_size", "learning_rate", "momentum", "lr_schedule", "lr_decay",
                                  "warmup_epochs", "l2", "l1", "dropout_mode", "seed")}
    fields["keep_prob"] = [job["keep_prob_input"]] + [job["keep_prob_hidden"]] * len(hidden)
    return hidden, fields


class Augmenter:
    """Rewrites the training images in place with fresh flips (and shifts) of the originals."""

    def __init__(self, X, shift, seed=0):
        self.X, self.original = X, X.copy().reshape(len(X), 28, 28)
        self.shift, self.rng = shift, np.random.default_rng(seed)

    def __call__(self):
        images = self.original.copy()
        flip = self.rng.random(len(images)) < 0.5
        images[flip] = images[flip, :, ::-1]
        s = self.shift
        if s:
            padded = np.pad(images, ((0, 0), (s, s), (s, s)))
            dy, dx = (self.rng.integers(-s, s + 1, len(images)) for _ in range(2))
            for sy in range(-s, s + 1):
                for sx in range(-s, s + 1):
                    rows = (dy == sy) & (dx == sx)
                    images[rows] = padded[rows, s - sy:s - sy + 28, s - sx:s - sx + 28]
        self.X[...] = images.reshape(len(images), -1)


class WeightAverage:
    """The running mean of the network's parameters at the end of each epoch from ``first_epoch`` on."""

    def __init__(self, net, first_epoch):
        self.net, self.first_epoch = net, first_epoch
        self.sum, self.count = None, 0

    def take(self, record):
        if record["epoch"] >= self.first_epoch:
            weights, biases = self.net.get_parameters()
            params = [p.astype(np.float64) for p in weights + biases]
            self.sum = params if self.sum is None else [s + p for s, p in zip(self.sum, params)]
            self.count += 1

    def set_network(self):
        mean = [s / self.count for s in self.sum]
        L = self.net.n_layers
        self.net.set_parameters(mean[:L], mean[L:])


def run_variant(name, recipe, data):
    """The variant's record: validation accuracy and training seconds."""
    what, overrides, hidden_change, extra = VARIANTS[name]
    hidden, fields = recipe_config(recipe)
    if hidden_change == "wider":
        hidden = [2 * h for h in hidden]
    fields.update(overrides)
    has_dropout = np.min(fields["keep_prob"]) < 1
    if extra == "dropout" and has_dropout:
        fields["keep_prob"] = 1.0
    elif extra in ("dropout", "mc_dropout", "with_dropout") and not has_dropout:
        fields["keep_prob"] = [DROPOUT[0]] + [DROPOUT[1]] * len(hidden)
    if extra in ("shorter", "longer"):
        fields["epochs"] = round(fields["epochs"] * (0.75 if extra == "shorter" else 1.25))
    X_tr, y_tr, X_val, y_val = (a.copy() for a in data)
    if extra == "less_data":
        X_tr, y_tr, _, _ = train_validation_split(X_tr, y_tr, 0.1, seed=1)
        X_tr = np.ascontiguousarray(X_tr)
    # compiled first (numba's disk cache makes this quick after the first run), so no time below is JIT
    Trainer(MLP([X_tr.shape[1], *hidden, 10], backend="cpu"), **{**fields, "epochs": 1, "warmup_epochs": 0},
            threads=1).fit(X_tr[:256], y_tr[:256])
    net = MLP([X_tr.shape[1], *hidden, 10], seed=fields["seed"], backend="cpu")
    hooks = []  # host-side work after each epoch, timed apart from the training
    if extra in ("flip", "shift"):
        augment = Augmenter(X_tr, shift=1 if extra == "shift" else 0)
        augment()
        hooks.append(lambda record: augment())
    if extra == "swa":
        average = WeightAverage(net, first_epoch=fields["epochs"] - round(SWA_FRACTION * fields["epochs"]))
        hooks.append(average.take)
    host_seconds = 0.0

    def callback(record):
        nonlocal host_seconds
        start = time.perf_counter()
        for hook in hooks:
            hook(record)
        host_seconds += time.perf_counter() - start

    start = time.perf_counter()
    history = Trainer(net, **fields).fit(X_tr, y_tr, callback=callback)
    seconds = time.perf_counter() - start - host_seconds
    if extra == "swa":
        average.set_network()
    if extra == "mc_dropout":
        predicted = net.mc_dropout_proba(X_val, fields["keep_prob"], n_samples=MC_SAMPLES).argmax(axis=1)
    else:
        predicted = net.predict(X_val)
    return {"variant": name, "what": what, "hidden": hidden, "fields": fields,
            "val_accuracy": float(np.mean(predicted == y_val)), "seconds": seconds,
            "stop_reason": history.stop_reason}


def table(records, floor):
    base = next((r["val_accuracy"] for r in records if r["variant"] == "recipe"), None)
    lines = ["| variant | validation accuracy | vs the recipe | training | GEMM floors |",
             "|---|---|---|---|---|"]
    for r in records:
        delta = "" if base is None or r["variant"] == "recipe" else f"{r['val_accuracy'] - base:+.4f}"
        lines.append(f"| {r['what']} | {r['val_accuracy']:.4f} | {delta} | {r['seconds']:.1f} s | "
                     f"{r['seconds'] / floor:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", choices=tuple(RECIPES), default="main")
    p.add_argument("--only", nargs="+", choices=tuple(VARIANTS), default=None, metavar="VARIANT",
                   help=f"variants to run (default: all): {', '.join(VARIANTS)}")
    p.add_argument("--out", type=Path, default=None, help="JSON file (default: benchmarks/ablation-RECIPE.json)")
    args = p.parse_args(argv)
    dataset = load_fashion_mnist()
    data = train_validation_split(dataset.X_train, dataset.y_train, VALIDATION_FRACTION, seed=0)
    floor = epoch_floor_seconds()
    records = []
    for name in args.only or VARIANTS:
        records.append(run_variant(name, args.recipe, data))
        r = records[-1]
        print(f"{name}: validation {r['val_accuracy']:.4f} in {r['seconds']:.1f} s", flush=True)
    floor = min(floor, epoch_floor_seconds())
    out = args.out or HERE / f"ablation-{args.recipe}.json"
    if args.only and out.exists():  # a partial run replaces its variants in the earlier table
        earlier = json.loads(out.read_text())
        ran = {r["variant"] for r in records}
        records = [r for r in earlier["records"] if r["variant"] not in ran] + records
        records.sort(key=lambda r: list(VARIANTS).index(r["variant"]))
    out.write_text(json.dumps({"recipe": args.recipe, "gemm_floor_seconds": floor, "records": records,
                               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=1) + "\n")
    print(table(records, floor))


if __name__ == "__main__":
    main()
