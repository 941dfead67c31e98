"""Real datasets that ship inside scikit-learn: nothing is ever downloaded.

Each loader returns ``(x_train, y_train), (x_test, y_test)`` with a fixed,
stratified split (``test_size``, ``seed``), features as float32 and labels as
int64 (float32 for regression). scikit-learn is an optional dependency
(``pip install "pynn-cpu[examples]"``).
"""
import numpy as np


def _sklearn():
    try:
        from sklearn import datasets, model_selection
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("pynn.datasets needs scikit-learn (its bundled datasets): "
                          "pip install 'pynn-cpu[examples]'") from e
    return datasets, model_selection


def _split(x, y, test_size, seed, stratify=True):
    _, ms = _sklearn()
    x_tr, x_te, y_tr, y_te = ms.train_test_split(x, y, test_size=test_size, random_state=seed,
                                                 stratify=y if stratify else None)
    return (x_tr, y_tr), (x_te, y_te)


def _standardize(train, test):
    mean, std = train.mean(0), train.std(0)
    std[std == 0] = 1.0
    return ((train - mean) / std).astype(np.float32), ((test - mean) / std).astype(np.float32)


def load_digits(test_size=0.2, seed=0, flatten=False):
    """8x8 grey images of the digits 0-9 (1797 samples), scaled to [0, 1].

    Images are (N, 8, 8, 1) channels_last, or (N, 64) with ``flatten=True``.
    """
    ds, _ = _sklearn()
    d = ds.load_digits()
    x = (d.images / 16.0).astype(np.float32)
    x = x.reshape(len(x), 64) if flatten else x[..., None]
    return _split(x, d.target.astype(np.int64), test_size, seed)


def _tabular(loader, test_size, seed, regression=False):
    ds, _ = _sklearn()
    d = getattr(ds, loader)()
    y = d.target.astype(np.float32 if regression else np.int64)
    (x_tr, y_tr), (x_te, y_te) = _split(d.data, y, test_size, seed, stratify=not regression)
    x_tr, x_te = _standardize(x_tr, x_te)
    return (x_tr, y_tr), (x_te, y_te)


def load_iris(test_size=0.2, seed=0):
    """Iris: 150 flowers, 4 standardised features, 3 classes."""
    return _tabular("load_iris", test_size, seed)


def load_wine(test_size=0.2, seed=0):
    """Wine: 178 samples, 13 standardised features, 3 classes."""
    return _tabular("load_wine", test_size, seed)


def load_breast_cancer(test_size=0.2, seed=0):
    """Breast cancer Wisconsin: 569 samples, 30 standardised features, binary labels."""
    return _tabular("load_breast_cancer", test_size, seed)


def load_diabetes(test_size=0.2, seed=0):
    """Diabetes: 442 patients, 10 standardised features, a float regression target."""
    return _tabular("load_diabetes", test_size, seed, regression=True)
