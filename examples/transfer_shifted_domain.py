"""Transfer learning where the source teaches what the target needs (issue #18).

``transfer_learning.py`` transfers from the digits 0-4 to 5-9 and honestly finds a
tie. Here the source covers the target's classes: a small CNN is pretrained on all
ten upright, clean 8x8 digits (the training split), and the target is a *shifted
domain* of the same digits: each image moved by up to one pixel in each direction,
its contrast scaled by a random factor in [0.6, 1.0], plus Gaussian noise
(sigma 0.25, ``--noise``), clipped to [0, 1] -- from only 1, 3 or 10 labelled target images per
class. Three arms, each trained full-batch with Adam on the same few-shot draw and
seed, scored on the shifted test split (360 images, never seen in pretraining):

- frozen: the pretrained features frozen, a new softmax head (lr 1e-2);
- fine-tuned: the whole pretrained classifier (features and its 10-way head: the
  classes are the same) trained further on the few target images (lr 1e-3);
- scratch: the same architecture from a random start (lr 1e-3, the rate the old
  example found best for scratch at this size).

Each arm trains ``epochs`` epochs (150) and is scored every 5 epochs; the table
reports the final accuracy (mean +- std over the draws), the draws where the
transfer arm beats scratch, and epochs-to-target: the first checkpoint at which the
test accuracy reaches the target, averaged over the draws that reach it ("n/d
reached" says how many did). The default target is what scratch training reaches:
the scratch arm's mean final accuracy at that shot count (``--target`` sets a fixed one).

    python examples/transfer_shifted_domain.py [--shots 1 3 10] [--draws 10] [--epochs 150]

The numbers measured with the defaults are in docs/keras_compatibility.md
("Transfer learning, demonstrated").
"""
import argparse
import time

import numpy as np

import pynn
from pynn import datasets, optimizers
# The same extractor, head and few-shot draw as the clean-domain demo: one home for the model.
from transfer_learning import feature_extractor, few_shot, with_head


def shift_domain(x, seed, noise=0.25):
    """The target domain: random translation by -1..1 pixels per axis (zeros enter), contrast
    scaled by U(0.6, 1.0), Gaussian noise of std ``noise``, clipped to [0, 1]. Deterministic in ``seed``."""
    r = np.random.default_rng(seed)
    out = np.zeros_like(x)
    shifts = r.integers(-1, 2, size=(len(x), 2))
    for i, (dy, dx) in enumerate(shifts):
        img = np.roll(x[i], (dy, dx), axis=(0, 1))
        if dy == 1:
            img[0] = 0
        elif dy == -1:
            img[-1] = 0
        if dx == 1:
            img[:, 0] = 0
        elif dx == -1:
            img[:, -1] = 0
        out[i] = img
    out *= r.uniform(0.6, 1.0, size=(len(x), 1, 1, 1)).astype(x.dtype)
    out += r.normal(0.0, noise, size=x.shape).astype(x.dtype)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def fit_tracking(model, x, y, xt, yt, lr, epochs, every):
    """Full-batch Adam for ``epochs``; the test accuracy after every ``every`` epochs."""
    model.compile(optimizer=optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    curve = []
    for _ in range(epochs // every):
        model.fit(x, y, epochs=every, batch_size=len(x), verbose=0)
        curve.append(model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"])
    return np.array(curve)


def epochs_to(curve, target, every):
    hit = np.flatnonzero(curve >= target)
    return (hit[0] + 1) * every if len(hit) else None


def main(shots=(1, 3, 10), draws=10, epochs=150, every=5, target=None, pretrain_epochs=20, noise=0.25,
         verbose=True):
    """Returns ``{shots: {arm: {"acc": (draws,), "curve": (draws, epochs // every),
    "epochs_to_target": [int or None]}, "target": float}}`` for the arms frozen, finetuned,
    scratch; ``target=None`` takes the scratch arm's mean final accuracy as the target."""
    (x, y), (xt, yt) = datasets.load_digits()
    x_src = x                                   # source: all ten clean, upright training digits
    x_tgt, x_tgt_test = shift_domain(x, seed=1, noise=noise), shift_domain(xt, seed=2, noise=noise)

    t0 = time.time()
    pynn.set_seed(0)
    features = feature_extractor()
    pre = with_head(features, 10)
    pre.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    pre.fit(x_src, y, epochs=pretrain_epochs, batch_size=32, verbose=0)
    if verbose:
        clean = pre.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
        shifted = pre.evaluate(x_tgt_test, yt, verbose=0, return_dict=True)["accuracy"]
        print(f"pretrained on clean digits: clean test {clean:.3f}, shifted test {shifted:.3f} "
              f"(the domain gap) ({time.time() - t0:.1f}s)")
    pretrained, pretrained_head = features.get_weights(), pre.get_layer("head").get_weights()

    arms = {"frozen": (True, True, 1e-2), "finetuned": (True, False, 1e-3), "scratch": (False, False, 1e-3)}
    results = {}
    for k in shots:
        res = {arm: {"acc": [], "curve": [], "epochs_to_target": []} for arm in arms}
        for draw in range(draws):
            xf, yf = few_shot(x_tgt, y, k, seed=1000 + draw)
            for arm, (transfer, frozen, lr) in arms.items():
                pynn.set_seed(draw)
                feats = feature_extractor()
                if transfer:
                    feats.set_weights(pretrained)
                feats.trainable = not frozen
                model = with_head(feats, 10)
                if transfer and not frozen:        # fine-tuning keeps the source head (same ten classes)
                    model.get_layer("head").set_weights(pretrained_head)
                curve = fit_tracking(model, xf, yf, x_tgt_test, yt, lr, epochs, every)
                res[arm]["acc"].append(curve[-1])
                res[arm]["curve"].append(curve)
        goal = float(np.mean(res["scratch"]["acc"])) if target is None else target
        results[k] = {arm: {"acc": np.array(v["acc"]), "curve": np.array(v["curve"]),
                            "epochs_to_target": [epochs_to(c, goal, every) for c in v["curve"]]}
                      for arm, v in res.items()}
        results[k]["target"] = goal
        if verbose:
            print(table_rows(k, results[k], draws))
    if verbose:
        print(f"total {time.time() - t0:.1f}s")
    return results


def _epochs_text(hits, draws):
    reached = [h for h in hits if h is not None]
    if not reached:
        return f"never (0/{draws})"
    return f"{np.mean(reached):5.1f} +- {np.std(reached):4.1f} ({len(reached)}/{draws} reached)"


def table_rows(k, r, draws):
    sc = r["scratch"]["acc"]
    lines = [f"{k:2d}/class target accuracy {r['target']:.3f}"]
    for arm in ("frozen", "finetuned", "scratch"):
        a = r[arm]["acc"]
        wins = "" if arm == "scratch" else f"  beats scratch {np.sum(a > sc)}/{draws}, gap {np.mean(a - sc):+.3f}"
        lines.append(f"{k:2d}/class {arm:9s} acc {a.mean():.3f} +- {a.std():.3f}  epochs to target "
                     f"{_epochs_text(r[arm]['epochs_to_target'], draws)}{wins}")
    return "\n".join(lines)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shots", type=int, nargs="+", default=[1, 3, 10], help="labelled target images per class")
    p.add_argument("--draws", type=int, default=10, help="random few-shot draws per shot count")
    p.add_argument("--epochs", type=int, default=150, help="training epochs of every arm")
    p.add_argument("--target", type=float, default=None,
                   help="test accuracy for epochs-to-target (default: what scratch reaches at the end)")
    p.add_argument("--noise", type=float, default=0.25, help="std of the target domain's Gaussian noise")
    a = p.parse_args()
    main(tuple(a.shots), a.draws, a.epochs, target=a.target, noise=a.noise)
