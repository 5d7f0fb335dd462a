"""How many threads a fit runs on: BLAS's and numba's, a fixed count or the faster one by timing ("auto").

A training step spends its time in BLAS products (``kernels.cpu_blas``; NumPy's
``@`` on the "numpy" backend). More BLAS threads are faster on a quiet machine,
and far slower on a busy one: a multithreaded product waits at every step for
its slowest thread, and a thread whose core another process holds runs only
when the scheduler lets it. With two BLAS threads on two cores, one of them
held by another process, ``mlp train`` took 5.9 s and 18.9 s per epoch; with
one thread 1.0 s and 0.9 s (0.7 - 1.2 s on the quiet machine). Hence the
setting (``Trainer(..., threads=...)``, the estimators' ``threads``):

==========  ====================================================================
setting     what a fit does
==========  ====================================================================
``"auto"``  times a few training steps with 1 thread and with every usable core
            before the first epoch and keeps the faster count; times again
            whenever an epoch takes more than ``SLOWDOWN`` times the previous
            one's seconds. "Every usable core" is capped by a BLAS limit
            already in force (``OPENBLAS_NUM_THREADS``, an enclosing
            ``limited_threads``): "auto" never exceeds what the caller allowed.
            No timing when that leaves one thread, or on "cuda" (the GPU does
            the products; every usable core).
int n >= 1  n threads, never timed: the setting that reproduces a fit to the bit
None        leaves the thread counts as they are: the caller's own limits (a
            search trial's, see ``mlp.search``) apply
==========  ====================================================================

BLAS's thread count changes the order of its sums and so the last bits of
every product: "auto" may choose differently from one run to the next (or
switch within a run), so only an int setting makes runs bit-reproducible.
Timing never changes what is trained: the steps are timed on a throwaway copy
of the network and of its engine (``training_probe``), so with "auto" the
parameters are the same function of the data as with a fixed count, up to
those last bits.

What this module holds: ``limited_threads`` (BLAS and numba on at most n
threads while a block runs), ``usable_cores``, ``check_threads`` (a setting,
checked) and ``ThreadChooser`` (the count per epoch: timing and re-deciding).
"""
import contextlib
import os
import statistics
import time

import numba
import numpy as np

from . import checks
from .defaults import THREADS

#: The setting of ``mlp.Trainer``, ``mlp.fit``, ``mlp train`` and the estimators when none is given.
DEFAULT_THREADS = THREADS

#: Timed steps per candidate count in one probe, taken in turns (1, n, n, 1, 1, n ...) so that a
#: change of load during the probe affects every count alike; the median of each count is compared
#: (under load a multithreaded step is now fast, now many times slower: one step would be a lottery).
#: A step of 784-256-10 at batch 128 takes about a millisecond: a probe, about ten of them.
ROUNDS = 5

#: An epoch taking more than SLOWDOWN times the previous epoch's seconds makes "auto" time again.
SLOWDOWN = 1.5

#: Epochs shorter than this never make "auto" time again: their slowdowns are noise, cheaper to bear
#: than a probe.
MIN_EPOCH_SECONDS = 0.05

_THREADPOOLCTL_HINT = "pip install 'threadpoolctl>=3.1' (a dependency of numba-mlp)"


def usable_cores():
    """The CPU cores this process may run on (its affinity mask where the platform has one).

    Returns
    -------
    int >= 1
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return os.cpu_count() or 1


def check_threads(threads):
    """``threads`` checked: "auto", an int >= 1, or None.

    Returns
    -------
    "auto", int or None

    Raises
    ------
    TypeError, ValueError
        Naming ``threads`` and what it accepts.
    """
    if threads is None or (isinstance(threads, str) and threads == "auto"):
        return threads
    if isinstance(threads, str):
        raise ValueError(f'threads must be "auto", an int >= 1 or None; got {threads!r}')
    if not checks.is_int(threads):
        raise TypeError(f'threads must be "auto", an int >= 1 or None; got {threads!r}')
    if threads < 1:
        raise ValueError(f'threads must be "auto", an int >= 1 or None; got {threads!r}')
    return int(threads)


def _controller():
    """A threadpoolctl controller of the BLAS and OpenMP libraries loaded now (and of SciPy's BLAS)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        raise ImportError(f"limiting BLAS's threads needs threadpoolctl: {_THREADPOOLCTL_HINT}") from None
    # The cpu kernels call NumPy's OpenBLAS or SciPy's (kernels.cpu_blas), SciPy's loaded on first use;
    # threadpoolctl limits only libraries already loaded, so load it now or the first fit runs unlimited.
    import scipy.linalg.cython_blas  # noqa: F401
    # numba's threading layer starts (loading OpenMP, with the "omp" layer) when first asked about: ask now.
    numba.get_num_threads()
    return ThreadpoolController()


def _blas_threads(controller):
    """The most threads any loaded BLAS may use now (1 when none is loaded)."""
    return max([info["num_threads"] for info in controller.info() if info["user_api"] == "blas"] or [1])


def _set_numba_threads(count):
    """numba's parallel loops on ``count`` threads, or on all it started with when that is fewer."""
    numba.set_num_threads(max(1, min(count, numba.config.NUMBA_NUM_THREADS)))


@contextlib.contextmanager
def _limits(controller, blas_threads, numba_threads):
    """BLAS (and OpenMP) on at most ``blas_threads`` threads and numba's parallel loops on
    ``numba_threads`` while the block runs."""
    previous = numba.get_num_threads()
    _set_numba_threads(numba_threads)
    try:
        with controller.limit(limits=blas_threads):
            yield
    finally:
        numba.set_num_threads(previous)


@contextlib.contextmanager
def limited_threads(threads, numba_threads=1):
    """BLAS on at most ``threads`` threads and numba's own parallel loops on ``numba_threads``, while the block runs.

    Parameters
    ----------
    threads : int >= 1 or None
        BLAS's (and OpenMP's) limit; None leaves BLAS and numba as they are.
    numba_threads : int >= 1
        numba's ``prange`` loops (not on the default training path), at most
        the threads numba started with. 1 by default: a search runs several
        trials side by side, each on its share of the cores.

    BLAS's thread count changes the order of floating-point sums, so a fit
    reproduces to the bit only with the same count.
    """
    if threads is None:
        yield
        return
    with _limits(_controller(), threads, numba_threads):
        yield


def training_probe(net, config, X, y, batch, l2, l1, keep, sample_weight=None):
    """One minibatch step of a fit, on a throwaway copy of ``net`` and of its engine: what "auto" times.

    Parameters
    ----------
    net : mlp.MLP
        Copied (parameters included); the copy is trained, never ``net``.
    config, X, y, batch, l2, l1, keep, sample_weight
        What the fit gives ``mlp.engines.make_engine``; the step uses the
        first ``batch`` rows of ``X`` (n, n_features) and ``y``.

    Returns
    -------
    callable() -> None
        One step of the fit's engine (the same compiled code: the first call
        compiles or loads it, as the fit's first epoch would) at
        ``config.learning_rate``.
    """
    from .engines import make_engine  # the engines sit above the kernels; loaded when a fit asks for timing

    copy = net.to_backend(net.backend)
    weights = None if sample_weight is None else sample_weight[:batch]
    engine = make_engine(copy, config, X[:batch], y[:batch], batch, l2, l1, keep, weights)
    order = np.arange(batch, dtype=np.int64)

    def step():
        # The copy drifts by a few steps at the real rate: a rate of 0 would let BLAS skip the
        # weight-gradient product (alpha = 0) and time less than a real step.
        with np.errstate(over="ignore", invalid="ignore"):
            engine.run_epoch(order, config.learning_rate, 0)

    return step


class ThreadChooser:
    """The thread count of each epoch of one fit: fixed, or chosen by timing and re-chosen on a slowdown.

    Use it as a context manager around the fit: entering decides the count
    (timing first, for "auto") and applies it, ``epoch_done`` after each
    epoch may time again and apply a new count, leaving restores the counts
    found on entering.

    Parameters
    ----------
    threads : "auto", int >= 1 or None
        The setting (see the module docstring); checked here.
    probe : callable() -> None, or None
        One training step (``training_probe``); None: never time ("auto"
        then uses every usable core, as on "cuda").
    cores : int or None
        Usable cores; None: ``usable_cores()``.
    measure : callable(count) -> float, or None
        Seconds of one step on ``count`` threads; None: ``probe`` timed under
        that limit. Tests inject fake timings here.
    count, previous_seconds : int or None
        A decision already taken for this model (an estimator's earlier
        ``partial_fit``): start from ``count`` without timing, compare the
        next epoch with ``previous_seconds``.

    Attributes
    ----------
    setting : "auto", int or None
    count : int or None
        The count the next epoch runs with (None before entering).
    counts : list of int
        The count of each finished epoch, in order.
    probes : list of dict
        One per timing: ``{"after_epochs": epochs of this fit run before it, "seconds": {str(count): median
        seconds of a step}, "chosen": count}``.
    """

    def __init__(self, threads, probe=None, *, cores=None, measure=None, count=None, previous_seconds=None):
        self.setting = check_threads(threads)
        cores = usable_cores() if cores is None else cores
        self.candidates = sorted({1, cores})
        can_time = probe is not None or measure is not None
        self.timed = self.setting == "auto" and len(self.candidates) > 1 and can_time
        self.probe = probe
        self.measure = measure or self._time_step
        self.count = count
        self.previous_seconds = previous_seconds
        self.counts = []
        self.probes = []
        self._controller = None
        self._applied = None
        self._numba_threads = None

    @classmethod
    def for_net(cls, threads, net, make_probe, **decided):
        """The chooser of a fit of ``net``: "auto" times the steps ``make_probe()`` returns, except on "cuda".

        Parameters
        ----------
        threads : "auto", int >= 1 or None
        net : mlp.MLP
            The network being fitted (its backend).
        make_probe : callable() -> (callable() -> None)
            Makes the step to time (``training_probe``, or a loss and gradient
            of the real network, which changes no parameter); called only when
            "auto" will time: not on "cuda", not with one usable core (or a
            BLAS limit of 1 in force).
        **decided : ``count`` and ``previous_seconds``, as ``ThreadChooser`` takes them.
        """
        setting = check_threads(threads)
        if setting != "auto":
            return cls(setting, None, **decided)
        controller = _controller()
        cores = min(usable_cores(), _blas_threads(controller))  # never more than the caller allows
        will_time = net.backend != "cuda" and cores > 1
        chooser = cls(setting, make_probe() if will_time else None, cores=cores, **decided)
        chooser._controller = controller  # looked up once per fit (a millisecond): entering reuses it
        return chooser

    # ------------------------------------------------------------ the block
    def __enter__(self):
        if self._controller is None:
            self._controller = _controller()
        if self.setting is None:
            self.count = _blas_threads(self._controller)
            return self
        self._numba_threads = numba.get_num_threads()
        if self.count is None and self.timed:
            self._decide()
        elif self.count is None:
            # untimed "auto": every usable core (1 where there is one), as BLAS would use anyway
            self.count = self.candidates[-1] if self.setting == "auto" else self.setting
        self._apply(self.count)
        return self

    def __exit__(self, *exc_info):
        if self._applied is not None:
            self._applied.restore_original_limits()
            self._applied = None
            numba.set_num_threads(self._numba_threads)
        return False

    def epoch_done(self, seconds):
        """Record an epoch of ``seconds`` run with ``count``; time again and apply the faster count when it
        took more than ``SLOWDOWN`` times the previous epoch (and at least ``MIN_EPOCH_SECONDS``)."""
        self.counts.append(self.count)
        slowed = (self.previous_seconds is not None and seconds >= MIN_EPOCH_SECONDS
                  and seconds > SLOWDOWN * self.previous_seconds)
        self.previous_seconds = seconds
        if self.timed and slowed:
            self._decide()
            self._apply(self.count)

    def summary(self):
        """What the fit's metadata records: ``{"setting", "counts" (each count used, in order of first use),
        "probes"}``; JSON-serialisable."""
        return {"setting": self.setting, "counts": list(dict.fromkeys(self.counts)), "probes": list(self.probes)}

    # ------------------------------------------------------------ timing
    def _decide(self):
        """Time a step at each candidate count in turns; keep the fastest median (fewer threads on a tie)."""
        if self.probe is not None:
            self.probe()  # untimed: compiles or loads the step, and touches its buffers
        seconds = {c: [] for c in self.candidates}
        for r in range(ROUNDS):
            for c in (self.candidates if r % 2 == 0 else self.candidates[::-1]):
                seconds[c].append(self.measure(c))
        medians = {c: statistics.median(s) for c, s in seconds.items()}
        self.count = min(self.candidates, key=lambda c: (medians[c], c))
        self.probes.append({"after_epochs": len(self.counts), "seconds": {str(c): m for c, m in medians.items()},
                            "chosen": self.count})

    def _time_step(self, count):
        with _limits(self._controller, count, count):
            start = time.perf_counter()
            self.probe()
            return time.perf_counter() - start

    def _apply(self, count):
        """Limit BLAS and numba to ``count`` threads until the block ends (or the next ``_apply``)."""
        if self._applied is not None:
            self._applied.restore_original_limits()
        # ThreadpoolController.limit applies the limit when called; restore_original_limits undoes it
        self._applied = self._controller.limit(limits=count)
        _set_numba_threads(count)
