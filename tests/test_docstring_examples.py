"""Every public class of pynn.layers, models, losses, metrics, optimizers and callbacks
has a docstring with an ``Example:`` block, and every example runs and prints what
it shows (doctest); so does every public function of pynn and of its utils, activations,
initializers, regularizers, constraints, models, saving, layers, optimizers, onnx and random
modules (issue #18). The examples assume ``import numpy as np, pynn`` (Keras'
docstrings assume ``import keras``)."""
import doctest
import inspect

import numpy as np
import pytest

import pynn

MODULES = ["layers", "models", "losses", "metrics", "optimizers", "callbacks"]


def _public_classes():
    out = []
    for mod_name in MODULES:
        mod = getattr(pynn, mod_name)
        names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
        for name in names:
            obj = getattr(mod, name)
            # classes defined in that module (not names it imports, such as Tensor)
            if inspect.isclass(obj) and obj.__module__.startswith(f"pynn.{mod_name}"):
                out.append((f"{mod_name}.{name}", obj))
    return out


CLASSES = _public_classes()


def test_the_public_class_list_is_not_empty():
    assert len(CLASSES) > 100


@pytest.mark.parametrize("qualname,cls", CLASSES, ids=[q for q, _ in CLASSES])
def test_public_class_has_a_docstring_with_an_example_that_runs(qualname, cls, tmp_path, monkeypatch):
    doc = cls.__doc__ or ""
    assert "Example:" in doc and ">>>" in doc, f"{qualname}: no Example block in its docstring"
    monkeypatch.chdir(tmp_path)
    finder = doctest.DocTestFinder(recurse=False)
    tests = finder.find(cls, qualname, globs={"np": np, "pynn": pynn})
    assert tests and tests[0].examples
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{qualname}: {result.failed} of {result.attempted} doctest lines failed"


def test_config_functions_examples_run():
    result = doctest.testmod(pynn.config, extraglobs={"np": np, "pynn": pynn}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0
    assert pynn.config.image_data_format() == "channels_last"   # the example set it back


# Public functions (issue #18): every public function of these modules has an Example block
# that runs. A function exposed under several names (an alias, or re-exported by pynn and a
# submodule) is tested once, under its first name here; only functions defined in pynn count.
FUNCTION_MODULES = ["", "utils", "activations", "initializers", "regularizers", "constraints", "models", "saving",
                    "layers", "optimizers", "onnx", "random"]


def _public_functions():
    import importlib
    out, seen = [], set()
    for mod_name in FUNCTION_MODULES:
        mod = importlib.import_module("pynn" + (f".{mod_name}" if mod_name else ""))
        names = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
        for name in names:
            obj = getattr(mod, name, None)
            if inspect.isfunction(obj) and obj.__module__.startswith("pynn") and id(obj) not in seen:
                seen.add(id(obj))
                out.append((f"{mod_name or 'pynn'}.{name}", obj))
    return out


FUNCTIONS = _public_functions()


def test_the_public_function_list_is_not_empty():
    assert len(FUNCTIONS) > 60


def _run_examples(qualname, obj):
    finder = doctest.DocTestFinder(recurse=False)
    tests = finder.find(obj, qualname, globs={"np": np, "pynn": pynn})
    assert tests and tests[0].examples, f"{qualname}: doctest found no examples"
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("qualname,fn", FUNCTIONS, ids=[q for q, _ in FUNCTIONS])
def test_public_function_has_a_docstring_with_an_example_that_runs(qualname, fn, tmp_path, monkeypatch):
    doc = fn.__doc__ or ""
    assert "Example:" in doc and ">>>" in doc, f"{qualname}: no Example block in its docstring"
    assert "Args:" in doc or "Returns:" in doc, f"{qualname}: no Args/Returns in its docstring"
    monkeypatch.chdir(tmp_path)
    with pynn.use_backend(pynn.backend.name()):       # an example that switches backends is undone
        result = _run_examples(qualname, fn)
    assert result.failed == 0, f"{qualname}: {result.failed} of {result.attempted} doctest lines failed"
