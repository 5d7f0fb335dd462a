"""The multilayer perceptron: parameters, forward propagation and back-propagation; saving and loading.

``MLP`` is the library's one user-facing object: it holds the parameters on
its backend and computes with that backend's kernels (``net.kernels``);
``fit`` hands it to ``mlp.trainer``, ``save`` / ``load_model`` to the file
format of ``mlp.persistence``.
"""
import dataclasses

import numpy as np

import kernels

from kernels.codes import ACTIVATIONS, OUTPUTS, activation_code

from . import checks, persistence, trainer
from .config import TrainConfig
from .defaults import NETWORK, THREADS, TRAINING
from .evaluation import evaluate, mc_dropout_average, outputs_in_chunks
from .init import INITS, init_parameters
from .progress import epoch_progress
from .propagation import Workspace, backward, forward, forward_pass, output_activations, output_loss, weight_rows


class MLP:
    """A fully connected network of ReLU hidden layers, as in the lecture (or tanh, logistic, identity).

    Parameters
    ----------
    layer_sizes : sequence of int
        Input first, e.g. ``[784, 256, 10]``: the lecture's 3-layer network.
        Any number of hidden layers.
    output : {"softmax", "identity", "logistic", "exp"}
        Softmax with mean cross-entropy (classification, integer labels),
        identity with squared error (1/2n) sum ||y_hat - y||^2 (regression),
        logistic with mean binary cross-entropy (binary and multilabel
        classification, 0/1 targets), exp with half the Poisson deviance
        (counts). See ``kernels.codes.OUTPUTS``.
    activation : {"relu", "tanh", "logistic", "identity"}
        The hidden layers' activation f; "relu" is the lecture's.
    init : {"normal", "zeros", "he", "xavier"}
        "normal" is the lecture's: W ~ N(0, 1/cols(W)), biases zero. See ``mlp.init``.
    seed : int in [0, 2**63) or None
        Seeds the initial weights.
    dtype : float32 or float64
    backend : {"auto", "cpu", "numpy", "cuda"}
        Which kernels compute; see ``kernels.get_backend``.

    Attributes
    ----------
    kernels : module
        The backend's kernels (``kernels.get_backend(backend)``).
    weights : list of arrays, ``weights[l]`` of shape (layer_sizes[l+1], layer_sizes[l])
    biases : list of arrays, ``biases[l]`` of shape (layer_sizes[l+1],)
        The live parameters: writing into them (``net.weights[0][...] = W``)
        changes the model. They are arrays of the backend: NumPy arrays on
        "numpy" and "cpu", numba device arrays on "cuda" (use
        ``get_parameters`` / ``set_parameters`` for host copies there).
    """

    def __init__(self, layer_sizes, *, output=NETWORK["output"], activation=NETWORK["activation"],
                 init=NETWORK["init"], seed=None, dtype=NETWORK["dtype"], backend=NETWORK["backend"]):
        self.layer_sizes = checks.check_layer_sizes(layer_sizes)
        self.output = checks.check_choice("output", output, OUTPUTS)
        self.activation = checks.check_choice("activation", activation, ACTIVATIONS)
        self.init = checks.check_choice("init", init, INITS)
        self.dtype = checks.check_dtype(dtype)
        self.backend = kernels.resolve_backend_name(backend)
        self.kernels = kernels.get_backend(self.backend)
        if self.output == "softmax" and self.layer_sizes[-1] < 2:
            raise ValueError(f"a softmax output needs at least 2 classes; got layer_sizes {self.layer_sizes}")
        seed = checks.check_seed("seed", seed, allow_none=True)  # before NumPy, whose messages never say "seed"
        weights, biases = init_parameters(self.layer_sizes, self.init, np.random.default_rng(seed), self.dtype)
        self.weights = [self.kernels.to_device(W) for W in weights]
        self.biases = [self.kernels.to_device(b) for b in biases]

    # ------------------------------------------------------------ shape facts
    @property
    def n_layers(self):
        """Number of weight matrices (the lecture's 3-layer net has 2)."""
        return len(self.layer_sizes) - 1

    @property
    def n_features(self):
        return self.layer_sizes[0]

    @property
    def n_outputs(self):
        return self.layer_sizes[-1]

    def __repr__(self):
        return (f"MLP({self.layer_sizes}, output={self.output!r}, activation={self.activation!r}, "
                f"dtype={np.dtype(self.dtype).name}, backend={self.backend!r})")

    def __str__(self):
        return self.summary()

    def summary(self):
        """A table of the layers (units, function, the shapes of W and b, parameter counts), the total,
        the dtype and the backend, as a str; ``print(net)`` shows it."""
        rows = [("layer", "units", "function", "W", "b", "parameters"),
                ("input", f"{self.n_features}", "-", "-", "-", "0")]
        for l in range(self.n_layers):
            W, b = tuple(self.weights[l].shape), tuple(self.biases[l].shape)
            last = l == self.n_layers - 1
            rows.append(("output" if last else f"hidden {l + 1}", f"{self.layer_sizes[l + 1]}",
                         self.output if last else self.activation, str(W), str(b),
                         f"{int(np.prod(W)) + int(np.prod(b)):,}"))
        widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
        # Names and functions read left-aligned, numbers and shapes right-aligned.
        lines = ["  ".join(cell.ljust(w) if c in (0, 2) else cell.rjust(w)
                           for c, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
        total = sum(int(np.prod(A.shape)) for A in (*self.weights, *self.biases))
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"total parameters: {total:,}")
        lines.append(f"dtype: {np.dtype(self.dtype).name}, backend: {self.backend}")
        return "\n".join([f"MLP {'-'.join(map(str, self.layer_sizes))}"] + lines)

    # ------------------------------------------------------------ parameters
    def get_parameters(self):
        """Host copies: (weights, biases), lists of NumPy arrays."""
        K = self.kernels
        return [K.to_host(W).copy() for W in self.weights], [K.to_host(b).copy() for b in self.biases]

    def set_parameters(self, weights, biases):
        """Copy host arrays into the model's parameters (shapes must match; values finite)."""
        if len(weights) != self.n_layers or len(biases) != self.n_layers:
            raise ValueError(f"expected {self.n_layers} weight matrices and bias vectors; "
                             f"got {len(weights)} and {len(biases)}")
        new_w, new_b = [], []
        for l, (W, b) in enumerate(zip(weights, biases)):
            W, b = checks.numeric_array(f"weights[{l}]", W), checks.numeric_array(f"biases[{l}]", b)
            if W.shape != tuple(self.weights[l].shape) or b.shape != tuple(self.biases[l].shape):
                raise ValueError(f"layer {l}: expected W {tuple(self.weights[l].shape)} and b "
                                 f"{tuple(self.biases[l].shape)}; got {W.shape} and {b.shape}")
            new_w.append(checks.to_dtype(f"weights[{l}]", W, self.dtype))
            new_b.append(checks.to_dtype(f"biases[{l}]", b, self.dtype))
        self.weights = [self.kernels.to_device(W) for W in new_w]
        self.biases = [self.kernels.to_device(b) for b in new_b]

    def to_backend(self, backend):
        """A copy of this model on another backend (same parameters)."""
        other = MLP(self.layer_sizes, output=self.output, activation=self.activation, init="zeros",
                    dtype=self.dtype, backend=backend)
        other.set_parameters(*self.get_parameters())
        return other

    # ------------------------------------------------------------ propagation
    def _check_masks(self, masks, n):
        if masks is None:
            return None
        masks = list(masks)
        if len(masks) != self.n_layers:
            raise ValueError(f"masks needs one entry per non-output layer (input first): "
                             f"{self.n_layers}; got {len(masks)}")
        checked = []
        for j, m in enumerate(masks):
            if m is None:
                checked.append(None)
                continue
            width = self.layer_sizes[j]
            m = checks.numeric_array(f"masks[{j}]", m)
            if m.shape == (width,):
                m = np.broadcast_to(m, (n, width))
            if m.shape != (n, width):
                raise ValueError(f"masks[{j}] must have shape ({width},) or ({n}, {width}); got {m.shape}")
            checked.append(self.kernels.to_device(checks.to_dtype(f"masks[{j}]", m, self.dtype)))
        return checked

    def _rows(self, X):
        """(X as rows, whether X was one example): a 1-D X of n_features values is one example.

        A 1-D X is read as one example only when the network has more than one
        input feature: with one, it could as well be n examples of that feature,
        so it is refused and the message says how to reshape it.
        """
        X = checks.numeric_array("X", X)  # None, sparse, ragged, complex: named before NumPy reads them
        if X.ndim != 1:
            return X, False
        if self.n_features == 1:
            raise ValueError(f"X of shape {np.shape(X)} is ambiguous for a network of one input feature: "
                             "pass X.reshape(-1, 1) for that many examples, or X.reshape(1, 1) for one")
        if np.shape(X)[0] != self.n_features:
            raise ValueError(f"a single example must be a vector of {self.n_features} features; "
                             f"got shape {np.shape(X)}")
        return np.reshape(X, (1, -1)), True

    def _run_forward(self, X, masks):
        X = checks.check_X(X, self.n_features, self.dtype)
        n = X.shape[0]
        ws = Workspace(self.kernels, self.layer_sizes, n, self.dtype)
        masks = self._check_masks(masks, n)
        inputs = forward(self.kernels, self.weights, self.biases, self.kernels.to_device(X), ws, masks,
                         activation=activation_code(self.activation))
        return ws, inputs, masks, n

    def forward(self, X, *, masks=None):
        """Forward propagation: the output activations.

        Parameters
        ----------
        X : array (n, n_features) of numbers (bools are 0 and 1), or (n_features,) for one example
            A 1-D X is one example when n_features > 1; a network of one
            input feature refuses a 1-D X (n examples or one? reshape it).
        masks : None or list of n_layers arrays, each (n, width) or (width,)
            Multiplied into the input and each hidden layer's activations
            exactly as given (include any 1/keep scaling yourself). An entry may
            be None. A 0 removes that neuron from the network, as the lecture's
            dropout does.

        Returns
        -------
        array (n, n_outputs), or (n_outputs,) for a 1-D X: the output activations
        (softmax or logistic probabilities, the identity output, or exp's
        predicted means).
        """
        X, one = self._rows(X)
        ws, _, _, _ = self._run_forward(X, masks)
        out = output_activations(self.kernels, self.output, ws)
        return out[0] if one else out

    def forward_pass(self, X, *, masks=None):
        """Forward propagation keeping all it computes: ``ForwardPass(z, h, y_hat)`` of host arrays.

        z[l] = h[l-1] W[l]^T + b[l] (with h[-1] read as X; z[-1] are the logits) and
        h[l] = f(z[l]) times masks[l+1]: the lecture's z(l+1), h(l+1). y_hat is what
        ``forward`` returns. X (n, n_features) and ``masks`` as in ``forward``.
        """
        ws, _, _, _ = self._run_forward(X, masks)
        return forward_pass(self.kernels, self.output, ws)

    def predict(self, X):
        """Class indices (n,) for softmax, 0/1 indicators (n, n_outputs) for logistic, else the outputs.

        X is (n, n_features), or (n_features,) for one example (as in ``forward``):
        then a scalar class index (softmax) or one row (n_outputs,).
        """
        X, one = self._rows(X)
        out = self.forward(X)
        if self.output == "softmax":
            predicted = out.argmax(axis=1)
        elif self.output == "logistic":
            predicted = (out > 0.5).astype(np.int64)
        else:
            predicted = out
        return predicted[0] if one else predicted

    def evaluate(self, X, Y):
        """(loss, accuracy) of the full network on (X, Y), as the trainer's ``val_loss`` and ``val_accuracy``.

        The loss is the mean data loss (cross-entropy, squared error...) of the
        full network, without the l1/l2 penalty: it compares networks trained
        with different penalties. Evaluated in chunks of rows
        (``mlp.evaluation.evaluate``).

        Parameters
        ----------
        X : array (n, n_features)
        Y : softmax: int labels (n,) or one-hot (n, n_classes); otherwise targets (n, n_outputs)
            (in [0, 1] for logistic, >= 0 for exp)

        Returns
        -------
        loss : float
        accuracy : float, or None for an output other than softmax
        """
        X = checks.check_X(X, self.n_features, self.dtype)
        return evaluate(self, X, self._targets(Y, X.shape[0]))

    def _targets(self, Y, n):
        """Y checked as the trainer checks it for this output: labels (n,) int64, or targets (n, n_outputs)."""
        if self.output == "softmax":
            return checks.check_labels(Y, n, self.n_outputs)
        targets = checks.check_targets(Y, n, self.n_outputs, self.dtype)
        # the logistic output's cross-entropy needs targets in [0, 1], the Poisson loss counts >= 0
        low, high = {"logistic": (0, 1), "exp": (0, np.inf)}.get(self.output, (-np.inf, np.inf))
        if targets.min() < low or targets.max() > high:
            raise ValueError(f"a {self.output!r} output needs targets in [{low}, {high}]; "
                             f"got values in [{targets.min()}, {targets.max()}]")
        return targets

    def loss_and_gradients(self, X, Y, *, l2=0.0, l1=0.0, masks=None, sample_weight=None):
        """The regularised loss and its gradient with respect to every parameter.

        loss = data loss + sum_l (l2[l]/2) ||W_l||_F^2 + l1[l] |W_l|, where the data
        loss is the mean cross-entropy (softmax) or (1/2n) sum ||y_hat - y||^2
        (identity). Biases are not regularised.

        Parameters
        ----------
        X : array (n, n_features)
        Y : softmax: int labels (n,) or one-hot (n, n_classes); otherwise targets (n, n_outputs)
        l2, l1 : float or sequence of n_layers floats (the lecture's alpha(j), beta(j))
        masks : as in ``forward``
        sample_weight : None or (n,) weights, not all zero: the data loss becomes
            sum_i w_i l_i / sum_i w_i (``mlp.propagation.weight_rows``; host backends)

        Returns
        -------
        loss : float
        grads : list of (dW_l, db_l) host arrays with the parameters' shapes
        """
        l2 = checks.per_layer("l2", l2, self.n_layers)
        l1 = checks.per_layer("l1", l1, self.n_layers)
        X = checks.check_X(X, self.n_features, self.dtype)
        n = X.shape[0]
        if self.output == "softmax":
            targets = checks.check_labels(Y, n, self.n_outputs)
        else:
            targets = checks.check_targets(Y, n, self.n_outputs, self.dtype)
        K = self.kernels
        if sample_weight is not None:
            sample_weight = checks.check_sample_weight(sample_weight, n)
            if self.backend == "cuda":
                raise ValueError("sample_weight needs a host backend ('cpu' or 'numpy'); this network is on 'cuda'")
        ws, inputs, masks, _ = self._run_forward(X, masks)
        output_loss(K, self.output, ws, K.to_device(targets))
        loss = float(K.to_host(ws.loss)[0])
        if sample_weight is not None:
            loss = weight_rows(self.output, ws.Z[-1], targets, sample_weight, ws.delta[-1])
        backward(K, self.weights, inputs, ws, masks, activation=activation_code(self.activation))
        grads = []
        for l in range(self.n_layers):
            K.add_regularization_grad(self.weights[l], ws.dW[l], l2[l], l1[l])
            loss += K.regularization_loss(self.weights[l], l2[l], l1[l])
            grads.append((K.to_host(ws.dW[l]).copy(), K.to_host(ws.db[l]).copy()))
        return loss, grads

    # ------------------------------------------------------------ training, persistence, inference
    @property
    def metadata(self):
        """A JSON-serialisable dict saved with the model: the trainer puts its hyper-parameters
        here after ``fit``; ``mlp.load`` restores it. Empty for a fresh network."""
        if "_metadata" not in self.__dict__:
            self._metadata = {}
        return self._metadata

    @metadata.setter
    def metadata(self, value):
        if not isinstance(value, dict):
            raise TypeError(f"metadata must be a dict; got {type(value).__name__}")
        self._metadata = dict(value)

    @property
    def class_names(self):
        """The name of each output, label order: ``metadata["class_names"]`` when it holds one str per output
        (``mlp train`` saves the data set's there), else "0", "1", ..., str(n_outputs - 1)."""
        names = self.metadata.get("class_names")
        if isinstance(names, list) and len(names) == self.n_outputs and all(isinstance(n, str) for n in names):
            return tuple(names)
        return tuple(str(k) for k in range(self.n_outputs))

    def fit(self, X, y, *, X_val=None, y_val=None,
            epochs=TRAINING["epochs"], batch_size=TRAINING["batch_size"], learning_rate=TRAINING["learning_rate"],
            optimizer=TRAINING["optimizer"], momentum=TRAINING["momentum"], nesterov=TRAINING["nesterov"],
            beta_1=TRAINING["beta_1"], beta_2=TRAINING["beta_2"], epsilon=TRAINING["epsilon"],
            lr_schedule=TRAINING["lr_schedule"], lr_decay=TRAINING["lr_decay"],
            warmup_epochs=TRAINING["warmup_epochs"], power_t=TRAINING["power_t"],
            alpha=TRAINING["alpha"], l2=TRAINING["l2"], l1=TRAINING["l1"], keep_prob=TRAINING["keep_prob"],
            dropout_mode=TRAINING["dropout_mode"], validation_fraction=TRAINING["validation_fraction"],
            early_stopping=TRAINING["early_stopping"], patience=TRAINING["patience"], tol=TRAINING["tol"],
            monitor=TRAINING["monitor"], seed=TRAINING["seed"], threads=THREADS, verbose=False,
            callback=None, checkpoint_path=None, resume=False):
        """Train in place with minibatch SGD (``mlp.Trainer``); returns the ``History``, one record per epoch.

        The defaults are the library's one set, ``mlp.defaults.TRAINING``: the main job of
        ``mlp train`` (momentum 0.9, a cosine schedule over 60 epochs, batch 128, L2 5e-5).
        ``**mlp.defaults.PLAIN_SGD`` gives the lecture's plain update rule instead.

        Parameters
        ----------
        X : array (n, n_features)
        y : softmax: int labels (n,) or one-hot (n, n_classes); otherwise targets (n, n_outputs)
        X_val, y_val : a validation set, or None (see ``validation_fraction``)
        epochs, batch_size : int >= 1; the last minibatch of an epoch holds the remaining examples
        learning_rate : float > 0
        optimizer : "sgd" (with ``momentum`` in [0, 1) and ``nesterov``) or "adam" (with ``beta_1``,
            ``beta_2`` in [0, 1) and ``epsilon`` > 0)
        lr_schedule : "cosine", "decay" (lr / (1 + lr_decay e)), "invscaling" (``power_t``) or "adaptive"
            (lr / 5 after ``patience`` epochs without improvement); ``warmup_epochs``: a linear warm-up
        alpha : float >= 0, scikit-learn's L2 (divided by the minibatch's rows)
        l2, l1 : float >= 0, or one per weight matrix: the lecture's alpha(j), beta(j)
        keep_prob : float in (0, 1], or one per non-output layer (input first): dropout
        dropout_mode : "per_sample" (a mask per example) or "per_batch" (the lecture's reduced network)
        validation_fraction : float in [0, 1): a stratified validation part of X when X_val is None
        early_stopping : bool; stop after ``patience`` epochs without ``monitor`` improving by ``tol``
        seed : int in [0, 2**63); shuffling, dropout masks, the validation split
        threads : "auto", int >= 1 or None (``mlp.threads``); an int reproduces a fit to the bit
        verbose : bool; a progress bar over the epochs on stderr, as ``mlp train`` shows (needs tqdm)
        callback : callable(record) -> bool, or None; after each epoch, True stops training
        checkpoint_path, resume : write a checkpoint after every epoch; continue from it
        The others are the fields of ``mlp.TrainConfig``, which says more.
        """
        arguments = locals()  # the TrainConfig fields, by name: written once, in the signature
        config = TrainConfig(**{field.name: arguments[field.name] for field in dataclasses.fields(TrainConfig)})
        bar = None
        if verbose:
            bar, advance = epoch_progress(epochs)
            user_callback = callback

            def callback(record):
                advance(record)
                return user_callback is not None and bool(user_callback(record))
        try:
            return trainer.Trainer(self, config, threads=threads).fit(
                X, y, X_val=X_val, y_val=y_val, callback=callback, checkpoint_path=checkpoint_path, resume=resume)
        finally:
            if bar is not None:
                bar.close()

    def save(self, path, metadata=None):
        """Save to ``path`` (.npz, atomically); ``metadata`` None saves ``self.metadata``. See ``mlp.persistence``."""
        persistence.save_model(self, path, metadata)

    def predict_proba(self, X):
        """Class probabilities (n, n_classes) of the full network (softmax or logistic output).

        X is (n, n_features), or (n_features,) for one example (as in ``forward``):
        then the probabilities are (n_classes,). With inverted dropout in training,
        the full network is the inference network unchanged.
        """
        if self.output not in ("softmax", "logistic"):
            raise ValueError(f"predict_proba needs a softmax or logistic output; this network's output is "
                             f"{self.output!r}")
        X, one = self._rows(X)
        probs = outputs_in_chunks(self, checks.check_X(X, self.n_features, self.dtype))
        return probs[0] if one else probs

    def mc_dropout_proba(self, X, keep_prob, n_samples=20, seed=0):
        """The lecture's "ensemble of many smaller networks": mean probabilities of sampled reduced networks.

        Network k (k = 0 .. n_samples-1) removes each input/hidden unit j of
        masked layer i independently with probability 1 - keep_prob[i], the same
        reduced network for every example (mask (width,) from stream
        ``k * n_layers + i`` of ``K.dropout_mask(seed, ...)``), with kept units
        scaled by 1/keep as in training.

        Parameters
        ----------
        X : array (n, n_features)
        keep_prob : float or one per non-output layer (input first), in (0, 1]
        n_samples : int >= 1
        seed : int in [0, 2**63)

        Returns
        -------
        array (n, n_classes): the average of the n_samples networks' softmax outputs.
        """
        if self.output != "softmax":
            raise ValueError(f"mc_dropout_proba needs a softmax output; this network's output is {self.output!r}")
        keep = checks.check_keep_probs(keep_prob, self.n_layers)
        n_samples = checks.check_int("n_samples", n_samples, minimum=1)
        seed = checks.check_seed("seed", seed)
        X = checks.check_X(X, self.n_features, self.dtype)
        return mc_dropout_average(self, X, keep, n_samples, seed)


def load_model(path, backend="auto"):
    """Load a model saved by ``save_model`` (or the live parameters of a trainer checkpoint).

    Parameters
    ----------
    path : str or os.PathLike
    backend : {"auto", "cpu", "numpy", "cuda"}
        Any backend: files hold host arrays.

    Returns
    -------
    mlp.MLP with ``metadata`` set from the file.

    Raises
    ------
    ValueError
        truncated, corrupted, foreign or newer-format file (the message says which).
    FileNotFoundError
        no file at ``path``.
    """
    layer_sizes, output, activation, dtype, weights, biases, metadata = persistence.parse_model(
        persistence.read_npz(path), path)
    net = MLP(layer_sizes, output=output, activation=activation, init="zeros", dtype=dtype, backend=backend)
    net.set_parameters(weights, biases)
    net.metadata = metadata
    return net
