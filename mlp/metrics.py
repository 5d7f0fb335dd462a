"""Classification metrics: the confusion matrix, and per-class precision, recall, F1 and support from it.

For class k, with tp the examples of class k predicted as k, fp those of other
classes predicted as k and fn those of class k predicted as another:
precision = tp / (tp + fp), recall = tp / (tp + fn), F1 = 2 tp / (2 tp + fp + fn)
(the harmonic mean of the two), support = tp + fn. A ratio with a zero
denominator (a class never predicted, or absent from the labels) is 0, as in
scikit-learn's ``classification_report`` with ``zero_division=0``.
"""
from typing import NamedTuple

import numpy as np

from .checks import check_int, check_labels


class ClassScores(NamedTuple):
    """Per-class scores; each field has shape (n_classes,), class k at index k."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray  # int64: the examples of each class


def confusion_matrix(y_true, y_pred, n_classes):
    """Counts of (true class, predicted class) pairs.

    Parameters
    ----------
    y_true, y_pred : int arrays (n,)
        Labels in [0, n_classes), the true ones and the predicted ones.
    n_classes : int >= 1

    Returns
    -------
    array (n_classes, n_classes), int64
        ``C[i, j]``: the examples of class i predicted as class j; rows sum to
        the support of each class, the diagonal holds the correct predictions.
    """
    n_classes = check_int("n_classes", n_classes, minimum=1)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape; got {y_true.shape} and {y_pred.shape}")
    if y_true.ndim != 1 or y_true.size == 0:
        raise ValueError(f"y_true and y_pred must be non-empty 1-D arrays of labels; got shape {y_true.shape}")
    y_true = check_labels(y_true, y_true.shape[0], n_classes)
    y_pred = check_labels(y_pred, y_pred.shape[0], n_classes)
    # Each (i, j) pair as the one index i * n_classes + j: a single bincount counts them all.
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def class_scores(confusion):
    """Precision, recall, F1 and support of every class from a confusion matrix (see the module's formulas).

    Parameters
    ----------
    confusion : int array (n_classes, n_classes)
        As returned by :func:`confusion_matrix`: rows the true classes.

    Returns
    -------
    ClassScores
    """
    C = np.asarray(confusion)
    if C.ndim != 2 or C.shape[0] != C.shape[1] or not np.issubdtype(C.dtype, np.integer) or (C < 0).any():
        raise ValueError(f"confusion must be a square matrix of counts >= 0; got shape {C.shape}, dtype {C.dtype}")
    tp = np.diag(C).astype(np.float64)
    predicted = C.sum(axis=0)
    support = C.sum(axis=1)
    return ClassScores(precision=_ratio(tp, predicted), recall=_ratio(tp, support),
                       f1=_ratio(2 * tp, predicted + support), support=support.astype(np.int64))


def _ratio(numerator, denominator):
    """numerator / denominator elementwise, 0 where the denominator is 0."""
    out = np.zeros(numerator.shape, np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def averages(scores):
    """The macro average (every class alike) and the support-weighted average of precision, recall and F1.

    Parameters
    ----------
    scores : ClassScores

    Returns
    -------
    dict
        ``{"macro avg": {"precision": p, "recall": r, "f1": f}, "weighted avg": {...}}`` of floats,
        as the last rows of scikit-learn's ``classification_report``.
    """
    weights = scores.support / scores.support.sum() if scores.support.sum() else None
    fields = ("precision", "recall", "f1")
    return {
        "macro avg": {k: float(np.mean(getattr(scores, k))) for k in fields},
        "weighted avg": {k: float(np.average(getattr(scores, k), weights=weights)) for k in fields},
    }
