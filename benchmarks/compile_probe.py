"""Run by bench_compile.py in a fresh interpreter: import the cpu backend, call every kernel once.

Prints a JSON object: seconds spent importing, seconds spent in the first calls
(compilation, or loading from NUMBA_CACHE_DIR when it is warm), and how many
functions were called. Every standard kernel that bench_kernels.py times is
called, and every ALTERNATIVES entry of the cpu backend, at its first benchmark shape.
"""
import json
import time

start = time.perf_counter()
import kernels  # noqa: E402  (the import is what is being timed)

K = kernels.get_backend("cpu")
imported = time.perf_counter()

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
print(json.dumps({"import_seconds": imported - start, "first_calls_seconds": done - called,
                  "functions": len(arguments)}))
