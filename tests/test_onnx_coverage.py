"""The ONNX/.keras layer coverage table in README ("Deploy and interoperate") is complete
and true: every class of pynn.layers is in it; a class in an ONNX "yes" row has a
registered exporter and one in a "no" row has none and is in pynn.onnx.UNSUPPORTED; the
.keras column matches pynn.keras_file.KERAS_LAYERS; and the "not exported" table is
UNSUPPORTED, entry for entry. No optional dependency is needed to read these tables."""
import inspect
import pathlib
import re
import sys

import pytest

import pynn.layers as L
import pynn.onnx  # noqa: F401  (registers the exporters; imports no onnx)
from pynn.layers.base import Layer

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
E = sys.modules["pynn.onnx.export"]
GRAPH_INPUTS = {"Input", "InputLayer"}   # not Layer subclasses: the exporter writes them as graph inputs


def layer_classes():
    return {n: c for n, c in vars(L).items()
            if inspect.isclass(c) and (issubclass(c, Layer) or n in GRAPH_INPUTS)}


def section():
    text = README.read_text()
    start = text.index("## Deploy and interoperate")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def table(header):
    """Rows (lists of cells) of the markdown table whose header row starts with ``header``."""
    lines = section().splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def names_in(cell, known):
    """Class names listed in a cell, ignoring notes in parentheses and backquotes."""
    plain = re.sub(r"\([^()]*\)", "", re.sub(r"\([^()]*\)", "", cell))
    plain = re.sub(r"`[^`]*`", "", plain)
    return {w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", plain) if w in known}


def coverage():
    known = layer_classes()
    onnx, keras = {}, {}
    for classes, onnx_cell, keras_cell in table("layer classes"):
        for name in names_in(classes, known):
            assert name not in onnx, f"{name} is in two rows of the coverage table"
            onnx[name] = onnx_cell.split()[0].strip(":,")
            keras[name] = keras_cell.split()[0].strip(":,")
    return known, onnx, keras


def test_every_layer_class_is_in_the_coverage_table():
    known, onnx, _ = coverage()
    assert sorted(set(known) - set(onnx)) == []


def test_onnx_column_matches_the_registered_exporters():
    known, onnx, _ = coverage()
    for name, verdict in onnx.items():
        cls = known[name]
        exported = cls in E._EXPORTERS or name in GRAPH_INPUTS
        assert verdict in ("yes", "no"), (name, verdict)
        if verdict == "yes":
            assert exported and name not in E.UNSUPPORTED, f"README says {name} exports"
        else:
            assert not exported, f"README says {name} does not export, but it has an exporter"
            assert name in E.UNSUPPORTED, f"{name} is not exported but missing from pynn.onnx.UNSUPPORTED"


def test_keras_column_matches_the_keras_file_classes():
    pytest.importorskip("h5py")   # pynn.keras_file imports h5py only when used, but stay safe
    from pynn.keras_file import KERAS_LAYERS
    known, _, keras = coverage()
    readable = set(KERAS_LAYERS.values())
    for name, verdict in keras.items():
        if name in GRAPH_INPUTS:
            continue
        assert (verdict == "yes") == (known[name] in readable), (name, verdict)


def test_not_exported_table_is_pynn_onnx_unsupported():
    rows = {k: v for k, v in table("not exported")}
    assert rows == dict(E.UNSUPPORTED)


def test_unsupported_layer_classes_raise_before_writing(tmp_path):
    """A class that UNSUPPORTED names is refused with an error naming the layer, and no file appears."""
    pytest.importorskip("onnx")
    import numpy as np
    import pynn
    from pynn import layers

    class Plain(Layer):
        def call(self, x):
            return x

    for layer in (layers.Lambda(lambda t: t * 2, name="doubler"), Plain(name="plain")):
        model = pynn.Sequential([layers.Input((3,)), layer, layers.Dense(2)])
        path = tmp_path / "m.onnx"
        with pytest.raises(ValueError, match=layer.name):
            pynn.onnx.export(model, str(path))
        assert not path.exists()
        model.predict(np.ones((1, 3), np.float32), verbose=0)   # the model itself works
