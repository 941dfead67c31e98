"""The digits CNN (examples/digits_cnn.py), trained data-parallel on several processes.

    mpiexec -n 2 python -m mpi4py examples/distributed_mnist_like.py --epochs 10
    mpiexec -f hosts.txt -n 8 python -m mpi4py examples/distributed_mnist_like.py
    python examples/distributed_mnist_like.py          # one process: the same script

The script is an ordinary single-process training script plus two lines
(``set_distribution(DataParallel())``): every rank loads the same data, ``fit``
gives each its slice of every global batch of 64 and averages the gradients;
``evaluate``/``predict`` return global results on every rank; only rank 0 prints
and writes the checkpoint. ``-m mpi4py`` makes an exception on one rank abort
all of them instead of leaving the others waiting in a collective.

``main(...)`` returns the test accuracy, so a test can run it at a smaller setting.
"""
import argparse
import os
import sys
import time

import numpy as np

import pynn
from pynn import distribution

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits_cnn import build_cnn  # noqa: E402  (the same model as the single-process example)


def main(epochs=10, batch_size=64, seed=0, verbose=1, checkpoint=None):
    """Train the digits CNN on every rank of the MPI job (or on one process
    without MPI); return the test accuracy (the same number on every rank)."""
    try:
        distribution.set_distribution(distribution.DataParallel())
    except ImportError:  # no mpi4py: train on this one process
        pass
    primary = distribution.is_primary()
    pynn.set_seed(seed + distribution.rank())   # any seed per rank: fit broadcasts rank 0's weights
    (x_train, y_train), (x_test, y_test) = pynn.datasets.load_digits()
    model = build_cnn()
    model.compile(optimizer=pynn.optimizers.Adam(1e-3),
                  loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    callbacks = [pynn.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True)] \
        if checkpoint else []
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1,
              callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=256)
    logits = model.predict(x_test, batch_size=256)          # gathered: every rank gets all 360 rows
    assert logits.shape == (len(x_test), 10)
    if verbose and primary:
        print(f"{distribution.world_size()} rank(s) x {pynn.get_num_threads()} thread(s): "
              f"test accuracy {accuracy:.4f}, loss {loss:.4f} after {epochs} epochs in {seconds:.1f} s")
    distribution.set_distribution(None)
    return float(accuracy)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="The digits CNN trained data-parallel over MPI")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64, help="the global batch (split across ranks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", default=None, help="save the best model here (rank 0 writes)")
    args = ap.parse_args()
    main(args.epochs, args.batch_size, args.seed, checkpoint=args.checkpoint)
