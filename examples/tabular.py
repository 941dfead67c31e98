"""Small tabular problems bundled with scikit-learn, each a short MLP:
breast_cancer (binary), iris and wine (3 classes), diabetes (regression).

    python examples/tabular.py [breast_cancer|iris|wine|diabetes|all] [--epochs N]
"""
import argparse

import numpy as np

import pynn
from pynn import callbacks, datasets, layers, optimizers


def breast_cancer(epochs=60, verbose=0):
    """Binary classifier: sigmoid output, binary cross-entropy."""
    pynn.set_seed(0)
    (x, y), (xt, yt) = datasets.load_breast_cancer()
    model = pynn.Sequential([layers.Input((x.shape[1],)), layers.Dense(16, activation="relu"),
                             layers.Dropout(0.2), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=["accuracy", "precision", "recall"])
    model.fit(x, y[:, None].astype(np.float32), batch_size=16, epochs=epochs, verbose=verbose)
    return model.evaluate(xt, yt[:, None].astype(np.float32), return_dict=True)["accuracy"]


def _multiclass(loader, epochs, verbose):
    pynn.set_seed(0)
    (x, y), (xt, yt) = loader()
    model = pynn.Sequential([layers.Input((x.shape[1],)), layers.Dense(16, activation="relu"),
                             layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=verbose)
    return model.evaluate(xt, yt, return_dict=True)["accuracy"]


def iris(epochs=100, verbose=0):
    return _multiclass(datasets.load_iris, epochs, verbose)


def wine(epochs=100, verbose=0):
    return _multiclass(datasets.load_wine, epochs, verbose)


def diabetes(epochs=200, verbose=0, folds=5):
    """Regression with MSE (MAE as a metric). 442 patients is too few for one
    train/test split to say much (R² of plain linear regression ranges 0.33-0.53
    over split seeds), so this reports the mean R² over 5-fold cross-validation."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import KFold
    x_all, y_all = load_diabetes(return_X_y=True)
    scores = []
    for k, (tr, te) in enumerate(KFold(folds, shuffle=True, random_state=0).split(x_all)):
        pynn.set_seed(k)
        mu, sd = x_all[tr].mean(0), x_all[tr].std(0)
        x, xt = ((x_all[tr] - mu) / sd).astype(np.float32), ((x_all[te] - mu) / sd).astype(np.float32)
        y, yt = y_all[tr].astype(np.float32), y_all[te].astype(np.float32)
        mean, std = y.mean(), y.std()
        model = pynn.Sequential([layers.Input((x.shape[1],)), layers.Dense(16, activation="relu"),
                                 layers.Dense(1)])
        model.compile(optimizer=optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
        model.fit(x, (y[:, None] - mean) / std, batch_size=32, epochs=epochs, verbose=verbose,
                  validation_split=0.1, callbacks=[callbacks.EarlyStopping(patience=20, restore_best_weights=True)])
        pred = model.predict(xt)[:, 0] * std + mean
        scores.append(1.0 - np.sum((yt - pred) ** 2) / np.sum((yt - yt.mean()) ** 2))
    return float(np.mean(scores))


PROBLEMS = {"breast_cancer": breast_cancer, "iris": iris, "wine": wine, "diabetes": diabetes}

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("problem", nargs="?", default="all", choices=[*PROBLEMS, "all"])
    p.add_argument("--epochs", type=int, default=None)
    a = p.parse_args()
    for name, fn in PROBLEMS.items():
        if a.problem in (name, "all"):
            score = fn(a.epochs, verbose=1) if a.epochs else fn(verbose=1)
            print(f"{name}: {'R²' if name == 'diabetes' else 'test accuracy'} = {score:.4f}")
