"""Text classification with Embedding + LSTM on text that ships with Python:
the sentences of the language reference's help topics (``pydoc_data``), each
labelled by what its topic is about, statements and control flow or data
types and objects. A binary, sentiment-style task on real English sentences;
nothing is downloaded.

    python examples/text_classification.py [--epochs 12]
"""
import argparse
import re
from collections import Counter

import numpy as np

import pynn
from pynn import layers, optimizers

STATEMENTS = ["assert", "assignment", "augassign", "break", "compound", "continue", "del", "for", "global", "if",
              "import", "nonlocal", "pass", "raise", "return", "try", "while", "with", "yield", "exceptions"]
DATA = ["booleans", "dict", "floating", "imaginary", "integers", "lists", "numbers", "sequence-types", "strings",
        "typesfunctions", "typesmapping", "typesmethods", "typesmodules", "typesseq", "typesseq-mutable",
        "bltin-null-object", "bltin-ellipsis-object", "formatstrings", "string-methods", "numeric-types"]
MAX_LEN, VOCAB = 32, 3000


def sentences():
    from pydoc_data.topics import topics
    out = []
    for label, names in ((0, STATEMENTS), (1, DATA)):
        for name in names:
            for s in re.split(r"(?<=[.!?])\s+", topics.get(name, "")):
                words = re.findall(r"[a-z]+", s.lower())
                if 4 <= len(words):
                    out.append((words, label))
    return out


def encode(data, vocab):
    x = np.zeros((len(data), MAX_LEN), np.int64)  # 0 = padding (masked), 1 = unknown word
    for i, (words, _) in enumerate(data):
        ids = [vocab.get(w, 1) for w in words[:MAX_LEN]]
        x[i, :len(ids)] = ids
    return x, np.array([label for _, label in data])


def main(epochs=12, verbose=0):
    pynn.set_seed(0)
    data = sentences()
    order = np.random.default_rng(0).permutation(len(data))
    data = [data[i] for i in order]
    split = int(0.8 * len(data))
    counts = Counter(w for words, _ in data[:split] for w in words)
    vocab = {w: i + 2 for i, (w, _) in enumerate(counts.most_common(VOCAB - 2))}
    (x, y), (xt, yt) = encode(data[:split], vocab), encode(data[split:], vocab)
    model = pynn.Sequential([layers.Input((MAX_LEN,), dtype="int64"), layers.Embedding(VOCAB, 32, mask_zero=True),
                             layers.Bidirectional(layers.LSTM(32)), layers.Dropout(0.3),
                             layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizers.Adam(learning_rate=3e-3), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y[:, None].astype(np.float32), epochs=epochs, batch_size=32, verbose=verbose)
    acc = model.evaluate(xt, yt[:, None].astype(np.float32), return_dict=True)["accuracy"]
    majority = max(yt.mean(), 1 - yt.mean())
    print(f"{len(data)} sentences; test accuracy {acc:.4f} (majority class {majority:.4f})")
    return acc, majority


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=12)
    main(p.parse_args().epochs, verbose=1)
