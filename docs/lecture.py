# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Back-propagation, executed
#
# This notebook follows the lecture *CS 4342, Class 22* (Jacob Whitehill) in its order:
# forward propagation, the gradients of back-propagation, weight initialisation and its
# zero-init exercises, L1 and L2 regularisation tuned on a validation set, and dropout.
# Every section runs **numba-mlp** on small data (scikit-learn's 8×8 digits, or the
# lecture's own 3-3-2 network) and shows a picture; every claim a picture makes is also
# checked by an `assert` in a cell, so a wrong picture cannot pass silently. The notebook
# runs in CI (`make test`) and renders to HTML with `make lecture`.
#
# Notation, as in the lecture: a weight matrix `W` of layer *j* is (fan-out, fan-in), so
# for one example (a column vector) **z** = **W x** + **b**, **h** = relu(**z**) and
# **ŷ** = softmax(**W**⁽²⁾**h** + **b**⁽²⁾). The library stores a minibatch as rows, so
# the same product reads `Z = X @ W.T + b` in code.

# %%
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import kernels
import mlp
from mlp.datasets import load_digits, train_validation_split
from mlp.defaults import PLAIN_SGD

plt.rcParams.update({"figure.dpi": 80, "axes.spines.top": False, "axes.spines.right": False})
np.set_printoptions(precision=4, suppress=True)

digits = load_digits()  # 1348 training and 449 test images of 64 pixels in [0, 1], labels 0..9
X, y = digits.X_train.astype(np.float64), digits.y_train
print(X.shape, y.shape, "classes:", np.bincount(y))


# %% [markdown]
# ## 1. Forward propagation
#
# From **x**, **W**⁽¹⁾ and **b**⁽¹⁾ we compute **z**⁽¹⁾; from **z**⁽¹⁾ and relu, **h**⁽¹⁾;
# from **h**⁽¹⁾, **W**⁽²⁾ and **b**⁽²⁾, **ŷ**. Forward propagation "produces all the
# intermediary (**h**, **z**) and final (**ŷ**) network outputs": `net.forward_pass`
# keeps them. Below, the lecture's three lines beside the library's. Sections 1 to 6 use
# the `cpu` backend, whose parameters `net.weights[l]`, `net.biases[l]` are NumPy arrays
# that can be read and written in place (on `cuda` they live on the GPU).

# %%
def relu(z):
    return np.maximum(z, 0)


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


net = mlp.MLP([64, 16, 10], seed=0, dtype=np.float64, backend="cpu")   # weights ~ N(0, 1/cols(W)), biases 0
net.biases[0][...] = np.random.default_rng(1).normal(0, 0.1, 16)  # nonzero, so every term shows
W1, b1, W2, b2 = net.weights[0], net.biases[0], net.weights[1], net.biases[1]

x, label = X[0], y[0]
z1 = W1 @ x + b1          # the lecture's z
h1 = relu(z1)             # h = relu(z)
y_hat = softmax(W2 @ h1 + b2)

kept = net.forward_pass(x[None, :])   # the library: one row, z, h and y_hat kept
print("z(1)  lecture", z1[:5], "\n      library", kept.z[0][0, :5])
print("y_hat lecture", y_hat[:5], "\n      library", kept.y_hat[0, :5])
assert np.allclose(kept.z[0][0], z1, rtol=1e-12, atol=1e-14)
assert np.allclose(kept.h[0][0], h1, rtol=1e-12, atol=1e-14)
assert np.allclose(kept.y_hat[0], y_hat, rtol=1e-12, atol=1e-14)

fig, axes = plt.subplots(1, 4, figsize=(13, 2.6), gridspec_kw={"width_ratios": [1, 2, 2, 1.4]})
axes[0].imshow(x.reshape(8, 8), cmap="gray_r")
axes[0].set(title=f"x (a {label})", xticks=[], yticks=[])
axes[1].bar(range(16), z1, color="tab:blue")
axes[1].set(title="z(1) = W(1) x + b(1)", xlabel="hidden unit")
axes[2].bar(range(16), h1, color="tab:orange")
axes[2].set(title=f"h(1) = relu(z(1)): {int((h1 == 0).sum())} of 16 are 0", xlabel="hidden unit")
axes[3].bar(range(10), y_hat, color="tab:green")
axes[3].set(title="y_hat = softmax(W(2) h(1) + b(2))", xlabel="class", xticks=range(10))
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 2. The gradients of back-propagation
#
# For one example with one-hot label **y**, the lecture's gradients of the cross-entropy:
#
# $$\nabla_{\mathbf{W}^{(2)}} f = (\hat{\mathbf{y}} - \mathbf{y})\,\mathbf{h}^{(1)\top},\quad
#   \nabla_{\mathbf{b}^{(2)}} f = \hat{\mathbf{y}} - \mathbf{y},\quad
#   \nabla_{\mathbf{W}^{(1)}} f = \mathbf{g}\,\mathbf{x}^\top,\quad
#   \nabla_{\mathbf{b}^{(1)}} f = \mathbf{g},$$
# $$\mathbf{g}^\top = \left((\hat{\mathbf{y}} - \mathbf{y})^\top \mathbf{W}^{(2)}\right) \odot \mathrm{relu}'(\mathbf{z}^{(1)\top}),
#   \qquad \mathrm{relu}'(0) = 0.$$
#
# Written out in NumPy from the **z**, **h**, **ŷ** above, beside `net.loss_and_gradients`
# (the library's kernels) and central finite differences of the loss, entry by entry.

# %%
onehot = np.eye(10)[label]
g = ((y_hat - onehot) @ W2) * (z1 > 0)          # relu'(z) is 1 where z > 0, else 0 (relu'(0) = 0)
lecture = {"W2": np.outer(y_hat - onehot, h1), "b2": y_hat - onehot, "W1": np.outer(g, x), "b1": g}

loss, [(dW1, db1), (dW2, db2)] = net.loss_and_gradients(x[None, :], [label])
library = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
parameters = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def finite_difference(P, index, eps=1e-6):
    """(f(P + eps) - f(P - eps)) / 2 eps at one entry of the parameter array P (changed in place, then restored)."""
    keep = P[index]
    P[index] = keep + eps
    up, _ = net.loss_and_gradients(x[None, :], [label])
    P[index] = keep - eps
    down, _ = net.loss_and_gradients(x[None, :], [label])
    P[index] = keep
    return (up - down) / (2 * eps)


rng = np.random.default_rng(2)
print(f"loss = {loss:.6f}\n{'entry':>12} {'lecture':>12} {'library':>12} {'finite diff.':>12}")
for name, P in parameters.items():
    # two entries of each parameter where the gradient is not 0 (x has zero pixels, relu zero units)
    candidates = np.argwhere(lecture[name] != 0)
    for index in map(tuple, candidates[rng.choice(len(candidates), 2, replace=False)]):
        numeric = finite_difference(P, index)
        entry = name + str([int(i) for i in index])
        print(f"{entry:>12} {lecture[name][index]:12.8f} {library[name][index]:12.8f} {numeric:12.8f}")
        assert abs(numeric - lecture[name][index]) < 1e-8   # central differences: error ~ eps^2 + rounding/eps
    assert np.allclose(library[name], lecture[name], rtol=1e-12, atol=1e-15), name
print("every entry of every gradient: the lecture's formulas equal the library's to 1e-12")

# %% [markdown]
# ## 3. Weight initialisation: the all-zero network and the two exercises
#
# *"Suppose we initialize all the weights and bias terms of a 3-layer NN to be 0. What will
# happen during SGD?"* Forward propagation gives **z** = **h** = 0, so ∇**W**⁽²⁾ =
# (**ŷ** − **y**)**h**ᵀ = 0, **g** = 0 and ∇**W**⁽¹⁾ = ∇**b**⁽¹⁾ = 0: only **b**⁽²⁾
# changes, until **ŷ** = softmax(**b**⁽²⁾) is the mean of the one-hot targets, the label
# frequencies. The digits are balanced, so to see the frequencies take a lopsided subset:
# 12 images of 0, 24 of 1, …, 120 of 9.

# %%
lopsided = np.concatenate([np.flatnonzero(y == k)[:12 * (k + 1)] for k in range(10)])
X_lop, y_lop = X[lopsided], y[lopsided]
frequencies = np.bincount(y_lop) / len(y_lop)


def sgd_steps(net, X, y, steps, learning_rate=1.0):
    """The lecture's SGD on the full batch: P <- P - lr * dP for every parameter; yields after each step."""
    for step in range(steps):
        _, grads = net.loss_and_gradients(X, y)
        for l, (dW, db) in enumerate(grads):
            net.weights[l] -= learning_rate * dW
            net.biases[l] -= learning_rate * db
        yield step, grads


zero = mlp.MLP([64, 16, 10], init="zeros", dtype=np.float64, backend="cpu")
path = np.array([softmax(zero.biases[1].copy()) for _ in sgd_steps(zero, X_lop, y_lop, 200)])

fig, ax = plt.subplots(figsize=(8, 3.2))
for k in range(10):
    line, = ax.plot(path[:, k], label=str(k))
    ax.axhline(frequencies[k], color=line.get_color(), ls=":", lw=1)
ax.set(xlabel="SGD step", ylabel="softmax(b(2))",
       title="All-zero init: only b(2) moves, towards the label frequencies (dotted)")
ax.legend(title="class", ncol=2, fontsize=8, loc="center right")
plt.show()

assert not zero.weights[0].any() and not zero.biases[0].any() and not zero.weights[1].any()
assert np.abs(softmax(zero.biases[1]) - frequencies).max() < 1e-3
print("W(1), b(1), W(2) are still exactly 0; softmax(b(2)) =", softmax(zero.biases[1]).round(3),
      "\nthe label frequencies      =", frequencies.round(3))

# %% [markdown]
# **Exercise 1**: **W**⁽¹⁾ = **b**⁽¹⁾ = 0, **W**⁽²⁾, **b**⁽²⁾ random. Then **h** = 0, so
# ∇**W**⁽²⁾ = 0, and relu′(0) = 0 makes **g** = 0: again only **b**⁽²⁾ can change.
#
# **Exercise 2**: **W**⁽²⁾ = **b**⁽²⁾ = 0, **W**⁽¹⁾, **b**⁽¹⁾ random. Then **g** = 0 (it
# is multiplied by **W**⁽²⁾), but **h** ≠ 0, so the first step moves **W**⁽²⁾; from the
# second step on **g** ≠ 0 and everything moves. The table counts the nonzero entries of
# each gradient, step by step; the plot shows what each start learns.

# %%
def network(zeroed, seed=3):
    """The lecture's network with the named parameters set to 0 (the others: W ~ N(0, 1/cols), b ~ N(0, 0.1))."""
    net = mlp.MLP([64, 16, 10], seed=seed, dtype=np.float64, backend="cpu")
    for b in net.biases:
        b[...] = np.random.default_rng(seed).normal(0, 0.1, b.shape)
    for name in zeroed:
        {"W1": net.weights[0], "b1": net.biases[0], "W2": net.weights[1], "b2": net.biases[1]}[name][...] = 0
    return net


starts = {"all zero": ("W1", "b1", "W2", "b2"), "exercise 1": ("W1", "b1"), "exercise 2": ("W2", "b2"),
          "lecture init": ()}
moved, accuracy = {}, {}
print(f"{'start':>13} {'step':>4}   nonzero entries of  dW1  db1  dW2  db2")
for name, zeroed in starts.items():
    net = network(zeroed)
    accuracy[name], moved[name] = [], []
    for step, [(dW1, db1), (dW2, db2)] in sgd_steps(net, X, y, 150, learning_rate=0.5):
        moved[name].append([int(np.count_nonzero(G)) for G in (dW1, db1, dW2, db2)])
        accuracy[name].append(float((net.predict(X) == y).mean()))
        if step < 3:
            print(f"{name:>13} {step + 1:>4}   {'':>18}" + "".join(f"{c:>5}" for c in moved[name][-1]))

fig, ax = plt.subplots(figsize=(8, 3))
for name, style in zip(starts, ("-", "--", "-", "-")):
    ax.plot(accuracy[name], style, label=name)
ax.set(xlabel="SGD step (full batch, lr 0.5)", ylabel="training accuracy", ylim=(0, 1))
ax.legend()
plt.show()

# all zero and exercise 1: only db2 is ever nonzero; exercise 2: step 1 moves W2, b2 only, step 2 everything
assert all(m[:3] == [0, 0, 0] and m[3] > 0 for name in ("all zero", "exercise 1") for m in moved[name])
assert moved["exercise 2"][0][:2] == [0, 0] and min(moved["exercise 2"][0][2:]) > 0
assert min(moved["exercise 2"][1]) > 0
# stuck starts predict one class: accuracy of the most frequent label; exercise 2 learns like the lecture's init
assert max(accuracy["all zero"]) == max(accuracy["exercise 1"]) == np.bincount(y).max() / len(y)
assert accuracy["exercise 2"][-1] > 0.9 and accuracy["lecture init"][-1] > 0.9

# %% [markdown]
# ## 4. Weight initialisation: std 1/√cols(W), too small, too large
#
# *"For weight matrix **W**⁽ʲ⁾, sample each component from a 0-mean probability
# distribution with standard deviation of 1/√cols(**W**⁽ʲ⁾)"*: each unit of **z** then sums
# cols(**W**) terms and keeps about the size of its inputs, layer after layer. Relu zeroes
# about half of each layer, which halves its second moment, so a standard deviation of
# *s*/√cols(**W**) multiplies the spread of the activations by *s*/√2 a layer: *s* = 0.3
# and they vanish, *s* = 3 and they explode, and the gradients with them. The lecture's
# *s* = 1 still loses √2 a layer, which He's initialisation (`init="he"`, *s* = √2) gives
# back. Six hidden layers of 128, on 512 digits; the histograms are of every layer's
# activations **h** and weight gradients ∇**W**.

# %% tags=["figure:initialisation"]
depth_sizes = [64] + [128] * 6 + [10]
scales = {"0.3 / sqrt(cols)": 0.3, "1 / sqrt(cols) (lecture)": 1.0, "sqrt(2) / sqrt(cols) (He)": np.sqrt(2),
          "3 / sqrt(cols)": 3.0}
spread = {}
fig, axes = plt.subplots(2, len(scales), figsize=(15, 5.5))
for column, (name, scale) in enumerate(scales.items()):
    deep = mlp.MLP(depth_sizes, seed=4, dtype=np.float64, backend="cpu")        # the lecture's init ...
    for W in deep.weights:
        W *= scale                                                # ... scaled
    passed = deep.forward_pass(X[:512])
    _, grads = deep.loss_and_gradients(X[:512], y[:512])
    spread[name] = {"h": [h.std() for h in passed.h], "dW": [np.sqrt((dW ** 2).mean()) for dW, _ in grads]}
    for row, (kind, values) in enumerate((("h", passed.h), ("dW", [dW for dW, _ in grads]))):
        ax = axes[row, column]
        top = np.percentile(np.abs(np.concatenate([v.ravel() for v in values])), 99)
        for layer, v in enumerate(values[:6]):
            ax.hist(v.ravel(), bins=np.linspace(-top, top, 60) if kind == "dW" else np.linspace(0, top, 60),
                    histtype="step", label=f"layer {layer + 1}: std {v.std():.2g}", log=True)
        ax.set_title(f"{kind}, std {name}" if row == 0 else f"gradient dW, std {name}", fontsize=9)
        ax.legend(fontsize=6)
fig.tight_layout()
plt.show()

ratio = {name: s["h"][-1] / s["h"][0] for name, s in spread.items()}
gradient = {name: np.array(s["dW"]) / np.array(spread["1 / sqrt(cols) (lecture)"]["dW"]) for name, s in spread.items()}
print(f"{'std of W':>26} {'h(6)/h(1)':>10} {'(scale/sqrt 2)^5':>17}   rms dW(l) / the lecture's, l = 1..7")
for name, scale in scales.items():
    print(f"{name:>26} {ratio[name]:10.3g} {(scale / np.sqrt(2)) ** 5:17.3g}  ", gradient[name].round(4))
# activations: relu halves the second moment, so each layer scales the spread by scale / sqrt(2)
for name, scale in scales.items():
    assert 0.8 < ratio[name] / (scale / np.sqrt(2)) ** 5 < 1.25, name
# gradients: h shrinks going forward and the error going back, scale^6 in all, at every layer alike;
# too large saturates the softmax as well, which makes them larger still
assert np.all(np.abs(gradient["0.3 / sqrt(cols)"] / 0.3 ** 6 - 1) < 0.2)
assert np.all(gradient["3 / sqrt(cols)"] > 3 ** 6)

# %% [markdown]
# ## 5. L2, L1 and L1 + L2, per layer
#
# L2 adds ½‖**W**‖²_Fr to the loss and α**W** to its gradient; L1 adds |**W**| and
# β sign(**W**), which *"encourages entries of the weight matrix to be exactly 0"*; both
# together, with different strengths α⁽ʲ⁾, β⁽ʲ⁾ for each weight matrix:
#
# $$\nabla_{\mathbf{W}^{(j)}} f = \ldots + \alpha^{(j)} \mathbf{W}^{(j)} + \beta^{(j)} \mathrm{sign}(\mathbf{W}^{(j)}).$$
#
# In the library `l2` is α and `l1` is β, a scalar or one per weight matrix. A step that
# would carry a weight across 0 under L1 stops it at exactly 0 (the README's *two choices
# the lecture leaves open*). The strengths are chosen on a **validation** split of the
# training images, never on the test set.

# %%
X_tr, y_tr, X_val, y_val = train_validation_split(X, y, 0.25, seed=0)
recipe = dict(PLAIN_SGD, epochs=30, batch_size=32, learning_rate=0.1, seed=0)
penalties = {"none": {}, "L2  α = (1e-2, 1e-3)": dict(l2=[1e-2, 1e-3]),
             "L1  β = (1e-3, 1e-4)": dict(l1=[1e-3, 1e-4]),
             "L1+L2": dict(l2=[1e-2, 1e-3], l1=[1e-3, 1e-4])}
regularised = {}
for name, penalty in penalties.items():
    regularised[name] = mlp.MLP([64, 64, 10], seed=0, dtype=np.float64, backend="cpu")
    regularised[name].fit(X_tr, y_tr, **{**recipe, **penalty})

fig, axes = plt.subplots(1, 3, figsize=(14, 3.2), gridspec_kw={"width_ratios": [2, 2, 1]})
bins = np.linspace(-0.6, 0.6, 121)
print(f"{'penalty':>22} {'mean |W1|':>9} {'W1 == 0':>8} {'W2 == 0':>8} {'val. accuracy':>13}")
zeros = {}
for name, net in regularised.items():
    W1r, W2r = net.weights
    zeros[name] = int((W1r == 0).sum()) + int((W2r == 0).sum())
    axes[0].hist(W1r.ravel(), bins=bins, histtype="step", label=name, log=True)
    axes[1].hist(W2r.ravel(), bins=bins[::3], histtype="step", label=name, log=True)
    _, val_accuracy = net.evaluate(X_val, y_val)
    print(f"{name:>22} {np.abs(W1r).mean():9.4f} {int((W1r == 0).sum()):>8} {int((W2r == 0).sum()):>8} "
          f"{val_accuracy:13.4f}")
axes[0].set(title="W(1) after 30 epochs (the spike at 0 is L1's exact zeros)", xlabel="weight")
axes[1].set(title="W(2)", xlabel="weight")
axes[0].legend(fontsize=8)
# where L1's zeros are: for each pixel, the share of the 64 hidden units whose weight from it is exactly 0
W1_l1 = regularised["L1  β = (1e-3, 1e-4)"].weights[0]
image = axes[2].imshow((W1_l1 == 0).mean(axis=0).reshape(8, 8), cmap="viridis", vmin=0, vmax=1)
axes[2].set(title="L1: W(1)'s zeros, by pixel", xticks=[], yticks=[])
fig.colorbar(image, ax=axes[2])
fig.tight_layout()
plt.show()

# L2 shrinks the weights, without zeroing any; L1 sets hundreds of weights to exactly 0
mean_size = {name: np.abs(net.weights[0]).mean() for name, net in regularised.items()}
assert mean_size["L2  α = (1e-2, 1e-3)"] < 0.7 * mean_size["none"]
assert zeros["none"] == zeros["L2  α = (1e-2, 1e-3)"] == 0
assert zeros["L1  β = (1e-3, 1e-4)"] > 500 and zeros["L1+L2"] > zeros["L1  β = (1e-3, 1e-4)"]
# A pixel blank in every training image gets no data gradient: only L1 moves its weights, by lr·β
# towards 0 at each of the 960 steps (32 a epoch), and a weight that reaches 0 stops there.
blank = ~X_tr.any(axis=0)
W1_start = mlp.MLP([64, 64, 10], seed=0, dtype=np.float64, backend="cpu").weights[0][:, blank]
pull = 960 * recipe["learning_rate"] * 1e-3
expected = np.sign(W1_start) * np.maximum(np.abs(W1_start) - pull, 0)
assert blank.sum() >= 3 and np.allclose(W1_l1[:, blank], expected, rtol=0, atol=1e-12)
assert ((W1_l1[:, blank] == 0) == (np.abs(W1_start) <= pull)).all()
print(f"{int(blank.sum())} pixels are blank in every training image: L1 moved each of their weights by "
      f"{pull:.3f} towards 0, and {int((W1_l1[:, blank] == 0).sum())} of {W1_start.size} stopped at exactly 0")

# %% [markdown]
# **Choosing α⁽¹⁾, α⁽²⁾ on the validation set.** `mlp search` splits the *training* images
# once into training and validation parts, trains one network per pair (α⁽¹⁾, α⁽²⁾), ranks
# them by validation accuracy, and evaluates only the best on the test set, once. A comma
# list is a search axis, one list per weight matrix; its Python form is
# `mlp.search.search(digits, {"l2": [(a1, a2), ...], ...})`.

# %%
alphas_1, alphas_2 = (0.0, 1e-3, 1e-2, 3e-2, 1e-1), (0.0, 1e-2, 1e-1)
with tempfile.TemporaryDirectory() as out:
    command = ["mlp", "search", "--dataset", "digits", "--hidden", "64", "--epochs", "20", "--batch-size", "32",
               "--lr", "0.05", "--validation-fraction", "0.25", "--l2", ",".join(map(str, alphas_1)),
               ",".join(map(str, alphas_2)), "--out", out, "--quiet"]
    print("$", " ".join(command[:-3]), "--out DIR --quiet")
    printed = subprocess.run([sys.executable, "-m", "mlp", *command[1:]], capture_output=True, text=True, check=True)
    print(printed.stdout)
    trials = json.loads((Path(out) / "trials.json").read_text())
    found = json.loads((Path(out) / "best.json").read_text())
score = {tuple(t["l2"]): t["val_accuracy"] for t in trials}

fig, ax = plt.subplots(figsize=(7, 3.2))
positions = np.arange(len(alphas_1))
for a2 in alphas_2:
    ax.plot(positions, [score[(a1, a2)] for a1 in alphas_1], marker="o", label=f"α(2) = {a2:g}")
best = tuple(found["params"]["l2"])
ax.plot(alphas_1.index(best[0]), score[best], "k*", ms=14, label="chosen")
ax.set(xticks=positions, xticklabels=[f"{a:g}" for a in alphas_1], xlabel="α(1)", ylabel="validation accuracy",
       title="L2 per layer, chosen on the validation split")
ax.legend(fontsize=8)
plt.show()
print(f"chosen on validation: α = {best}, validation accuracy {score[best]:.4f}; "
      f"then the test set, once: {found['test_accuracy']:.4f}")

# the best pair is the one with the highest validation accuracy; too strong a penalty underfits
assert score[best] == max(score.values())
assert score[(0.1, 0.1)] < score[best] - 0.05

# %% [markdown]
# ## 6. Dropout
#
# *"For each step of SGD, we randomly select (with "keep" probability p) some of the input
# and hidden neurons (not the output neurons). We then remove these neurons and perform
# forward-propagation on the reduced network."* The lecture's example, with
# **b**⁽¹⁾ = **b**⁽²⁾ = 0 and **x** = [0, 1, 2]ᵀ: dropping the middle input and the middle
# hidden neuron (the lecture circles the entries of **W**⁽¹⁾ that stay: rows and columns 1
# and 3) gives **ŷ** = [60, 132]ᵀ, where the full network gives [120, 273]ᵀ. In the
# library a mask multiplies each layer's activations: 0 removes a neuron (in training the
# kept ones are scaled by 1/p, "inverted dropout", so that the full network needs no
# change at test time; this example uses the masks as given, 0 or 1, as the lecture does).

# %%
lecture_net = mlp.MLP([3, 3, 2], output="identity", init="zeros", dtype=np.float64, backend="cpu")
lecture_net.weights[0][...] = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
lecture_net.weights[1][...] = [[1, 2, 3], [4, 5, 6]]
x3 = np.array([[0.0, 1.0, 2.0]])
drop = [np.array([1.0, 0.0, 1.0]), np.array([1.0, 0.0, 1.0])]   # remove input 2 and hidden neuron 2
reduced, full = lecture_net.forward(x3, masks=drop), lecture_net.forward(x3)
print("reduced network: y_hat =", reduced[0], "  full network: y_hat =", full[0])
assert reduced.tolist() == [[60.0, 132.0]] and full.tolist() == [[120.0, 273.0]]

# the reduced network is the full one without the removed rows and columns, computed directly
W1_reduced, W2_reduced = lecture_net.weights[0][np.ix_([0, 2], [0, 2])], lecture_net.weights[1][:, [0, 2]]
print("W(1) reduced =\n", W1_reduced, "\nW(2) reduced =\n", W2_reduced)
assert (W2_reduced @ relu(W1_reduced @ x3[0, [0, 2]])).tolist() == [60.0, 132.0]

# "During back-propagation, we adjust the weights of only those neurons that were not removed"
_, [(dW1, _), (dW2, _)] = lecture_net.loss_and_gradients(x3, [[1.0, 2.0]], masks=drop)
# (the lecture circles W(1)'s four corners; column 1 gets no gradient either, because x1 = 0)
print("nonzero entries of dW(1):\n", (dW1 != 0).astype(int), "\nof dW(2):\n", (dW2 != 0).astype(int))
assert not dW1[1].any() and not dW1[:, 1].any() and not dW2[:, 1].any()   # the removed row and columns

# %% [markdown]
# **One step of training on the reduced network.** `dropout_mode="per_batch"` trains the
# lecture's way: one mask a minibatch, the kept rows and columns of every weight matrix
# gathered into a smaller network, forward and back-propagation on it, and the result
# scattered back. Step *t*'s mask of layer *j* is stream *t*·(number of layers) + *j* of the
# backend's counter-based generator `dropout_mask(seed, stream, keep, out)`, so the units
# a step keeps can be drawn again outside the training, and compared with the weights that
# moved: one step, on one minibatch of 128 digits.

# %%
keep = [0.7, 0.5]
stepped = mlp.MLP([64, 24, 10], seed=5, dtype=np.float64, backend="cpu")
before = [W.copy() for W in stepped.weights]
stepped.fit(X[:128], y[:128], **{**PLAIN_SGD, "epochs": 1, "batch_size": 128, "learning_rate": 0.5,
                                 "keep_prob": keep, "dropout_mode": "per_batch", "seed": 11})

numpy_kernels = kernels.get_backend("numpy")
masks = []
for j, (width, p) in enumerate(zip(stepped.layer_sizes[:-1], keep)):
    masks.append(np.empty(width))
    numpy_kernels.dropout_mask(11, 0 * stepped.n_layers + j, p, masks[-1])  # step 0, layer j: 0 or 1/p
kept_units = [np.flatnonzero(m) for m in masks] + [np.arange(10)]            # the outputs are never dropped
changed = [W != W0 for W, W0 in zip(stepped.weights, before)]
print("kept inputs:", kept_units[0], "\nkept hidden units:", kept_units[1])

fig, axes = plt.subplots(1, 2, figsize=(14, 3), gridspec_kw={"width_ratios": [64, 26]})
gathered = []
for l in range(2):
    gathered.append(np.zeros_like(changed[l]))
    gathered[l][np.ix_(kept_units[l + 1], kept_units[l])] = True
    # white: removed; light red: gathered into the reduced network; black: changed by the step
    axes[l].imshow(gathered[l].astype(int) + changed[l], cmap=plt.matplotlib.colors.ListedColormap(
        ["white", "mistyrose", "black"]), vmin=0, vmax=2, aspect="auto", interpolation="nearest")
    axes[l].set(title=f"W({l + 1}): gathered (light red), changed by the step (black)",
                xlabel="from unit", ylabel="to unit")
fig.tight_layout()
plt.show()

# Only the gathered rows and columns moved, and by exactly one SGD step of the full network under
# the same masks: the reduced network's step is the masked network's step.
start = mlp.MLP([64, 24, 10], seed=5, dtype=np.float64, backend="cpu")   # the same initial network
_, masked_grads = start.loss_and_gradients(X[:128], y[:128], masks=masks)
for l in range(2):
    assert not (changed[l] & ~gathered[l]).any(), "a weight outside the reduced network moved"
    assert np.allclose(stepped.weights[l], before[l] - 0.5 * masked_grads[l][0], rtol=0, atol=1e-12)
print("moved:", [f"W({l + 1}) {int(changed[l].sum())} of {changed[l].size}" for l in range(2)],
      "(inside the gathered block, the weights from pixels blank in all 128 images and of units",
      "relu kept at 0 get no gradient)")

# %% [markdown]
# **An ensemble of many smaller networks.** Each mask is one of 2^(units) reduced networks,
# and training with dropout trains them all, sharing weights. At test time the lecture's
# ensemble can be approximated two ways: average the predictions of *k* sampled reduced
# networks (Monte-Carlo, `net.mc_dropout_proba`), or run the full network once (the
# library's inverted dropout scales the kept units by 1/p in training, so the full network
# approximates the ensemble's mean). Below, a network trained with keep probabilities 0.8
# (input) and 0.5 (hidden), scored on the validation split.

# %% tags=["figure:dropout-ensemble"]
ensemble = mlp.MLP([64, 128, 10], seed=0, backend="cpu")
ensemble.fit(X_tr, y_tr, **{**recipe, "epochs": 40, "keep_prob": [0.8, 0.5], "learning_rate": 0.05})
sizes = [1, 2, 4, 8, 16, 32, 64]
mc_accuracy = [float((ensemble.mc_dropout_proba(X_val, [0.8, 0.5], n_samples=k, seed=1).argmax(axis=1)
                      == y_val).mean()) for k in sizes]
single = [float((ensemble.mc_dropout_proba(X_val, [0.8, 0.5], n_samples=1, seed=s).argmax(axis=1) == y_val).mean())
          for s in range(100, 120)]
_, full_accuracy = ensemble.evaluate(X_val, y_val)

fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(sizes, mc_accuracy, "o-", label="mean of k sampled networks")
ax.axhline(full_accuracy, color="k", ls="--", label="the full network (weights scaled)")
ax.axhspan(min(single), max(single), color="tab:orange", alpha=0.2, label="one sampled network (20 draws)")
ax.set(xscale="log", xticks=sizes, xticklabels=sizes, xlabel="k, networks averaged", ylabel="validation accuracy")
ax.legend(fontsize=8)
plt.show()
print("k:", sizes, "\naccuracy:", np.round(mc_accuracy, 4), f"\nfull network: {full_accuracy:.4f}, "
      f"one sampled network: {np.mean(single):.4f} on average, {min(single):.4f} to {max(single):.4f}")

# averaging sampled networks beats any one of them and approaches the full network
assert mc_accuracy[-1] > max(single) and mc_accuracy[-1] > mc_accuracy[0]
assert abs(mc_accuracy[-1] - full_accuracy) < 0.02

# %% [markdown]
# ## 7. The same training on every backend: why the kernels exist
#
# Everything above ran on the `cpu` backend (Numba kernels, what `backend="auto"` picks
# where there is no GPU). The `numpy` backend is the reference, plain NumPy written to be read beside the
# lecture: one Python step per minibatch. The `cpu` backend runs a whole epoch as one
# compiled call; `cuda` runs it on a GPU where one is present. The same fit, float32,
# 64-256-10, minibatches of 4, 3 epochs, on each backend: the same parameters to float32
# rounding, in very different times (measured here, once, after a warm-up fit that
# compiles; `make bench` times the kernels properly).

# %%
backends = kernels.available_backends(include_simulator=False)   # numpy, cpu, and cuda with a GPU
setting = dict(PLAIN_SGD, epochs=3, batch_size=4, learning_rate=0.05, seed=0)
seconds, fitted = {}, {}
for backend in backends:
    mlp.MLP([64, 256, 10], seed=0, backend=backend).fit(X, y, **{**setting, "epochs": 1})   # compile, warm up
    fitted[backend] = mlp.MLP([64, 256, 10], seed=0, backend=backend)
    start = time.perf_counter()
    fitted[backend].fit(X, y, **setting)
    seconds[backend] = time.perf_counter() - start

fig, ax = plt.subplots(figsize=(6, 2.2))
ax.barh(backends, [seconds[b] / 3 * 1e3 for b in backends], color="tab:blue")
ax.set(xlabel="milliseconds per epoch (1348 digits, 337 steps)", title="The same fit on each backend")
plt.show()
for backend in backends:
    print(f"{backend:>6}: {seconds[backend] / 3 * 1e3:8.1f} ms per epoch, "
          f"{seconds['numpy'] / seconds[backend]:5.1f}x the numpy reference's speed")

# the same parameters on every backend, to float32 rounding (relative to the largest weight)
reference_weights, _ = fitted["numpy"].get_parameters()
for backend in backends:
    for W, R in zip(fitted[backend].get_parameters()[0], reference_weights):
        assert np.abs(W - R).max() <= 1e-4 * np.abs(R).max(), backend

# %% [markdown]
# ## Where to go from here
#
# - `README.md`: *The lecture, executed* lists the test that checks each claim of the
#   lecture on every backend; *Two choices the lecture leaves open* explains L1's clipping
#   at 0 and inverted dropout.
# - `mlp train` trains the lecture's 784-256-10 network on Fashion-MNIST; `mlp search`
#   tunes α⁽ʲ⁾, β⁽ʲ⁾ and the keep probabilities on a validation split.
# - `kernels/numpy_backend.py` is the reference of every kernel, `kernels/cpu_backend.py`
#   and `kernels/cuda/` the fast versions, checked against it.
