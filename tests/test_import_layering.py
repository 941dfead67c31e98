"""Import cycles stay cut (issue #13): modules below must not import the ones above them, not even
lazily inside a function, so the dependency graph reads one way."""
import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src" / "pynn"


def _imported_modules(relpath):
    """Every pynn module a file imports anywhere (module level or inside functions), as dotted names."""
    path = SRC / relpath
    package = ["pynn"] + list(pathlib.PurePosixPath(relpath).parent.parts)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - (node.level - 1)] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("lower, upper", [
    ("saving.py", "pynn.keras_file"),
    ("saving.py", "pynn.models"),
    ("models/model.py", "pynn.keras_file"),
    ("layers/input_layer.py", "pynn.layers.base"),
    ("layers/naming.py", "pynn.layers.base"),
    ("layers/naming.py", "pynn.layers.input_layer"),
])
def test_lower_module_does_not_import_upper(lower, upper):
    assert upper not in _imported_modules(lower), f"{lower} imports {upper}: an import cycle is back"


def test_keras_loader_is_registered_with_load_model():
    import pynn
    from pynn import keras_file, saving
    assert saving._LOADERS[".keras"] is keras_file.load_keras
    assert saving.saver_for("m.KERAS") is keras_file.save_keras
    assert saving.saver_for("m.pynn") is saving.save_model
    assert pynn.load_model is saving.load_model
