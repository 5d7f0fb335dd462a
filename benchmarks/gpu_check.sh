#!/usr/bin/env bash
# The cuda backend on a real GPU, in one short run (a device session lasts minutes):
#   1. tests/test_cuda_backend.py on the GPU: on a real device it adds realistic
#      sizes (257 and up) to the simulator's small ones, and it compiles every
#      kernel for the real target;
#   2. a timing table: each matmul variant at MLP training shapes, each fused layer
#      kernel against the chain of standard kernels it replaces, and the per-call
#      cost of the small kernels (launch overhead dominates those); then the
#      blocked fp32 product at 2048^3 against cuBLAS (torch.matmul, TF32 off), as
#      a percentage of cuBLAS (the target is >= 30%), when PyTorch has CUDA;
#   3. benchmarks/gpu_train.py for 3 epochs: 784-256-10 on Fashion-MNIST (or
#      synthetic data of its shape), numba-mlp's cuda training beside PyTorch eager.
# The whole check is meant to take a few minutes (well under 10).
# Usage: benchmarks/gpu_check.sh [PYTHON]   (default: .venv/bin/python if present, else python3)
# Exit status: that of the tests; the timings run even when a test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -ge 1 ]; then PY=$1; elif [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
export NUMBA_ENABLE_CUDASIM=0

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -m pytest tests/test_cuda_backend.py tests/test_cuda_training.py -q -p no:cacheprovider
status=$?

"$PY" - <<'EOF'
import time

import numpy as np
from numba import cuda

import kernels
from kernels.codes import RELU

C = kernels.get_backend("cuda")
dev = cuda.get_current_device()
name = getattr(dev, "name", "numba's CUDA simulator")  # the simulator's device has no name nor SM count
name = name.decode() if isinstance(name, bytes) else name
print(f"\n{name}: {getattr(dev, 'MULTIPROCESSOR_COUNT', '?')} SMs, compute capability {dev.compute_capability}")


def per_call(fn, budget=0.3):
    """Seconds per call, launches included: first call compiles, then ~budget seconds of calls."""
    fn()
    C.synchronize()
    t = time.perf_counter()
    fn()
    C.synchronize()
    reps = max(3, min(200, int(budget / max(time.perf_counter() - t, 1e-6))))
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    C.synchronize()
    return (time.perf_counter() - t) / reps


rng = np.random.default_rng(0)
dev_rand = lambda shape, dt: C.to_device(rng.standard_normal(shape).astype(dt))

print("\nmatmul: out (n, m) = L (n, k) R (k, m); microseconds per call and GFLOP/s")
for dt in (np.float32, np.float64):
    for n, k, m in [(256, 784, 512), (256, 512, 512), (1024, 784, 1024), (2048, 2048, 2048)]:
        for orient in ("nt", "tn", "nn"):
            A = dev_rand({"nt": (n, k), "tn": (k, n), "nn": (n, k)}[orient], dt)
            B = dev_rand({"nt": (m, k), "tn": (k, m), "nn": (k, m)}[orient], dt)
            out = C.empty((n, m), dt)
            cells = []
            for variant in (f"matmul_{orient}", f"matmul_{orient}_tiled", f"matmul_{orient}_naive"):
                s = per_call(lambda: getattr(C, variant)(A, B, out))
                cells.append(f"{variant.replace('matmul_' + orient, '') or 'blocked':>7} "
                             f"{s * 1e6:9.1f} us {2 * n * k * m / s / 1e9:8.0f}")
            print(f"{np.dtype(dt).name} {orient} {n}x{k}x{m}: " + " | ".join(cells))

print("\nfused layer kernels against their chains (float32, microseconds per call)")
dt = np.float32
for n, k, m in [(256, 784, 512), (256, 512, 512), (1024, 512, 512)]:
    X, W, b = dev_rand((n, k), dt), dev_rand((m, k), dt), dev_rand((m,), dt)
    mask, Z, H = C.empty((n, m), dt), C.empty((n, m), dt), C.empty((n, m), dt)
    C.dropout_mask(1, 0, 0.8, mask)
    fused = per_call(lambda: C.linear_activation_dropout_forward(X, W, b, RELU, mask, Z, H))
    chain = per_call(lambda: (C.matmul_nt(X, W, Z), C.bias_activation_dropout_forward(Z, b, RELU, mask, H)))
    print(f"forward  {n}x{k}->{m}: fused {fused * 1e6:8.1f}  chain {chain * 1e6:8.1f}")
    dZn, Zk, maskk, dZ, dH = (dev_rand((n, m), dt), dev_rand((n, k), dt), C.empty((n, k), dt),
                              C.empty((n, k), dt), C.empty((n, k), dt))
    C.dropout_mask(1, 1, 0.8, maskk)
    fused = per_call(lambda: C.linear_activation_dropout_backward(dZn, W, Zk, RELU, maskk, dZ))
    chain = per_call(lambda: (C.matmul_nn(dZn, W, dH), C.activation_dropout_backward(dH, Zk, RELU, maskk, dZ)))
    print(f"backward {n}x{m}->{k}: fused {fused * 1e6:8.1f}  chain {chain * 1e6:8.1f}")

print("\nsmall kernels (float32, microseconds per call)")
n, d, classes = 256, 512, 10
Z, H, b, mask = dev_rand((n, d), dt), C.empty((n, d), dt), dev_rand((d,), dt), C.empty((n, d), dt)
logits, probs, dl = dev_rand((n, classes), dt), C.empty((n, classes), dt), C.empty((n, classes), dt)
labels = C.to_device(rng.integers(0, classes, n))
loss = C.zeros(1, np.float64)
P, dP, V = dev_rand((d, 784), dt), dev_rand((d, 784), dt), C.zeros((d, 784), dt)
small = {
    "dropout_mask 256x512": lambda: C.dropout_mask(1, 2, 0.8, mask),
    "bias_activation_dropout_forward relu 256x512": lambda: C.bias_activation_dropout_forward(Z, b, RELU, mask, H),
    "activation_dropout_backward relu 256x512": lambda: C.activation_dropout_backward(H, Z, RELU, mask, H),
    "bias_grad 256x512": lambda: C.bias_grad(Z, b),
    "softmax_cross_entropy 256x10": lambda: C.softmax_cross_entropy(logits, labels, probs, dl, loss),
    "sgd_momentum_update 512x784": lambda: C.sgd_momentum_update(P, dP, V, 1e-3, 0.9, 1e-4, 0.0),
    "regularization_loss 512x784 (syncs)": lambda: C.regularization_loss(P, 1e-4, 1e-5),
}
for label, fn in small.items():
    print(f"{label:46s} {per_call(fn) * 1e6:8.1f}")

print("\nfp32 2048^3: the blocked matmul_nn against cuBLAS (torch.matmul, TF32 off)")
try:
    import torch
    has_torch_cuda = torch.cuda.is_available()
except ImportError:
    has_torch_cuda = False
if not has_torch_cuda:
    print("PyTorch with CUDA is not importable: no cuBLAS comparison")
else:
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 2048
    A, B, out = dev_rand((n, n), np.float32), dev_rand((n, n), np.float32), C.empty((n, n), np.float32)
    ours = per_call(lambda: C.matmul_nn(A, B, out), budget=1.0)
    tA, tB = torch.as_tensor(C.to_host(A), device="cuda"), torch.as_tensor(C.to_host(B), device="cuda")
    tout = torch.empty((n, n), device="cuda")
    torch.matmul(tA, tB, out=tout)
    torch.cuda.synchronize()
    reps = 20
    t = time.perf_counter()
    for _ in range(reps):
        torch.matmul(tA, tB, out=tout)
    torch.cuda.synchronize()
    theirs = (time.perf_counter() - t) / reps
    ref = tout.cpu().numpy()
    err = float(np.abs(C.to_host(out) - ref).max() / np.abs(ref).max())
    flops = 2 * n ** 3
    print(f"blocked {ours * 1e3:8.2f} ms {flops / ours / 1e12:6.2f} TFLOP/s | cuBLAS {theirs * 1e3:8.2f} ms "
          f"{flops / theirs / 1e12:6.2f} TFLOP/s | blocked = {100 * theirs / ours:5.1f}% of cuBLAS "
          f"(max rel difference {err:.1e})")
EOF

echo
"$PY" benchmarks/gpu_train.py --epochs 3 || status=$?
exit $status
