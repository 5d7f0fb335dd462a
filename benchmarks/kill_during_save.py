"""SIGKILL a process saving a model, again and again: is the file always a whole version, what is left behind?

    python benchmarks/kill_during_save.py [--kills 30] [--out benchmarks/kill-during-save.json] [--seed 0] [--dir D]

Each round starts a process that saves a 784-1024-10 float64 model (6.5 MB)
to one file in a loop, version after version (the parameters of version k are
the initial ones plus k, and k is in the file's metadata), and SIGKILLs it at
a random moment (uniform between 0.05 and 1 s after it is ready; about half
the kills land in a write, the others while it builds the next version).
After each kill:

* the file must load (``mlp.load``) and hold exactly the version its metadata
  names, else it counts as corrupt;
* the temporary files in the directory are counted, with their bytes (a kill
  in a write leaves one: no process survives SIGKILL to remove it);
* this process saves the file once more (``atomic_write`` removes the
  temporary files of writers that are gone), and the temporary files are
  counted again.

The file is saved in a fresh directory inside ``--dir`` (default: the system's
temporary directory; on a tmpfs, fsync costs nothing and the writes are
shorter than on a disk). Printed: one line per kill; written to OUT: the counts and every round's.
Not a pytest file (pytest collects ``bench_*.py`` and ``test_*.py``);
``tests/faults/test_hostile_files.py`` runs a small version of it (5 kills).
"""
import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mlp

LAYERS = [784, 1024, 10]
REPO = Path(__file__).resolve().parent.parent

#: The saving process: ready once its model is built, then saves version 1, 2, ... until killed.
SAVER = f"""
import sys
import numpy as np
import mlp

net = mlp.MLP({LAYERS}, seed=0, dtype=np.float64, backend="numpy")
weights, biases = net.get_parameters()
print("ready", flush=True)
version = 0
while True:
    version += 1
    net.set_parameters([W + version for W in weights], biases)
    net.save(sys.argv[1], metadata={{"version": version}})
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=30, help="processes killed (default 30)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "kill-during-save.json",
                   help="where to write the JSON results (default: kill-during-save.json beside this script)")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    p.add_argument("--dir", type=Path, default=None, help="where to make the directory of the saved file "
                                                         "(default: the system's temporary directory)")
    return p.parse_args(argv)


def reference():
    """The initial parameters every version is built from."""
    return mlp.MLP(LAYERS, seed=0, dtype=np.float64, backend="numpy").get_parameters()


def saved_version(path, weights, biases):
    """The version the file at ``path`` holds, or None when it does not load or is not exactly that version."""
    try:
        net = mlp.load(path, backend="numpy")
        version = net.metadata["version"]
    except (OSError, ValueError, KeyError):
        return None
    got_w, got_b = net.get_parameters()
    exact = all(np.array_equal(g, W + version) for g, W in zip(got_w, weights))
    return version if exact and all(np.array_equal(g, b) for g, b in zip(got_b, biases)) else None


def temporaries(directory):
    """(count, bytes) of the temporary files in ``directory``."""
    found = [e for e in os.scandir(directory) if e.name.endswith(".tmp")]
    return len(found), sum(e.stat().st_size for e in found)


def kill_round(path, rng, weights, biases, before):
    """One saving process killed at a random moment; ``before``: the temporary files there before it started."""
    saver = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True,
                             cwd=REPO)
    assert saver.stdout.readline() == "ready\n"
    delay = float(rng.uniform(0.05, 1.0))
    time.sleep(delay)
    os.kill(saver.pid, signal.SIGKILL)
    saver.wait()  # waited for: a zombie's pid would still look alive to the next save
    saver.stdout.close()
    version = saved_version(path, weights, biases)
    left, left_bytes = temporaries(path.parent)
    mlp.MLP(LAYERS, seed=0, dtype=np.float64, backend="numpy").save(path, metadata={"version": 0})
    after, after_bytes = temporaries(path.parent)
    return {"delay_s": round(delay, 3), "version": version, "corrupt": version is None,
            "left_by_the_kill": left - before, "temporaries_before_next_save": left,
            "temporary_bytes_before_next_save": left_bytes, "temporaries_after_next_save": after,
            "temporary_bytes_after_next_save": after_bytes}


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    weights, biases = reference()
    rounds = []
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        path = Path(directory) / "m.npz"
        mlp.MLP(LAYERS, seed=0, dtype=np.float64, backend="numpy").save(path, metadata={"version": 0})
        for i in range(args.kills):
            before = rounds[-1]["temporaries_after_next_save"] if rounds else 0
            rounds.append(kill_round(path, rng, weights, biases, before))
            print(f"kill {i + 1:2d}/{args.kills}: " + ", ".join(f"{k} {v}" for k, v in rounds[-1].items()), flush=True)
    result = {
        "kills": args.kills,
        "model_bytes": int(sum(W.nbytes + b.nbytes for W, b in zip(weights, biases))),
        "corrupt_files": sum(r["corrupt"] for r in rounds),
        "kills_that_left_a_temporary_file": sum(r["left_by_the_kill"] > 0 for r in rounds),
        "most_temporary_files_after_a_save": max((r["temporaries_after_next_save"] for r in rounds), default=0),
        "temporary_files_at_the_end": rounds[-1]["temporaries_after_next_save"] if rounds else 0,
        "temporary_bytes_at_the_end": rounds[-1]["temporary_bytes_after_next_save"] if rounds else 0,
        "machine": {"python": platform.python_version(), "system": platform.platform(),
                    "directory": str(args.dir or tempfile.gettempdir())},
        "rounds": rounds,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print({k: v for k, v in result.items() if k != "rounds"})


if __name__ == "__main__":
    main()
