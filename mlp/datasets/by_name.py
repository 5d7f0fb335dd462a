"""``load_dataset``: one of the data sets by name, its arguments routed to the right loader."""
from ..checks import check_choice
from .dataset import Dataset
from .digits import load_digits
from .mnist import load_fashion_mnist, load_mnist
from .synthetic import make_synthetic

#: Names accepted by :func:`load_dataset`.
DATASETS = ("fashion-mnist", "mnist", "digits", "synthetic")


def load_dataset(name, path=None, **kw) -> Dataset:
    """Load a data set by name.

    Parameters
    ----------
    name : str
        One of ``"fashion-mnist"``, ``"mnist"``, ``"digits"``, ``"synthetic"``
        (case-insensitive; ``_`` may replace ``-``).
    path : str or os.PathLike, optional
        Directory of IDX files, for ``"fashion-mnist"`` and ``"mnist"`` only.
    **kw
        Passed to :func:`load_digits` or :func:`make_synthetic`.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown name (the message lists the choices).
    TypeError
        ``path`` or keyword arguments given to a loader that takes none.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {', '.join(DATASETS)}; got {name!r}")
    key = check_choice("data set", name.strip().lower().replace("_", "-"), DATASETS)
    if key in ("fashion-mnist", "mnist"):
        if kw:
            raise TypeError(f"{key} takes no keyword arguments besides path, got {sorted(kw)}")
        return load_fashion_mnist(path) if key == "fashion-mnist" else load_mnist(path)
    if path is not None:
        raise TypeError(f"path is not used by the {key!r} data set")
    return load_digits(**kw) if key == "digits" else make_synthetic(**kw)
