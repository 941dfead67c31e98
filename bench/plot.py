"""Bar chart of bench/train_table.py's results (the README's picture).

    python bench/train_table.py --json train.json
    python bench/plot.py train.json docs/train_step.png

Left: each training step's time relative to PyTorch CPU's (1.0 = PyTorch; lower
is faster), native and numpy backends side by side, log scale because the numpy
backend's CNN is tens of times slower. Right: peak memory the step adds (MiB).
Needs matplotlib (``pip install ".[plot]"``).
"""
import json
import sys


def plot(results, path, title=""):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in results["results"] if r["ms"].get("torch")]
    labels = [r["title"].split(" b")[0] if r["row"] != "digits_epoch" else "fit() epoch digits" for r in rows]
    x = np.arange(len(rows))
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(13, 4.8))
    colors = {"native": "#1f77b4", "numpy": "#bbbbbb", "torch": "#ee8822"}

    w = 0.38
    for i, who in enumerate(("native", "numpy")):
        rel = [r["ms"][who] / r["ms"]["torch"] for r in rows]
        bars = ax_t.bar(x + (i - 0.5) * w, rel, w, label=f"pynn {who}", color=colors[who])
        for b, v in zip(bars, rel):
            ax_t.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax_t.axhline(1.0, color=colors["torch"], lw=2, label="PyTorch CPU = 1")
    ax_t.set_yscale("log")
    ax_t.set_ylabel("step time / PyTorch step time (lower is faster)")
    ax_t.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax_t.legend(fontsize=8)
    ax_t.set_title("training step time vs PyTorch CPU")

    w = 0.27
    for i, who in enumerate(("native", "numpy", "torch")):
        mem = [r["peak_mib"].get(who) or 0.0 for r in rows]
        ax_m.bar(x + (i - 1) * w, mem, w, label="PyTorch CPU" if who == "torch" else f"pynn {who}",
                 color=colors[who])
    ax_m.set_ylabel("peak memory added by the step (MiB)")
    ax_m.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax_m.legend(fontsize=8)
    ax_m.set_title("peak memory of a training step")

    fig.suptitle(title or f"pynn vs PyTorch {results['torch']} CPU, {results['threads']} threads, same run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit(__doc__)
    with open(argv[0]) as f:
        results = json.load(f)
    plot(results, argv[1])
    print(f"wrote {argv[1]}")


if __name__ == "__main__":
    main()
