"""Train 784-256-10 on the GPU: numba-mlp's cuda backend beside PyTorch eager, epoch by epoch.

Usage: python benchmarks/gpu_train.py [--epochs 5] [--batch-size 128] [--lr 0.1] [--synthetic]

Both train the same network from the same initial parameters (the lecture's
"normal" initialisation, drawn by ``mlp.MLP``) with plain minibatch SGD on mean
cross-entropy, in float32, visiting the examples in the same order
(``mlp.trainer``'s epoch permutations). PyTorch runs with TF32 off
(``torch.backends.cuda.matmul.allow_tf32 = False``), so both do full fp32
products. Each side first trains a throwaway copy for one epoch on two
minibatches, so that kernel compilation (numba) and library start-up (cuBLAS)
are reported apart from the epochs ("warm-up"). Epoch times cover training
only (the data already on the GPU); the test accuracy after each epoch is
measured outside them.

Data: Fashion-MNIST through ``mlp.datasets.load_fashion_mnist`` (``$MLP_DATA``
or the Debian package), else synthetic data of the same shape
(``mlp.datasets.make_synthetic``). Nothing is downloaded.

``--tiny`` (tests, numba's simulator): a 12-8-3 network on 16 synthetic
examples, one minibatch size of 8, no warm-up. ``--no-torch`` skips PyTorch.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kernels  # noqa: E402
import mlp  # noqa: E402
from mlp import datasets  # noqa: E402
from mlp.defaults import PLAIN_SGD  # noqa: E402

SEED = 0


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--synthetic", action="store_true", help="synthetic data even when Fashion-MNIST is there")
    p.add_argument("--tiny", action="store_true", help="a tiny net and data set (tests, the simulator)")
    p.add_argument("--no-torch", action="store_true", help="numba-mlp only")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        p.error("--epochs and --batch-size must be >= 1 and --lr > 0")
    return args


def load_data(args):
    """(Dataset, layer sizes, batch size)."""
    if args.tiny:
        data = datasets.make_synthetic(n_train=16, n_test=8, n_features=12, n_classes=3, seed=SEED)
        return data, [12, 8, 3], 8
    if not args.synthetic:
        try:
            return datasets.load_fashion_mnist(), [784, 256, 10], args.batch_size
        except FileNotFoundError as exc:
            print(f"Fashion-MNIST not found ({str(exc).splitlines()[0]}); using synthetic data of its shape")
    return datasets.make_synthetic(seed=SEED), [784, 256, 10], args.batch_size


def train_numba(data, sizes, batch, args, warm_up):
    """Per-epoch records of the cuda backend: seconds, train_loss, test_accuracy."""
    # plain minibatch SGD, as PyTorch's side trains
    config = dict(PLAIN_SGD, batch_size=batch, learning_rate=args.lr, seed=SEED)
    if warm_up:
        t = time.perf_counter()
        scratch = mlp.MLP(sizes, seed=SEED, dtype=np.float32, backend="cuda")
        scratch.fit(data.X_train[:2 * batch], data.y_train[:2 * batch], epochs=1, **config)
        print(f"numba-cuda warm-up (kernel compilation): {time.perf_counter() - t:.2f} s")
    net = mlp.MLP(sizes, seed=SEED, dtype=np.float32, backend="cuda")
    records = []

    def after_epoch(record):
        accuracy = float(np.mean(net.predict(data.X_test) == data.y_test))
        records.append({"epoch": record["epoch"], "seconds": record["seconds"],
                        "train_loss": record["train_loss"], "test_accuracy": accuracy})
        print(f"numba-cuda epoch {record['epoch']}: {record['seconds']:.3f} s, "
              f"train loss {record['train_loss']:.4f}, test accuracy {accuracy:.4f}", flush=True)
        return False

    net.fit(data.X_train, data.y_train, epochs=args.epochs, callback=after_epoch, **config)
    return records


def train_torch(data, sizes, batch, args, warm_up):
    """The same training in PyTorch eager on the GPU; None when PyTorch has no CUDA here."""
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: no comparison")
        return None
    if not torch.cuda.is_available():
        print("PyTorch has no usable CUDA device: no comparison")
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    init_w, init_b = mlp.MLP(sizes, seed=SEED, dtype=np.float32, backend="numpy").get_parameters()
    X = torch.from_numpy(data.X_train).to(device)
    y = torch.from_numpy(data.y_train).to(device)
    X_test = torch.from_numpy(data.X_test).to(device)
    y_test = torch.from_numpy(data.y_test).to(device)
    n = X.shape[0]

    def build():
        layers = []
        for l, (W, b) in enumerate(zip(init_w, init_b)):
            linear = torch.nn.Linear(W.shape[1], W.shape[0]).to(device)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(W))
                linear.bias.copy_(torch.from_numpy(b))
            layers.append(linear)
            if l < len(init_w) - 1:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)

    def run_epoch(model, optimizer, epoch, rows):
        order = torch.from_numpy(np.random.default_rng([SEED, epoch]).permutation(rows)).to(device)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, rows, batch):
            idx = order[start:start + batch]
            loss = torch.nn.functional.cross_entropy(model(X[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach().double() * idx.shape[0]
        return float(total) / rows

    if warm_up:
        t = time.perf_counter()
        scratch = build()
        run_epoch(scratch, torch.optim.SGD(scratch.parameters(), lr=args.lr), 0, 2 * batch)
        torch.cuda.synchronize()
        print(f"torch warm-up (library start-up): {time.perf_counter() - t:.2f} s")
    model = build()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    records = []
    for epoch in range(args.epochs):
        torch.cuda.synchronize()
        t = time.perf_counter()
        train_loss = run_epoch(model, optimizer, epoch, n)   # reads the loss: synchronises
        seconds = time.perf_counter() - t
        with torch.no_grad():
            accuracy = float((model(X_test).argmax(dim=1) == y_test).double().mean())
        records.append({"epoch": epoch, "seconds": seconds, "train_loss": train_loss, "test_accuracy": accuracy})
        print(f"torch epoch {epoch}: {seconds:.3f} s, train loss {train_loss:.4f}, "
              f"test accuracy {accuracy:.4f}", flush=True)
    return records


def main(argv=None):
    """Run the comparison and print it; return {"numba-cuda": records, "torch": records or None}."""
    args = parse_args(argv)
    reason = kernels.cuda_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"gpu_train: the cuda backend cannot run here: {reason}")
    data, sizes, batch = load_data(args)
    warm_up = not args.tiny
    print(f"{data.name}: {data.X_train.shape[0]} training and {data.X_test.shape[0]} test examples; "
          f"network {'-'.join(map(str, sizes))}, batch {batch}, lr {args.lr}, {args.epochs} epoch(s), float32")
    results = {"numba-cuda": train_numba(data, sizes, batch, args, warm_up),
               "torch": None if args.no_torch else train_torch(data, sizes, batch, args, warm_up)}
    print("\nepoch | numba-cuda s  test accuracy | torch s  test accuracy")
    for e, ours in enumerate(results["numba-cuda"]):
        theirs = results["torch"][e] if results["torch"] else None
        right = f"{theirs['seconds']:7.3f}  {theirs['test_accuracy']:13.4f}" if theirs else "      -              -"
        print(f"{e:5d} | {ours['seconds']:12.3f}  {ours['test_accuracy']:13.4f} | {right}")
    return results


if __name__ == "__main__":
    main()
