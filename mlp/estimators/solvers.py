"""The estimators' solvers: scikit-learn's epoch loop on a training engine, and L-BFGS.

``fit_stochastic`` is scikit-learn's ``_fit_stochastic`` with the minibatch loop
handed to the network's engine (``mlp.engines``: one compiled call per epoch on
"cpu"): the same validation split, shuffles, batch sizes, update rules (SGD with
momentum or Nesterov's, Adam with bias correction), learning-rate schedules,
loss curve, no-improvement count and messages. ``fit_lbfgs`` minimises the full
network's loss with ``scipy.optimize.minimize(method="L-BFGS-B")`` on
``MLP.loss_and_gradients``.

alpha keeps scikit-learn's meaning: its penalty (alpha/2)||W||^2 is divided by the
rows of each minibatch (by all rows for L-BFGS), on top of the lecture's l2/l1.

Both run on the estimator's ``threads`` (``mlp.threads.ThreadChooser``): "auto"
times minibatch steps of a throwaway copy (stochastic solvers), or loss and
gradient evaluations of the network on its first rows (L-BFGS), and times
again after an epoch (an evaluation) far slower than the one before. The
setting and the counts used go to ``net_.metadata["threads"]``.

Divergence is scikit-learn's: a loss or parameter that becomes NaN or inf raises
its ValueError, the parameters of the last finite epoch kept. The trainer's
watch for a loss far above its start or a network become constant
(``mlp.divergence.DivergenceWatch``) is deliberately not applied: the estimators
promise scikit-learn's results (the same loss curve, ``n_iter_`` and exceptions
on the same data), and scikit-learn lets such a fit run to its end. Its
``loss_curve_`` shows the explosion; ``mlp.MLP.fit`` stops it.
"""
import time
import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import shuffle as shuffled

from ..config import TrainConfig
from ..engines import make_engine
from ..threads import ThreadChooser, training_probe

#: Rows of the loss and gradient evaluations "auto" times for L-BFGS: a few milliseconds each on
#: 784-256-10, where timing all rows would cost several evaluations of the fit.
PROBE_ROWS = 256

# What scikit-learn raises when a fit ends with NaN or inf in the parameters.
NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large values and "
              "need to be preprocessed.")


# ---------------------------------------------------------------- stochastic solvers
def fit_stochastic(est, X, targets, incremental, sample_weight=None):
    """One fit (or one ``partial_fit`` epoch) of ``est.net_`` with "sgd" or "adam", in place.

    ``sample_weight``: None or (n,) float64 weights (scikit-learn's weighting, see ``mlp.propagation.weight_rows``).
    """
    net = est.net_
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    X_val = T_val = sw_val = None
    if est.early_stopping:
        stratify = targets if est.n_outputs_ == 1 and hasattr(est, "classes_") else None
        arrays = (X, targets) if sample_weight is None else (X, targets, sample_weight)
        parts = train_test_split(*arrays, random_state=est._random_state, test_size=est.validation_fraction,
                                 stratify=stratify)
        X, X_val, targets, T_val = parts[:4]
        if sample_weight is not None:
            sample_weight, sw_val = parts[4:]
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                             "your dataset.")
    n = X.shape[0]
    batch = _batch_size(est.batch_size, n)
    l2, l1, keep = est.per_layer_settings()
    config = TrainConfig(
        batch_size=batch, learning_rate=est.learning_rate_init, optimizer="adam" if est.solver == "adam" else "sgd",
        momentum=est.momentum if est.solver == "sgd" else 0.0, nesterov=bool(est.nesterovs_momentum),
        beta_1=est.beta_1, beta_2=est.beta_2, epsilon=est.epsilon, alpha=est.alpha, keep_prob=keep,
        dropout_mode=est.dropout_mode,
        # dropout's generator is seeded from the random state only when there is dropout, so that
        # without it the random state is consumed exactly as scikit-learn's
        seed=int(est._random_state.randint(2**31 - 1)) if min(keep) < 1 else 0)
    engine = make_engine(net, config, X, targets, batch, l2, l1, keep, sample_weight)
    if est._optimizer_state is not None:
        engine.set_optimizer_state(est._optimizer_state)
    # partial_fit's epochs continue "auto"'s decision (timing on each call would cost more than a small epoch)
    decision = getattr(est, "_thread_decision", None) if incremental else None
    decided = dict(zip(("count", "previous_seconds"), decision)) if decision and est.threads == "auto" else {}
    threads = ThreadChooser.for_net(
        est.threads, net, lambda: training_probe(net, config, X, targets, batch, l2, l1, keep, sample_weight),
        **decided)
    steps = -(-n // batch)
    sample_idx = np.arange(n)
    est.n_iter_ = 0
    with threads:
        try:
            for _ in range(est.max_iter):
                start = time.perf_counter()
                if est.shuffle:
                    sample_idx = shuffled(sample_idx, random_state=est._random_state)
                _epoch(est, engine, sample_idx, steps, l2, l1)
                if est.verbose:
                    print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))
                _update_no_improvement_count(est, X_val, T_val, sw_val)
                threads.epoch_done(time.perf_counter() - start)
                if est.solver == "sgd" and est.learning_rate == "invscaling":
                    est._learning_rate = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t
                if est._no_improvement_count > est.n_iter_no_change:
                    if _trigger_stopping(est):
                        break
                    est._no_improvement_count = 0
                if incremental:
                    break
                if est.n_iter_ == est.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the optimization "
                                  "hasn't converged yet." % est.max_iter, ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
    est._thread_decision = (threads.count, threads.previous_seconds)
    net.metadata = dict(net.metadata, threads=threads.summary())
    est._optimizer_state = engine.get_optimizer_state()
    if est.early_stopping:
        net.set_parameters(*est._best_parameters)


def _batch_size(batch_size, n):
    if batch_size == "auto":
        return min(200, n)
    if batch_size > n:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
    return int(np.clip(batch_size, 1, n))


def _epoch(est, engine, order, steps, l2, l1):
    """Train one epoch; record loss_, loss_curve_, t_, n_iter_. ValueError (scikit-learn's) on divergence.

    A diverging epoch is undone first: the estimator keeps the last finite parameters and optimizer state.
    """
    net = est.net_
    n = order.shape[0]
    parameters, state = net.get_parameters(), engine.get_optimizer_state()
    with np.errstate(over="ignore", invalid="ignore"):
        result = engine.run_epoch(order, est._learning_rate, est._step)
        # the loss of each minibatch counts alpha's penalty once: (alpha/2)||W||^2 / rows * rows, over n rows
        penalty = sum(net.kernels.regularization_loss(W, a + est.alpha * steps / n, b)
                      for W, a, b in zip(net.weights, l2, l1))
    loss = result.loss_sum / n + penalty
    K = net.kernels
    finite = all(np.isfinite(K.to_host(P)).all() for P in list(net.weights) + list(net.biases))
    if result.diverged or not np.isfinite(loss) or not finite:
        net.set_parameters(*parameters)
        engine.set_optimizer_state(state)
        raise ValueError(f"{NON_FINITE} The loss diverged in epoch {est.n_iter_ + 1} (learning rate "
                         f"{est._learning_rate:g}); the parameters of the last finite epoch were kept.")
    est._step += steps
    est.n_iter_ += 1
    est.t_ += n
    est.loss_ = float(loss)
    est.loss_curve_.append(est.loss_)


def _update_no_improvement_count(est, X_val, T_val, sw_val):
    """scikit-learn's rule: count epochs without an improvement by tol (validation score or training loss)."""
    if X_val is not None:
        score = est._score_targets(X_val, T_val, sw_val)
        est.validation_scores_.append(score)
        if est.verbose:
            print("Validation score: %f" % score)
        if score < est.best_validation_score_ + est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            est._best_parameters = est.net_.get_parameters()
    else:
        if est.loss_curve_[-1] > est.best_loss_ - est.tol:
            est._no_improvement_count += 1
        else:
            est._no_improvement_count = 0
        if est.loss_curve_[-1] < est.best_loss_:
            est.best_loss_ = est.loss_curve_[-1]


def _trigger_stopping(est):
    """After n_iter_no_change epochs without improvement: True to stop (the "adaptive" rate is divided first)."""
    what = "Validation score" if est.early_stopping else "Training loss"
    msg = f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."
    if est.solver == "sgd" and est.learning_rate == "adaptive":
        if est._learning_rate <= 1e-6:
            if est.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        est._learning_rate /= 5.0
        if est.verbose:
            print(msg + " Setting learning rate to %f" % est._learning_rate)
        return False
    if est.verbose:
        print(msg + " Stopping.")
    return True


# ---------------------------------------------------------------- L-BFGS
def fit_lbfgs(est, X, targets, sample_weight=None):
    """Minimise the full network's regularised loss with L-BFGS-B (maxiter=max_iter, maxfun=max_fun, gtol=tol)."""
    net = est.net_
    l2, l1, keep = est.per_layer_settings()
    if min(keep) < 1:
        raise ValueError("keep_prob < 1 (dropout) needs a stochastic solver ('sgd' or 'adam'); 'lbfgs' "
                         "minimises the full network's loss")
    weight = X.shape[0] if sample_weight is None else float(sample_weight.sum())
    l2 = [a + est.alpha / weight for a in l2]
    threads = ThreadChooser.for_net(est.threads, net, lambda: _gradient_probe(net, X, targets, l2, l1, sample_weight))
    shapes = [tuple(W.shape) for W in net.weights] + [tuple(b.shape) for b in net.biases]
    ends = np.cumsum([int(np.prod(s)) for s in shapes])

    def unpack(theta):
        arrays = [part.reshape(shape) for part, shape in zip(np.split(theta, ends[:-1]), shapes)]
        return arrays[:net.n_layers], arrays[net.n_layers:]

    def loss_and_gradient(theta):
        start = time.perf_counter()
        net.set_parameters(*unpack(theta))
        loss, grads = net.loss_and_gradients(X, targets, l2=l2, l1=l1, sample_weight=sample_weight)
        gradient = np.concatenate([g[0].ravel() for g in grads] + [g[1].ravel() for g in grads]).astype(np.float64)
        threads.epoch_done(time.perf_counter() - start)  # an evaluation is L-BFGS's pass over the data
        return loss, gradient

    weights, biases = net.get_parameters()
    theta0 = np.concatenate([P.ravel() for P in weights + biases]).astype(np.float64)
    with threads, np.errstate(over="ignore", invalid="ignore"):
        result = scipy.optimize.minimize(loss_and_gradient, theta0, method="L-BFGS-B", jac=True,
                                         options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol})
    net.metadata = dict(net.metadata, threads=threads.summary())
    if result.status != 0:
        warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) (status={result.status}):\n"
                      f"{result.message}\n\nIncrease the number of iterations to improve the convergence "
                      f"(max_iter={est.max_iter}).\nYou might also want to scale the data.", ConvergenceWarning)
    est.n_iter_ = min(result.nit, est.max_iter)
    est.loss_ = float(result.fun)
    net.set_parameters(*unpack(result.x))


def _gradient_probe(net, X, targets, l2, l1, sample_weight):
    """What "auto" times for L-BFGS: the loss and gradient of ``net`` on the first rows (no parameter changes)."""
    rows = min(X.shape[0], PROBE_ROWS)
    weights = None if sample_weight is None else sample_weight[:rows]

    def step():
        with np.errstate(over="ignore", invalid="ignore"):
            net.loss_and_gradients(X[:rows], targets[:rows], l2=l2, l1=l1, sample_weight=weights)

    return step
