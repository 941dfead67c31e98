"""Every public class of pynn.layers, models, losses, metrics, optimizers and callbacks
has a docstring with an ``Example:`` block, and every example runs and prints what
it shows (doctest). The examples assume ``import numpy as np, pynn`` (Keras'
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
