"""Run by bench_compile.py in a fresh interpreter: what numba's JIT costs, cold or from NUMBA_CACHE_DIR.

    python compile_probe.py kernels   import the cpu backend, call every kernel once
    python compile_probe.py train     the first ``mlp train``: the main job's recipe (momentum,
                                      L2, dropout per sample) for one epoch on scikit-learn's digits

The second is what a user waits for: a fit compiles its whole epoch (one compiled
function per depth, dtype and kind of output), then the predictions. Digits
compile exactly what Fashion-MNIST does (the same dtypes and depth) and train in
milliseconds, so its time is the JIT's. Prints a JSON object: seconds spent
importing, then in the first calls or the ``mlp train`` run (and, of that run, in numba's JIT:
compiling, or loading from the cache), and what was called.
"""
import json
import sys
import tempfile
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "kernels"

start = time.perf_counter()
if MODE == "kernels":
    import kernels  # noqa: E402  (the import is what is being timed)

    K = kernels.get_backend("cpu")
else:
    from mlp.cli import main  # noqa: E402
imported = time.perf_counter()

if MODE == "kernels":
    from cases import kernel_cases  # noqa: E402

    first_case = {}
    for case in kernel_cases():
        first_case.setdefault(case.kernel, case)
    functions = [(name, first_case[name]) for name in first_case]
    functions += [(alternative, first_case[standard]) for alternative, standard in K.ALTERNATIVES.items()]
    arguments = [(getattr(K, name), case.build()) for name, case in functions]

    called = time.perf_counter()
    for function, args in arguments:
        function(*args)
    done = time.perf_counter()
    print(json.dumps({"probe": MODE, "import_seconds": imported - start, "first_calls_seconds": done - called,
                      "functions": len(arguments)}))
else:
    # The JIT's share of the run: every call that compiles or loads from the cache goes through
    # Dispatcher._compile_for_args; the outermost of nested calls is timed.
    from numba.core.dispatcher import Dispatcher

    jit_seconds = 0.0
    depth = 0
    compile_for_args = Dispatcher._compile_for_args

    def timed_compile_for_args(self, *args, **kwargs):
        global jit_seconds, depth
        depth += 1
        began = time.perf_counter()
        try:
            return compile_for_args(self, *args, **kwargs)
        finally:
            depth -= 1
            if depth == 0:
                jit_seconds += time.perf_counter() - began

    Dispatcher._compile_for_args = timed_compile_for_args
    with tempfile.TemporaryDirectory() as out:
        called = time.perf_counter()
        status = main(["train", "--dataset", "digits", "--epochs", "1", "--backend", "cpu", "--quiet",
                       "--out", out])
        done = time.perf_counter()
    assert status == 0, f"mlp train exited with {status}"
    print(json.dumps({"probe": MODE, "import_seconds": imported - start, "first_train_seconds": done - called,
                      "jit_seconds": jit_seconds}))
