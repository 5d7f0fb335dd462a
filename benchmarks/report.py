"""Write benchmarks/RESULTS.md and benchmarks/results.png from a pytest-benchmark JSON file.

    python benchmarks/report.py [benchmarks/results.json] [--markdown PATH] [--png PATH]

Every number is the median of the benchmark's rounds. Speed-ups are "peer
time / this time", so above 1 means faster than the peer; the GEMM-floor ratio
is "this time / floor time", at least 1 in principle. The benchmarks record
what each one is (kernel, variant, shape, FLOPs, role) in ``extra_info``; this
script only reads that, never the test names.
"""
import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple, Optional

from cases import FUSED_ELEMENTWISE, FUSED_TARGET_BATCH, FUSED_TARGET_NET, FUSED_TARGET_SPEEDUP

HERE = Path(__file__).resolve().parent
HOST_BACKENDS = ("numpy", "cpu")
# The targets for the cpu backend's epoch of 784-H-10 (no dropout, plain SGD unless said).
TARGET_BATCH = 64  # of the interleaved run (dropout) and of the fallbacks when a JSON has no sweep
FLOOR_MAX_RATIO = 1.15
LARGER_BATCH_MAX_RATIO = 1.0  # "never slower at a larger batch": epoch at the larger ÷ at the smaller
PEER_HIDDEN, PEER_BATCHES = 256, (64, 512)  # where the sweep also runs PyTorch, the numpy backend and Adam
TORCH_MIN_SPEEDUPS = {64: 2.5, 512: 1.5}  # PyTorch CPU ÷ cpu, by batch (784-256-10)
NUMPY_MIN_SPEEDUP = 1.5  # numpy backend ÷ cpu, at each of PEER_BATCHES
TORCH_DROPOUT_MIN_SPEEDUP = 4.0
PER_BATCH_MIN_SPEEDUP = 1.0  # no-dropout epoch ÷ per_batch dropout epoch: must be above it, i.e. faster
ADAM_MAX_RATIO = 1.1  # Adam epoch ÷ SGD epoch
# MLPClassifier.fit ÷ MLP + Trainer.fit at the same shape: "no slower path for estimator users" is met
# within this much (timing noise between two calls doing the same work).
ESTIMATOR_MAX_RATIO = 1.05
JIT_MAX_SECONDS = {"cold": 10.0, "cached": 1.0}  # the first ``mlp train``'s JIT, by numba cache
CPU, NUMPY, TORCH, ESTIMATOR, FLOOR = "numba-mlp cpu", "numba-mlp numpy", "PyTorch", "mlp.MLPClassifier", "GEMM floor"
LOOP = "numba-mlp cpu epoch loop"  # bench_sweep.py's name for the cpu fit's epoch as its History clocks it
BUSY_WARNING = 0.05
AMD_FAMILIES = {"23": "Zen / Zen 2", "25": "Zen 3 / Zen 4", "26": "Zen 5"}


# ------------------------------------------------------------------ formatting
def fmt_time(seconds):
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            return f"{seconds / scale:.3g} {unit}"


def fmt_seconds(value):
    return "—" if value is None else f"{value:.3f}"


def fmt_ratio(value):
    return "—" if value is None else f"{value:.2f}×"


def fmt_number(value):
    """Three significant digits, never in exponent notation."""
    if value is None:
        return "—"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def ratio(numerator, denominator):
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------ the results
class Results:
    """The benchmarks of one run, by role, with the medians the report compares."""

    def __init__(self, data):
        self.data = data
        self.machine = data.get("machine_info", {})
        self.by_role = defaultdict(list)
        for bench in data.get("benchmarks", []):
            if bench.get("stats") and "role" in bench.get("extra_info", {}):
                self.by_role[bench["extra_info"]["role"]].append(bench)
        if not self.by_role:
            raise SystemExit("no timed benchmarks in the JSON (was it written under --benchmark-disable?)")

    @staticmethod
    def median(bench):
        return bench["stats"]["median"]

    # -------------------------------------------------------------- sgemm
    def sgemm_rates(self):
        """[(variant, GFLOP/s)], fastest first."""
        rates = [(b["extra_info"]["variant"], b["extra_info"]["flops"] / self.median(b) / 1e9)
                 for b in self.by_role["sgemm"]]
        return sorted(rates, key=lambda item: -item[1])

    def sgemm_peak(self):
        rates = self.sgemm_rates()
        return rates[0] if rates else (None, None)

    # -------------------------------------------------------------- kernels
    def kernel_groups(self):
        """{kernel: {group: {variant: benchmark}}}, in the order the suite ran them."""
        groups = defaultdict(lambda: defaultdict(dict))
        for bench in self.by_role["kernel"]:
            info = bench["extra_info"]
            groups[info["kernel"]][bench["group"]][info["variant"]] = bench
        return groups

    # -------------------------------------------------------------- epochs
    def epochs(self):
        """{group: [benchmark]} of the training-epoch benchmarks."""
        groups = defaultdict(list)
        for bench in self.by_role["epoch"]:
            groups[bench["group"]].append(bench)
        return groups

    def epoch_time(self, implementation, batch, dropout):
        for bench in self.by_role["epoch"]:
            info = bench["extra_info"]
            if info["implementation"] == implementation and info["batch"] == batch and info["dropout"] == dropout:
                return self.median(bench)
        return None

    def interleaved(self, batch):
        """{(implementation, dropout): median seconds} of the round-robin target run at ``batch``, or {}."""
        for bench in self.by_role["epoch_interleaved"]:
            if bench["extra_info"]["batch"] == batch:
                return {(e["implementation"], e["dropout"]): e["median"] for e in bench["extra_info"]["epochs"]}
        return {}

    def floor_epoch(self, backend, batch):
        """Seconds of an epoch of nothing but the five products: the step time times the steps.

        A host backend is held to the faster of the host BLAS paths; another
        backend (a GPU) to its own products."""
        candidates = []
        for bench in self.by_role["gemm_floor"]:
            info = bench["extra_info"]
            same_device = info["backend"] in HOST_BACKENDS if backend in HOST_BACKENDS else info["backend"] == backend
            if info["batch"] == batch and same_device:
                candidates.append(self.median(bench) * info["steps_per_epoch"])
        return min(candidates, default=None)

    def first_train_jit(self, cache):
        """The JIT seconds of the first ``mlp train`` with a "cold" or "cached" numba cache (bench_compile.py)."""
        for bench in self.by_role["compile"]:
            info = bench["extra_info"]
            if info.get("probe") == "train" and info["cache"] == cache:
                return info.get("jit_seconds")
        return None

    # -------------------------------------------------------------- the sweep
    def sweep_rows(self):
        """[SweepRow] of the epoch sweep (bench_sweep.py), by hidden width then batch; [] without one."""
        rows = []
        for bench in self.by_role["epoch_sweep"]:
            for shape in bench["extra_info"]["shapes"]:
                epochs = {(e["implementation"], e["optimizer"]): e for e in shape["epochs"]}

                def median(implementation, optimizer="sgd", with_model=False):
                    entry = epochs.get((implementation, optimizer))
                    return None if entry is None else entry["median_with_model" if with_model else "median"]

                rows.append(SweepRow(
                    shape["net"], shape["hidden"], shape["batch"], shape["rows"], floor=median(FLOOR, None),
                    cpu=median(CPU), cpu_loop=median(LOOP), cpu_with_model=median(CPU, with_model=True),
                    estimator_with_model=median(ESTIMATOR, with_model=True), adam=median(CPU, "adam"),
                    numpy=median(NUMPY), torch=median(TORCH)))
        return sorted(rows, key=lambda row: (row.hidden, row.batch))


class SweepRow(NamedTuple):
    """One shape of the sweep: median seconds per contender (None where it did not run there).

    ``*_with_model`` include building the model: an estimator's fit builds its network."""
    net: str
    hidden: int
    batch: int
    rows: int
    floor: Optional[float]
    cpu: Optional[float]
    cpu_loop: Optional[float]  # the epoch as the History clocks it: the fit's set-up and input checks left out
    cpu_with_model: Optional[float]
    estimator_with_model: Optional[float]
    adam: Optional[float]
    numpy: Optional[float]
    torch: Optional[float]

    @property
    def epoch(self):
        """The cpu SGD epoch: its loop where recorded, else the whole one-epoch fit."""
        return self.cpu if self.cpu_loop is None else self.cpu_loop

    @property
    def floor_ratio(self):
        return ratio(self.epoch, self.floor)

    @property
    def estimator_ratio(self):
        return ratio(self.estimator_with_model, self.cpu_with_model)

    @property
    def adam_ratio(self):
        return ratio(self.adam, self.cpu)

    @property
    def numpy_speedup(self):
        return ratio(self.numpy, self.cpu)

    @property
    def torch_speedup(self):
        return ratio(self.torch, self.cpu)

    @property
    def where(self):
        return f"{self.net} n={self.batch}"


# ------------------------------------------------------------------ sections
def machine_section(results):
    info = results.machine
    bench = info.get("mlp_bench", {})
    cpu = bench.get("cpu", {})
    family = cpu.get("family")
    microarchitecture = AMD_FAMILIES.get(family) if "AMD" in cpu.get("model", "") else None
    cpu_line = (f"{cpu.get('model', info.get('cpu', {}).get('brand_raw', '?'))}, family {family} model "
                f"{cpu.get('model_number')}" + (f" ({microarchitecture})" if microarchitecture else "")
                + f", {bench.get('cores_usable', '?')} usable cores, SIMD {', '.join(cpu.get('simd', []))}")
    threads = bench.get("threads", {})
    busy = bench.get("others_cpu_share", {})
    busy_line = ("- Other processes' share of the CPUs while this one slept 1 s: "
                 + ", ".join(f"{when} the run {share:.0%}" for when, share in busy.items() if share is not None))
    if any(share is not None and share > BUSY_WARNING for share in busy.values()):
        busy_line += (f" — **above {BUSY_WARNING:.0%}: the machine was not quiet; BLAS-bound timings with "
                      f"{threads.get('setting')} threads are unreliable (a 2-thread BLAS call stalls while "
                      "another process holds a core). Rerun when it is idle.**")
    lines = [
        f"- Run: {results.data.get('datetime', '?')} (pytest-benchmark {results.data.get('version', '?')})",
        f"- CPU: {cpu_line}",
        f"- Threads: {threads.get('setting')} for every pool: BLAS and OpenMP via threadpoolctl "
        f"`threadpool_limits({threads.get('blas_and_openmp_limit')})`, `numba.set_num_threads"
        f"({threads.get('numba')})` (threading layer: {threads.get('numba_threading_layer')}), "
        f"`torch.set_num_threads({threads.get('torch')})`. The pools take turns; none runs beside another.",
    ]
    for pool in bench.get("threadpools", []):
        if pool.get("user_api") == "blas":
            lines.append(f"- BLAS: {pool.get('internal_api')} {pool.get('version')}, kernel "
                         f"`{pool.get('architecture')}`, {pool.get('threading_layer')}, "
                         f"{pool.get('num_threads')} threads — `{Path(pool.get('filepath', '')).name}`")
    torch_build = bench.get("torch_build", {})
    if torch_build:
        lines.append(f"- PyTorch's BLAS: {torch_build.get('math_library')} (CPU capability "
                     f"{torch_build.get('cpu_capability')})")
    if busy:
        lines.append(busy_line)
    environment = {k: v for k, v in bench.get("environment", {}).items() if v is not None}
    if environment:
        lines.append("- Environment: " + ", ".join(f"`{k}={v}`" for k, v in environment.items()))
    versions = bench.get("versions", {})
    if versions:
        lines.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines.append(f"- Backends timed: {', '.join(bench.get('backends', []))}")
    return "## Machine\n\n" + "\n".join(lines)


def _percent(fraction):
    return f"{fraction * 100:.1f}%" if fraction < 0.1 else f"{fraction * 100:.0f}%"


def _verdict_at_least(measured, target):
    if measured is None:
        return "not measured"
    if measured >= target:
        return f"**met** ({measured:.3f}× ≥ {target}×)"
    return f"**missed** by {_percent(1 - measured / target)} ({measured:.3f}× < {target}×)"


def _verdict_above(measured, target):
    """Met only when strictly above ``target`` ("faster than": a tie is not)."""
    if measured is None:
        return "not measured"
    if measured > target:
        return f"**met** ({measured:.3f}× > {target}×)"
    return f"**missed** ({measured:.3f}× ≤ {target}×)"


def _verdict_at_most(measured, target, unit="×"):
    if measured is None:
        return "not measured"
    if measured <= target:
        return f"**met** ({measured:.3f}{unit} ≤ {target}{unit})"
    return f"**missed** by {_percent(measured / target - 1)} ({measured:.3f}{unit} > {target}{unit})"


def _worst(rows, value):
    """(largest value, its row) over the sweep rows where ``value(row)`` was measured, or (None, None)."""
    measured = [(value(row), row) for row in rows if value(row) is not None]
    return max(measured, key=lambda item: item[0], default=(None, None))


def _naming(verdict, where):
    return verdict if where is None else f"{verdict}; worst: {where}"


def _larger_batch_worst(sweep):
    """(epoch at the larger batch ÷ at the smaller, which) for the pair of one width where a larger batch lost most.

    The epoch is its loop where recorded (``SweepRow.epoch``), as in the floor ratio."""
    pairs = [(ratio(big.epoch, small.epoch), f"{small.net} n={small.batch} {fmt_seconds(small.epoch)} s → "
                                             f"n={big.batch} {fmt_seconds(big.epoch)} s")
             for small in sweep for big in sweep if small.hidden == big.hidden and small.batch < big.batch]
    return max(((value, where) for value, where in pairs if value is not None), default=(None, None))


def _epoch_ratio(results, numerator, denominator, batch):
    """(numerator's epoch ÷ denominator's at 784-256-10 and ``batch``, its source), both (implementation, dropout).

    From the first source that has both, best first: the sweep (no dropout), the interleaved run (the
    contenders saw the same load), the separate epoch benchmarks; (None, "—") when none has."""
    row = next((r for r in results.sweep_rows() if r.hidden == PEER_HIDDEN and r.batch == batch), None)
    sweep = {} if row is None else {(CPU, "none"): row.cpu, (NUMPY, "none"): row.numpy, (TORCH, "none"): row.torch}
    interleaved = results.interleaved(batch)
    sources = (("sweep", sweep.get), ("interleaved run", interleaved.get),
               ("separate benchmarks", lambda key: results.epoch_time(key[0], batch, key[1])))
    for name, lookup in sources:
        value = ratio(lookup(numerator), lookup(denominator))
        if value is not None:
            return value, f"{name}, n={batch}"
    return None, "—"


def _floor_row(results, sweep):
    if sweep:
        worst, row = _worst(sweep, lambda r: r.floor_ratio)
        widths = " and ".join(str(hidden) for hidden in dict.fromkeys(r.hidden for r in sweep))
        return (f"cpu epoch within {FLOOR_MAX_RATIO}× of its shape's GEMM floor, hidden {widths}, every batch "
                f"{min(r.batch for r in sweep)}–{max(r.batch for r in sweep)}",
                _naming(_verdict_at_most(worst, FLOOR_MAX_RATIO), row and row.where), "sweep")
    b = TARGET_BATCH
    interleaved = results.interleaved(b)
    if interleaved:
        measured, source = ratio(interleaved.get((CPU, "none")), interleaved.get((FLOOR, "none"))), "interleaved run"
    else:
        measured = ratio(results.epoch_time(CPU, b, "none"), results.floor_epoch("cpu", b))
        source = "separate benchmarks"
    return (f"cpu epoch 784-256-10 within {FLOOR_MAX_RATIO}× of the GEMM floor at batch {b} (no sweep in this run)",
            _verdict_at_most(measured, FLOOR_MAX_RATIO), f"{source}, n={b}")


def target_rows(results):
    """[(target, verdict, source)] for every target of the issue, in its order.

    The targets over shapes come from the sweep (bench_sweep.py) and name the
    worst shape; the dropout targets from the interleaved run at batch 64; a
    ratio neither has falls back to the separate epoch benchmarks."""
    sweep = results.sweep_rows()
    rows = [_floor_row(results, sweep)]
    worst, where = _larger_batch_worst(sweep)
    rows.append(("cpu epoch never slower at a larger batch (larger ÷ smaller, same width, every pair)",
                 _naming(_verdict_at_most(worst, LARGER_BATCH_MAX_RATIO), where), "sweep"))
    for batch, target in TORCH_MIN_SPEEDUPS.items():
        measured, source = _epoch_ratio(results, (TORCH, "none"), (CPU, "none"), batch)
        rows.append((f"cpu epoch ≥ {target}× faster than PyTorch CPU at batch {batch}",
                     _verdict_at_least(measured, target), source))
    numpy = [_epoch_ratio(results, (NUMPY, "none"), (CPU, "none"), batch) for batch in PEER_BATCHES]
    measured, source = min((m for m in numpy if m[0] is not None), default=(None, "—"))
    rows.append((f"cpu epoch ≥ {NUMPY_MIN_SPEEDUP}× faster than the numpy backend (the lesser of batch "
                 f"{' and '.join(map(str, PEER_BATCHES))})", _verdict_at_least(measured, NUMPY_MIN_SPEEDUP), source))
    for mode in ("per_sample", "per_batch"):
        measured, source = _epoch_ratio(results, (TORCH, "torch.nn.Dropout"), (CPU, mode), TARGET_BATCH)
        rows.append((f"cpu epoch with dropout 0.8/0.5 ({mode}) ≥ {TORCH_DROPOUT_MIN_SPEEDUP}× faster than "
                     "PyTorch with nn.Dropout", _verdict_at_least(measured, TORCH_DROPOUT_MIN_SPEEDUP), source))
    measured, source = _epoch_ratio(results, (CPU, "none"), (CPU, "per_batch"), TARGET_BATCH)
    rows.append(("cpu epoch with per_batch dropout 0.8/0.5 faster than without dropout (without ÷ with)",
                 _verdict_above(measured, PER_BATCH_MIN_SPEEDUP), source))
    worst, row = _worst(sweep, lambda r: r.adam_ratio)
    rows.append((f"cpu epoch with Adam ≤ {ADAM_MAX_RATIO}× the SGD epoch (784-256-10)",
                 _naming(_verdict_at_most(worst, ADAM_MAX_RATIO), row and row.where), "sweep"))
    worst, row = _worst(sweep, lambda r: r.estimator_ratio)
    rows.append((f"`mlp.MLPClassifier.fit` on float32 no slower than `MLP` + `Trainer.fit` at the same shape "
                 f"(estimator ÷ Trainer, build + one epoch; met within {ESTIMATOR_MAX_RATIO}×: timing noise)",
                 _naming(_verdict_at_most(worst, ESTIMATOR_MAX_RATIO), row and row.where), "sweep"))
    for cache, limit in JIT_MAX_SECONDS.items():
        jit = results.first_train_jit(cache)
        rows.append((f"the first `mlp train` ({cache} numba cache): JIT ≤ {limit:g} s",
                     _verdict_at_most(jit, limit, unit=" s"),
                     "jit probe" if jit is not None else "—"))
    for kernel, group, variants in fused_target_cases(results):
        speedup = ratio(results.median(variants["numpy"]), results.median(variants["cpu"]))
        rows.append((f"`{kernel}` ≥ {FUSED_TARGET_SPEEDUP:g}× faster than NumPy: {group}",
                     _verdict_at_least(speedup, FUSED_TARGET_SPEEDUP), "kernel tables"))
    return rows


def fused_target_cases(results):
    """The fused kernels at the target's shapes: batch 128 of 784-256-10, and its weight shapes for
    the parameter kernels (which do not depend on the batch)."""
    found = []
    for kernel, groups in results.kernel_groups().items():
        if kernel not in FUSED_ELEMENTWISE:
            continue
        for group, variants in groups.items():
            info = next(iter(variants.values()))["extra_info"]
            if (info["net"] == FUSED_TARGET_NET and info["batch"] in (FUSED_TARGET_BATCH, None)
                    and "numpy" in variants and "cpu" in variants):
                found.append((kernel, group, variants))
    return found


def targets_section(results):
    return ("## Targets\n\nEach epoch target's source: the sweep (below: every batch size and width, "
            "no dropout), the interleaved run at batch 64 (dropout), else the separate epoch benchmarks. "
            "A target over several shapes is judged on its worst shape, named.\n\n"
            + table(("target", "result", "from"), target_rows(results)))


def interleaved_section(results):
    out = []
    for bench in results.by_role["epoch_interleaved"]:
        info = bench["extra_info"]
        floor = next((e["median"] for e in info["epochs"] if e["implementation"] == "GEMM floor"), None)
        rows = [(e["implementation"], e["dropout"], fmt_seconds(e["median"]),
                 " ".join(f"{t:.3f}" for t in e["seconds"]), fmt_ratio(ratio(e["median"], floor)))
                for e in sorted(info["epochs"], key=lambda e: e["median"])]
        out.append(f"### Interleaved: {info['net']} n={info['batch']} ({info['rows']} rows, one epoch of each "
                   "per round, rotating order)\n\n"
                   + table(("implementation", "dropout", "median s", "rounds s", "÷ GEMM floor"), rows))
    return "\n\n".join(out)


def sweep_section(results):
    """The sweep's shapes: the cpu epoch beside its GEMM floor, the estimator path and, where they ran, its peers."""
    sweep = results.sweep_rows()
    if not sweep:
        return ""
    worst_floor, worst_estimator = (_worst(sweep, value)[1] for value in (lambda r: r.floor_ratio,
                                                                          lambda r: r.estimator_ratio))

    def marked(value, worst):
        return f"**{fmt_ratio(value)}**" if worst else fmt_ratio(value)

    rows = [(r.hidden, r.batch, r.rows, fmt_seconds(r.floor), fmt_seconds(r.cpu_loop), fmt_seconds(r.cpu),
             marked(r.floor_ratio, r is worst_floor), fmt_seconds(r.cpu_with_model),
             fmt_seconds(r.estimator_with_model), marked(r.estimator_ratio, r is worst_estimator),
             fmt_ratio(r.adam_ratio), fmt_ratio(r.numpy_speedup), fmt_ratio(r.torch_speedup)) for r in sweep]
    info = results.by_role["epoch_sweep"][0]["extra_info"]
    shares = info.get("others_cpu_share", [])
    busy = ("Other processes' share of the CPUs per round: "
            + ", ".join("?" if share is None else _percent(share) for share in shares) + ".")
    if any(share is not None and share > BUSY_WARNING for share in shares):
        busy += (f" **Above {BUSY_WARNING:.0%} in some rounds: a neighbour stalls 2-thread BLAS calls many times "
                 "over; compare a shape's rounds (results.json) before trusting its medians.**")
    return ("## Epoch sweep: 784-H-10 at every batch size (cpu, no dropout, plain SGD)\n\n"
            f"Medians of {info['rounds']} rounds; each round visits every shape and runs its contenders once each in "
            "rotating order, then an epoch's worth of floor steps. \"epoch s\" is the epoch as the fit's History "
            "clocks it (the minibatch loop), \"Trainer s\" the whole `Trainer.fit` on a built model (input checks "
            "and set-up included), \"÷ floor\" the epoch ÷ the GEMM floor (the median step of the five products "
            "on the cpu backend's matmul kernels, times rows ÷ batch). The estimator ratio compares "
            "`MLPClassifier(...).fit` with `MLP(...)` + `Trainer.fit`, building the network included in both. "
            "Adam ÷ SGD, numpy backend ÷ cpu and PyTorch ÷ cpu where they ran (hidden "
            f"{PEER_HIDDEN}). Bold: the worst shape. {busy if shares else ''}\n\n"
            + table(("hidden", "batch", "rows", "GEMM floor s", "epoch s", "Trainer s", "÷ floor", "Trainer build+fit s",
                     "estimator build+fit s", "estimator ÷ Trainer", "Adam ÷ SGD", "numpy ÷ cpu",
                     "PyTorch ÷ cpu"), rows))


def estimator_section(results):
    """scikit-learn's MLPClassifier beside mlp.MLPClassifier, per solver: seconds per epoch and test accuracy."""
    out = []
    for bench in results.by_role["estimator_interleaved"]:
        info = bench["extra_info"]
        fits = {(f["implementation"], f["solver"]): f for f in info["fits"]}
        rows = []
        for solver in dict.fromkeys(f["solver"] for f in info["fits"]):
            theirs, ours = fits.get(("scikit-learn", solver)), fits.get(("numba-mlp", solver))
            if theirs is None or ours is None:
                continue
            floor = info.get("gemm_floor_epoch")
            rows.append((solver, fmt_seconds(theirs["median_epoch"]), fmt_seconds(ours["median_epoch"]),
                         fmt_ratio(ratio(theirs["median_epoch"], ours["median_epoch"])),
                         fmt_ratio(ratio(theirs["median_epoch"], floor)), fmt_ratio(ratio(ours["median_epoch"], floor)),
                         f"{theirs['test_accuracy']:.4f}", f"{ours['test_accuracy']:.4f}"))
        hidden = ",".join(map(str, info["hidden"]))
        out.append(f"## MLPClassifier(hidden_layer_sizes=({hidden},)): scikit-learn vs numba-mlp\n\n"
                   f"{info['rows']} rows float32, scikit-learn's defaults, {info['epochs']} epochs per fit, the fits "
                   "interleaved (one of each per round, rotating order); seconds per epoch are the whole fit "
                   "÷ its epochs; the GEMM floor is the step's five products at batch 200 times the steps.\n\n"
                   + table(("solver", "scikit-learn s/epoch", "numba-mlp s/epoch", "speed-up",
                            "scikit-learn ÷ GEMM floor", "numba-mlp ÷ GEMM floor",
                            "scikit-learn test acc.", "numba-mlp test acc."), rows))
    return "\n\n".join(out)


def epoch_section(results):
    out = ["## Training epoch (784-256-10, float32, plain SGD)",
           "Seconds per epoch are the whole `fit` call (input checks included); \"loop\" is the epoch loop "
           "alone as the History clocks it. Speed-ups are peer ÷ this; the floor column is this ÷ GEMM floor "
           "(the five products of a step, alone, times the steps of an epoch; see below)."]
    for group, benches in results.epochs().items():
        rows = []
        any_info = benches[0]["extra_info"]
        batch = any_info["batch"]
        torch_time = next((results.median(b) for b in benches if b["extra_info"]["implementation"] == "PyTorch"), None)
        sklearn_time = next((results.median(b) for b in benches
                             if b["extra_info"]["implementation"] == "scikit-learn"), None)
        for bench in sorted(benches, key=results.median):
            info = bench["extra_info"]
            seconds = results.median(bench)
            numpy_time = (results.epoch_time("numba-mlp numpy", batch, info["dropout"])
                          if info["implementation"].startswith("numba-mlp") else None)
            backend = info.get("backend", "cpu")
            rows.append((info["implementation"], info["dropout"], fmt_seconds(seconds),
                         fmt_seconds(info.get("epoch_loop_seconds_median")),
                         fmt_ratio(ratio(torch_time, seconds)), fmt_ratio(ratio(sklearn_time, seconds)),
                         fmt_ratio(ratio(numpy_time, seconds)),
                         fmt_ratio(ratio(seconds, results.floor_epoch(backend, batch)))))
        out.append(f"### {group} ({any_info['rows']} rows)\n\n" + table(
            ("implementation", "dropout", "s/epoch", "loop s", "PyTorch ÷ this", "scikit-learn ÷ this",
             "numpy backend ÷ this", "this ÷ GEMM floor"), rows))
    floor_rows = []
    for bench in results.by_role["gemm_floor"]:
        info = bench["extra_info"]
        step = results.median(bench)
        floor_rows.append((info["implementation"], info["batch"], fmt_time(step), f"{info['steps_per_epoch']:.1f}",
                           fmt_seconds(step * info["steps_per_epoch"]), fmt_number(info["flops"] / step / 1e9)))
    if floor_rows:
        out.append("### GEMM floor\n\n" + table(
            ("BLAS path", "batch", "per step", "steps/epoch", "s/epoch", "GFLOP/s"), floor_rows))
    return "\n\n".join(out)


def sgemm_section(results):
    rows = [(variant, f"{rate:.1f}") for variant, rate in results.sgemm_rates()]
    return ("## sgemm 1024³ float32\n\nThe fastest of these is the \"% of sgemm\" yardstick below.\n\n"
            + table(("variant", "GFLOP/s"), rows))


def compile_section(results):
    rows = []
    for bench in results.by_role["compile"]:
        info = bench["extra_info"]
        probe = info.get("probe", "kernels")
        called = info.get("first_calls_seconds" if probe == "kernels" else "first_train_seconds")
        rows.append((probe, info["cache"], fmt_seconds(results.median(bench)), fmt_number(info.get("import_seconds")),
                     fmt_number(called), fmt_number(info.get("jit_seconds")), info.get("functions", "—")))
    return ("## JIT compilation (cpu backend, fresh process)\n\n"
            "Probe \"train\": the first `mlp train` (the main job's recipe, one epoch on digits: the same "
            "compiled code as on Fashion-MNIST), of which \"JIT s\" is numba compiling or loading from its "
            "cache; the rest is training, evaluating and writing the outputs. Probe \"kernels\": import the cpu "
            "backend and call every kernel once.\n\n"
            + table(("probe", "cache", "process s", "import s", "train or first calls s", "JIT s",
                     "functions called"), rows))


def kernel_section(results):
    peak_variant, peak = results.sgemm_peak()
    out = ["## Kernels",
           f"Median per call. ×numpy and ×PyTorch are their time ÷ this time; % of sgemm is against "
           f"{fmt_number(peak)} GFLOP/s ({peak_variant}, above). Elementwise kernels are memory-bound: "
           "their GFLOP/s is small by nature."]
    for kernel, groups in results.kernel_groups().items():
        rows = []
        for group, variants in groups.items():
            numpy_time = results.median(variants["numpy"]) if "numpy" in variants else None
            torch_time = results.median(variants["torch"]) if "torch" in variants else None
            for variant, bench in variants.items():
                seconds = results.median(bench)
                flops = bench["extra_info"]["flops"]
                gflops = None if flops is None else flops / seconds / 1e9
                rows.append((group.removeprefix(kernel + " "), variant, fmt_time(seconds),
                             fmt_ratio(ratio(numpy_time, seconds)) if variant != "numpy" else "",
                             fmt_ratio(ratio(torch_time, seconds)) if variant != "torch" else "",
                             fmt_number(gflops), fmt_number(None if gflops is None or not peak else
                                                            100 * gflops / peak)))
        out.append(f"### `{kernel}`\n\n" + table(
            ("shape (net, layer, batch)", "variant", "median", "×numpy", "×PyTorch", "GFLOP/s", "% of sgemm"),
            rows))
    return "\n\n".join(out)


# ------------------------------------------------------------------ chart
def write_chart(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epoch_groups = results.epochs()
    fused = fused_target_cases(results)
    bars = max(sum(len(b) + 1 for b in epoch_groups.values()), len(fused))
    fig, (ax_epoch, ax_fused, ax_sweep) = plt.subplots(1, 3, figsize=(19, max(4.0, 0.3 * bars)))
    labels, values, colours = [], [], []
    palette = {"numba-mlp cpu": "tab:blue", "numba-mlp numpy": "tab:orange", "PyTorch": "tab:red",
               "scikit-learn": "tab:green", "GEMM floor": "tab:gray"}
    for group, benches in epoch_groups.items():
        info = benches[0]["extra_info"]
        bars = [(f"{b['extra_info']['implementation']} {b['extra_info']['dropout']}", results.median(b),
                 b["extra_info"]["implementation"]) for b in sorted(benches, key=results.median)]
        floor = results.floor_epoch("cpu", info["batch"])
        if floor is not None:
            bars.append(("GEMM floor", floor, "GEMM floor"))
        for name, seconds, implementation in bars:
            labels.append(f"n={info['batch']} | {name}")
            values.append(seconds)
            colours.append(palette.get(implementation, "tab:purple"))
    ax_epoch.barh(range(len(values)), values, color=colours)
    ax_epoch.set_yticks(range(len(values)), labels, fontsize=7)
    ax_epoch.invert_yaxis()
    ax_epoch.set_xlabel("seconds per epoch (median)")
    ax_epoch.set_title("training epoch, 784-256-10, float32", fontsize=10)
    names, speedups = [], []
    for kernel, group, variants in fused:
        info = variants["cpu"]["extra_info"]
        names.append(f"{kernel} {info['where']} {info['shape'].split(',')[0]}")
        speedups.append(ratio(results.median(variants["numpy"]), results.median(variants["cpu"])))
    ax_fused.barh(range(len(speedups)), speedups, color="tab:blue")
    ax_fused.axvline(FUSED_TARGET_SPEEDUP, color="black", linestyle="--", label=f"target {FUSED_TARGET_SPEEDUP:g}×")
    ax_fused.set_yticks(range(len(speedups)), names, fontsize=7)
    ax_fused.invert_yaxis()
    ax_fused.set_xlabel("cpu backend speed-up over the NumPy expression")
    ax_fused.set_title(f"fused kernels, {FUSED_TARGET_NET} batch {FUSED_TARGET_BATCH}", fontsize=10)
    ax_fused.legend(loc="lower right")
    _plot_sweep(ax_sweep, results.sweep_rows())
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_sweep(ax, sweep):
    """cpu epoch ÷ GEMM floor and estimator ÷ Trainer against the batch size, one colour per hidden width."""
    for colour, hidden in zip(("tab:blue", "tab:purple", "tab:green"), dict.fromkeys(r.hidden for r in sweep)):
        rows = [r for r in sweep if r.hidden == hidden]
        for value, style, what in ((lambda r: r.floor_ratio, "-o", "cpu ÷ GEMM floor"),
                                   (lambda r: r.estimator_ratio, "--s", "estimator ÷ Trainer")):
            points = [(r.batch, value(r)) for r in rows if value(r) is not None]
            ax.plot([b for b, _ in points], [v for _, v in points], style, color=colour,
                    label=f"784-{hidden}-10 {what}")
    ax.axhline(FLOOR_MAX_RATIO, color="black", linestyle=":", label=f"floor target {FLOOR_MAX_RATIO}×")
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_xscale("log", base=2)
    batches = sorted({r.batch for r in sweep})
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.minorticks_off()
    ax.set_xlabel("batch size")
    ax.set_ylabel("ratio (median)")
    ax.set_title("epoch sweep, cpu, no dropout" if sweep else "epoch sweep: not in this run", fontsize=10)
    if sweep:
        ax.legend(fontsize=7)


# ------------------------------------------------------------------ main
def render(results, png_name):
    sections = (
        "# numba-mlp benchmark results",
        "Written by `benchmarks/report.py` from the pytest-benchmark JSON of `make bench`. "
        f"Chart: [{png_name}]({png_name}).",
        machine_section(results), targets_section(results), sweep_section(results), epoch_section(results),
        interleaved_section(results), estimator_section(results),
        sgemm_section(results), compile_section(results), kernel_section(results),
    )
    return "\n\n".join(section for section in sections if section) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="?", default=HERE / "results.json", type=Path)
    parser.add_argument("--markdown", default=HERE / "RESULTS.md", type=Path)
    parser.add_argument("--png", default=HERE / "results.png", type=Path)
    args = parser.parse_args(argv)
    results = Results(json.loads(args.json.read_text()))
    args.markdown.write_text(render(results, args.png.name))
    write_chart(results, args.png)
    print(f"wrote {args.markdown} and {args.png}")


if __name__ == "__main__":
    sys.exit(main())
