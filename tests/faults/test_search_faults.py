"""mlp.search under faults: killed workers and processes, two searches on one directory, hostile journals.

Every fault is real: Dask workers and search processes are SIGKILLed, a second
search runs while the first holds the directory, journals are crafted on disk.
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import psutil
import pytest

from mlp import search as S
from mlp.cli import main
from mlp.datasets import load_dataset
from mlp.search.lock import LOCK_NAME

# Tiny trials: digits (64 features), 8 hidden units, 1 epoch.
TINY = {"hidden": [8], "epochs": 1, "learning_rate": 0.1, "batch_size": 32}
# How long a worker (Dask or joblib) may take to start and run its first trial on a busy machine.
STARTUP_S = 60
# How long the joblib workers may outlive a SIGKILLed search (their watchdog polls every 0.25 s).
ORPHAN_S = 5


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def journal_keys(out_dir):
    """The key of every line of the journal, in order (duplicates kept: a trial run twice shows)."""
    return [json.loads(line)["key"] for line in (out_dir / S.JOURNAL_NAME).read_bytes().splitlines()]


def wait_until(condition, timeout, what):
    """Poll ``condition`` every 0.05 s; its first truthy value, or a test failure after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"{what}: not within {timeout} s")


# --------------------------------------------------------------------------- Dask (issue 15, item 1)
@pytest.fixture(scope="module")
def scheduler():
    """A scheduler in this process, without workers: each test starts its own ``dask worker`` processes."""
    import dask
    import dask.distributed as distributed

    # A round that scatters while the scheduler still lists a killed worker retries connecting to it until
    # this timeout (30 s by default): the search goes on after it, the tests need not wait that long.
    with dask.config.set({"distributed.comm.timeouts.connect": "3s"}), \
            distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                                     dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@contextlib.contextmanager
def dask_workers(address, log_dir):
    """Start ``dask worker --nthreads 1 --no-nanny`` processes with ``start()``; every one is killed at the end."""
    started = []

    def start():
        log = open(log_dir / f"worker-{len(started)}.log", "wb")
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--no-nanny", "--no-dashboard"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            if worker.poll() is None:
                worker.kill()
            worker.wait(timeout=STARTUP_S)


def test_dask_search_survives_losing_the_worker_that_holds_the_data(digits, tmp_path, scheduler):
    grid = {**TINY, "l2": [0.0, 1e-3], "keep_prob_hidden": [0.5, 1.0]}
    with dask_workers(scheduler, tmp_path) as start:
        first = start()
        replaced = []

        def kill_after_two(row):
            # The only worker, so the only copy of the scattered split: lost with it.
            if len(journal_keys(tmp_path)) == 2 and not replaced:
                os.kill(first.pid, signal.SIGKILL)
                replaced.append(start())

        result = S.search(digits, grid, scheduler=scheduler, out_dir=tmp_path, callback=kill_after_two,
                          worker_timeout=STARTUP_S)
        assert first.wait(timeout=STARTUP_S) == -signal.SIGKILL
    assert result.n_trained == 4 and len(result.trials) == 4
    # Two trials on the killed worker, two on its replacement; none ran twice (journalled once each).
    pids = [int(row["worker"].rsplit(":", 1)[1]) for row in result.trials]
    assert sorted(pids) == sorted([first.pid] * 2 + [replaced[0].pid] * 2)
    keys = journal_keys(tmp_path)
    assert sorted(keys) == sorted(row["key"] for row in result.trials)
    # The same results as one process with the workers' thread count.
    reference = S.search(digits, grid, threads_per_trial=1)
    assert [(r["key"], r["val_accuracy"], r["val_loss"]) for r in result.trials] == [
        (r["key"], r["val_accuracy"], r["val_loss"]) for r in reference.trials]


def test_cli_search_with_no_dask_worker_left_says_so_and_resumes(tmp_path, scheduler, capsys):
    out = tmp_path / "out"
    # Trials of a few tenths of a second: the others are still to run when the first is journalled.
    argv = ["search", "--dataset", "digits", "--hidden", "64", "--epochs", "20", "--l2", "0,1e-3",
            "--keep-prob-hidden", "0.5,1", "--out", str(out), "--quiet"]
    with dask_workers(scheduler, tmp_path) as start:
        only = start()

        def kill_after_one():
            # In a thread: the command line has no callback. The worker goes and none comes back.
            wait_until(lambda: (out / S.JOURNAL_NAME).exists() and journal_keys(out), STARTUP_S,
                       "the first trial journalled")
            os.kill(only.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_after_one, daemon=True)
        killer.start()
        started = time.monotonic()
        status = main(argv + ["--scheduler", scheduler, "--worker-timeout", "1.5"])
        seconds = time.monotonic() - started
        killer.join()
    err = capsys.readouterr().err
    done = len(journal_keys(out))
    assert status == 1, err
    assert f"no Dask worker left at {scheduler} for 1.5 s" in err
    assert f"{done} of 4 trials finished and journalled in {out / S.JOURNAL_NAME}" in err
    assert "run the same search again" in err and "Traceback" not in err
    assert 1 <= done < 4 and seconds < STARTUP_S
    # The same command without a cluster resumes: only the missing trials run.
    assert main(argv) == 0
    assert f"4 trials ({4 - done} trained now, {done} from the journal)" in capsys.readouterr().out


# --------------------------------------------------------------------------- the output directory (item 7)
def descendants_alive(processes):
    """Those of ``processes`` still running (a zombie, dead but not yet reaped by its new parent, is not)."""
    alive = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


def lock_holder(out_dir):
    """The pid that the lock file of ``out_dir`` names, None while it names none."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        return json.loads((out_dir / LOCK_NAME).read_bytes())["pid"]
    return None


def trial_workers(out_dir):
    """The pids (str) of the processes that ran the journalled trials."""
    if not (out_dir / S.JOURNAL_NAME).exists():
        return set()
    lines = (out_dir / S.JOURNAL_NAME).read_bytes().splitlines()
    return {json.loads(line)["worker"].rsplit(":", 1)[1] for line in lines}


def test_a_killed_search_leaves_no_worker_and_no_lock_and_a_running_one_refuses_a_second(digits, tmp_path, capsys):
    # Two joblib workers, sixteen trials of a few tenths of a second each: running when the search is killed.
    argv = ["search", "--dataset", "digits", "--hidden", "64", "--epochs", "40", "--l2", "0,1e-5,1e-4,1e-3",
            "--keep-prob-hidden", "0.5,1", "--lr", "0.05,0.1", "--jobs", "2", "--threads-per-trial", "1",
            "--out", str(tmp_path), "--quiet"]
    search = subprocess.Popen([sys.executable, "-m", "mlp", *argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    workers = []
    try:
        wait_until(lambda: lock_holder(tmp_path) == search.pid, STARTUP_S, "the search holding its directory")

        # A second search on the directory fails at once, naming the first; it runs no trial.
        ran = []
        with pytest.raises(S.DirectoryLocked, match=f"in use by another search \\(pid {search.pid} on ") as info:
            S.search(digits, TINY, out_dir=tmp_path, callback=ran.append)
        assert ran == [] and info.value.holder["pid"] == search.pid
        assert "search --dataset digits --hidden 64 --epochs 40" in info.value.holder["command"]
        assert main(["search", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path),
                     "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"in use by another search (pid {search.pid} on " in err and "Traceback" not in err

        # SIGKILL the search's own process only, once each worker has run a trial and is running the next:
        # its joblib workers must follow it.
        wait_until(lambda: len(trial_workers(tmp_path)) == 2, STARTUP_S, "a trial journalled by each worker")
        workers = psutil.Process(search.pid).children(recursive=True)
        os.kill(search.pid, signal.SIGKILL)
        killed = time.monotonic()
        assert search.wait(timeout=STARTUP_S) == -signal.SIGKILL
        assert trial_workers(tmp_path) <= {f"{w.pid}" for w in workers} and len(journal_keys(tmp_path)) < 16
        wait_until(lambda: not descendants_alive(workers), ORPHAN_S, "the workers of the killed search gone")
        print(f"{len(workers)} worker processes gone {time.monotonic() - killed:.2f} s after the SIGKILL")
    finally:  # whatever went wrong, no process of this test outlives it
        search.kill()
        search.wait()
        for process in descendants_alive(workers):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()

    # The kernel dropped the lock with its process: the next search takes the directory over, and the
    # killed search's journal is whole (no warning).
    done = journal_keys(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = S.search(digits, TINY, out_dir=tmp_path, plot=False)
    assert result.n_trained == 1 and journal_keys(tmp_path) == done + [result.best["key"]]
    # The lock file is gone with the search that ended normally; no temporary file is left.
    assert {p.name for p in tmp_path.iterdir()} == {S.JOURNAL_NAME, "trials.csv", "trials.json", "best_model.npz",
                                                    "best.json"}


# --------------------------------------------------------------------------- hostile journals and paths (item 7)
def test_unusable_journal_lines_warn_once_rerun_their_trials_and_are_removed(digits, tmp_path):
    grid = {**TINY, "l2": [0.0, 1e-3], "keep_prob_hidden": [0.5, 1.0]}
    first = S.search(digits, grid, out_dir=tmp_path, plot=False)
    lines = (tmp_path / S.JOURNAL_NAME).read_bytes().splitlines()
    records = [json.loads(line) for line in lines]
    null_accuracy = json.dumps(dict(records[0], val_accuracy=None)).encode()
    nan_loss = json.dumps(dict(records[1], val_loss=float("nan"))).encode()  # Python writes NaN, JSON has none
    torn = lines[3][: len(lines[3]) // 2]
    (tmp_path / S.JOURNAL_NAME).write_bytes(b"\n".join([null_accuracy, nan_loss, lines[2], torn]))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = S.search(digits, grid, out_dir=tmp_path, plot=False)
    [warning] = caught
    assert warning.category is RuntimeWarning
    message = str(warning.message)
    assert "line 1 (val_accuracy is null, not a number in [0, 1])" in message
    assert "line 2 (NaN is not a finite number)" in message and "line 4 (not valid JSON" in message
    assert "line 3" not in message
    assert (second.n_trained, second.n_resumed) == (3, 1)
    assert [(r["key"], r["val_accuracy"]) for r in second.trials] == [(r["key"], r["val_accuracy"])
                                                                       for r in first.trials]
    # Rewritten without them: every line whole, each trial once, and no later run warns.
    assert sorted(journal_keys(tmp_path)) == sorted(r["key"] for r in first.trials)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = S.search(digits, grid, out_dir=tmp_path, plot=False)
    assert (third.n_trained, third.n_resumed) == (0, 4)


@pytest.mark.parametrize("hostile, made_by, words", [
    (S.JOURNAL_NAME, os.mkdir, "is a directory"),
    (S.JOURNAL_NAME, os.mkfifo, "is not a regular file"),
    ("best.json", os.mkdir, "is a directory"),
])
def test_an_unusable_path_in_the_output_directory_fails_before_any_trial(digits, tmp_path, hostile, made_by, words):
    made_by(tmp_path / hostile)
    ran, raised = [], []

    def run():
        try:
            S.search(digits, TINY, out_dir=tmp_path, callback=ran.append)
        except OSError as exc:
            raised.append(exc)

    # In a thread: reading a FIFO would block until a writer came, and a test must not hang.
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=STARTUP_S)
    assert not thread.is_alive(), "the search blocked on the hostile path"
    [error] = raised
    assert str(tmp_path / hostile) in str(error) and words in str(error)
    assert ran == [] and not (tmp_path / LOCK_NAME).exists()


def test_cli_names_a_journal_that_is_a_directory(tmp_path, capsys):
    (tmp_path / S.JOURNAL_NAME).mkdir()
    assert main(["search", "--dataset", "digits", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"mlp search: error: the search journal {tmp_path / S.JOURNAL_NAME} is a directory" in err
    assert "Traceback" not in err
