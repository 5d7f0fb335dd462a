"""Seconds per epoch of the main job at each thread setting, on a quiet machine and beside a busy core.

    python benchmarks/threads_under_load.py OUT.json [--epochs 3] [--dataset fashion-mnist] [--repeats 2]

What it measures: ``mlp train --epochs E --quiet --threads N`` through the
Python API (the main recipe, ``mlp.defaults.MAIN_JOB``: 784-256-10 at batch
128 on Fashion-MNIST, or 64-256-10 on digits when Fashion-MNIST is absent or
``--dataset digits``), for each ``--threads`` setting (default: 1, every
usable core, and "auto"), in two conditions:

* ``quiet``: nothing started by this script runs beside the fit;
* ``load``: a busy-loop process pinned (``os.sched_setaffinity``) to the last
  usable core, started before the fit and killed after it: the situation in
  which two BLAS threads ran 6 to 19 times slower than one.

Runs are interleaved (each repeat runs every condition and setting, in an
order rotated from one repeat to the next) so that a drift of the machine
does not favour one setting. Each run first trains one epoch on one minibatch
(compiling, as ``mlp train`` does), then the timed fit. Printed: a table of
median and worst epoch seconds and the thread counts the epochs ran with;
written to OUT.json: every run's epoch seconds, counts, "auto"'s probes and
the share of the CPUs other processes took during it (``machine_load``: in a
quiet run it should be near 0, in a loaded one near 1 / cores).

Not a pytest file (pytest collects ``bench_*.py`` and ``test_*.py``): the
numbers mean something only on a machine nobody else is using.
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import threadpoolctl

import mlp
from mlp.config import TrainConfig
from mlp.datasets import load_digits, load_fashion_mnist
from mlp.defaults import MAIN_JOB
from mlp.threads import check_threads, usable_cores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_load import busy_ticks, others_share  # noqa: E402  (beside this script)

#: The competing load: a Python busy loop on one core.
BUSY_LOOP = "import os, sys\nos.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="where to write the JSON results")
    p.add_argument("--epochs", type=int, default=3, help="epochs per fit (default 3)")
    p.add_argument("--dataset", choices=("fashion-mnist", "digits"), default="fashion-mnist",
                   help="fashion-mnist (digits when it is missing) or digits")
    p.add_argument("--threads", default=None,
                   help='comma-separated settings, e.g. "1,2,auto" (default: 1, every usable core, auto)')
    p.add_argument("--repeats", type=int, default=1, help="rounds of every condition and setting (default 1)")
    p.add_argument("--backend", choices=("cpu", "numpy"), default="cpu")
    p.add_argument("--settle", type=float, default=0.5,
                   help="seconds the busy loop runs before a loaded fit starts (default 0.5)")
    args = p.parse_args(argv)
    cores = usable_cores()
    names = args.threads.split(",") if args.threads else ["1", str(cores), "auto"]
    args.settings = list(dict.fromkeys(check_threads(n if n == "auto" else int(n)) for n in names))
    return args


def load_data(name):
    """(X_train, y_train, dataset name): Fashion-MNIST, or digits when asked or when it is absent."""
    if name == "fashion-mnist":
        try:
            data = load_fashion_mnist()
            return data.X_train, data.y_train, data.name
        except FileNotFoundError as exc:
            print(f"Fashion-MNIST not found ({str(exc).splitlines()[0]}); measuring on digits", file=sys.stderr)
    data = load_digits()
    return data.X_train, data.y_train, "digits"


def main_job_config(epochs):
    """The main recipe's TrainConfig with ``epochs`` (what ``mlp train --epochs E`` trains)."""
    job = MAIN_JOB
    return TrainConfig(epochs=epochs, batch_size=job["batch_size"], learning_rate=job["learning_rate"],
                       momentum=job["momentum"], lr_schedule=job["lr_schedule"], lr_decay=job["lr_decay"],
                       warmup_epochs=job["warmup_epochs"], l2=job["l2"], l1=job["l1"],
                       keep_prob=[job["keep_prob_input"]] + [job["keep_prob_hidden"]] * len(job["hidden"]),
                       dropout_mode=job["dropout_mode"], validation_fraction=job["validation_fraction"],
                       patience=job["patience"], seed=job["seed"])


def network(X, y, backend):
    return mlp.MLP([X.shape[1], *MAIN_JOB["hidden"], int(y.max()) + 1], seed=MAIN_JOB["seed"],
                   dtype=MAIN_JOB["dtype"], backend=backend)


def compile_first(X, y, config, backend):
    """One epoch on one minibatch of a throwaway network: the real fit then finds the epoch compiled."""
    rows = config.batch_size
    mlp.Trainer(network(X, y, backend), config.with_overrides({"epochs": 1}), threads=1).fit(X[:rows], y[:rows])


class BusyCore:
    """A busy-loop process pinned to ``core`` while the block runs; killed (and reaped) when it ends."""

    def __init__(self, core, settle):
        self.core, self.settle = core, settle
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(self.core)])
        time.sleep(self.settle)  # let it start spinning before the fit is timed
        return self

    def __exit__(self, *exc_info):
        self.process.kill()
        self.process.wait()
        return False


def one_run(X, y, config, backend, setting, condition, core, settle):
    """Train the main job once at ``setting`` in ``condition``; its epochs' seconds and thread counts."""
    net = network(X, y, backend)
    with BusyCore(core, settle) if condition == "load" else contextlib.nullcontext():
        before = busy_ticks()
        start = time.perf_counter()
        history = mlp.Trainer(net, config, threads=setting).fit(X, y)
        wall = time.perf_counter() - start
        share = others_share(before, busy_ticks())
    return {"condition": condition, "setting": setting, "epoch_seconds": history.column("seconds"),
            "epoch_threads": history.column("threads"), "probes": net.metadata["threads"]["probes"],
            "fit_seconds": wall, "others_cpu_share": share}


def summarise(runs, settings):
    """Rows (condition, setting, epochs, median s, worst s, counts) over every run of each pair."""
    rows = []
    for condition in ("quiet", "load"):
        for setting in settings:
            mine = [r for r in runs if r["condition"] == condition and r["setting"] == setting]
            seconds = [s for r in mine for s in r["epoch_seconds"]]
            counts = sorted({c for r in mine for c in r["epoch_threads"]})
            rows.append({"condition": condition, "setting": setting, "epochs": len(seconds),
                         "median_s": statistics.median(seconds), "worst_s": max(seconds), "counts": counts})
    return rows


def print_table(rows):
    print(f"{'condition':<10}{'threads':>8}{'epochs':>8}{'median s':>10}{'worst s':>10}  counts used")
    for r in rows:
        print(f"{r['condition']:<10}{str(r['setting']):>8}{r['epochs']:>8}{r['median_s']:>10.3f}"
              f"{r['worst_s']:>10.3f}  {r['counts']}")


def main(argv=None):
    args = parse_args(argv)
    X, y, dataset = load_data(args.dataset)
    X = np.ascontiguousarray(X, dtype=MAIN_JOB["dtype"])
    config = main_job_config(args.epochs)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(usable_cores()))
    core = cores[-1]
    compile_first(X, y, config, args.backend)
    pairs = [(c, s) for c in ("quiet", "load") for s in args.settings]
    runs = []
    for repeat in range(args.repeats):
        shift = repeat % len(pairs)
        for condition, setting in pairs[shift:] + pairs[:shift]:
            run = one_run(X, y, config, args.backend, setting, condition, core, args.settle)
            runs.append(dict(run, repeat=repeat))
            print(f"repeat {repeat} {condition:<5} threads={setting!s:<5} epochs "
                  f"{', '.join(f'{s:.2f}' for s in run['epoch_seconds'])} s on {run['epoch_threads']} threads",
                  flush=True)
    rows = summarise(runs, args.settings)
    print_table(rows)
    result = {
        "what": "seconds per epoch of the main job (mlp train --epochs E --quiet --threads N) quiet and beside a "
                "busy-loop process pinned to one core",
        "dataset": dataset, "n_train": int(X.shape[0]), "layer_sizes": network(X, y, args.backend).layer_sizes,
        "epochs": args.epochs, "repeats": args.repeats, "backend": args.backend, "settings": args.settings,
        "busy_core": core, "usable_cores": cores, "machine": platform.machine(), "python": platform.python_version(),
        "mlp_version": mlp.__version__, "threadpools": threadpoolctl.threadpool_info(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "summary": rows, "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
