"""Plots for the lectures: training curves and 2-D decision boundaries, written
to PNG files. matplotlib is optional (``pip install "pynn-cpu[plot]"``)."""
import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("pynn plotting needs matplotlib: pip install 'pynn-cpu[plot]'") from e
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    return plt


def plot_history(history, path, metrics=None):
    """One panel per metric (loss first), train and val_ curves over epochs.

    Needs matplotlib (``pip install "pynn-cpu[plot]"``).

    Args:
        history: the ``History`` ``fit`` returns, or a dict {metric: [value per epoch]}.
        path: the PNG file to write.
        metrics: the metric names to draw (default every non-``val_`` key but learning_rate).

    Returns:
        path.

    Example:
        >>> history = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.6, 0.4]}
        >>> sorted(history)
        ['loss', 'val_loss']
        >>> pynn.plot_history(history, "history.png")  # doctest: +SKIP
        'history.png'
    """
    plt = _pyplot()
    h = history.history if hasattr(history, "history") else dict(history)
    names = metrics or [k for k in h if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = np.arange(1, len(h[name]) + 1)
        ax.plot(epochs, h[name], label=f"train {name}")
        if f"val_{name}" in h:
            ax.plot(epochs, h[f"val_{name}"], label=f"validation {name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_decision_boundary(model, x, y, path, resolution=200, margin=0.5):
    """Colour the plane by the model's predicted class; draw the points on top.

    ``x``: (N, 2) inputs; ``y``: labels (ints, or 0/1 for a sigmoid output).

    Needs matplotlib (``pip install "pynn-cpu[plot]"``).

    Args:
        model: a model mapping (N, 2) inputs to class scores (or one sigmoid output).
        x: (N, 2) inputs; y: their labels.
        path: the PNG file to write.
        resolution: grid points per axis; margin: space around the points.

    Returns:
        path.

    Example:
        >>> model = pynn.Sequential([pynn.Input((2,)), pynn.layers.Dense(1, activation="sigmoid")])
        >>> x = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
        >>> model.predict(x, verbose=0).shape
        (2, 1)
        >>> pynn.plot_decision_boundary(model, x, [0, 1], "boundary.png")  # doctest: +SKIP
        'boundary.png'
    """
    plt = _pyplot()
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary: x must have shape (N, 2), got {x.shape}")
    lo, hi = x.min(0) - margin, x.max(0) + margin
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    p = model.predict(grid, batch_size=4096)
    cls = (p[:, 0] > 0.5).astype(int) if p.shape[-1] == 1 else p.argmax(-1)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(gx, gy, cls.reshape(gx.shape), alpha=0.3, cmap="coolwarm")
    ax.scatter(x[:, 0], x[:, 1], c=np.asarray(y).reshape(len(x), -1)[:, 0], cmap="coolwarm", edgecolors="k")
    ax.set_title("decision boundary")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
