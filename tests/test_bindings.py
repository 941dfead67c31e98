"""The pynn._C binding layer's contract: every function has named arguments and a
docstring (csrc/*/bind_<family>.cpp over csrc/common/binding.h)."""
import re

import pytest

_C = pytest.importorskip("pynn._C", reason="pynn._C not built")

FUNCTIONS = sorted(n for n in dir(_C) if not n.startswith("_") and callable(getattr(_C, n)))


def test_the_module_binds_every_family():
    for name in ["gemm", "bmm", "weight_grad", "act_forward", "softmax", "conv2d", "max_pool2d", "batch_norm_forward",
                 "adam_step", "lstm_forward", "ctc_loss", "embedding_gather", "activation_names", "set_isa"]:
        assert name in FUNCTIONS


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_binding_has_named_arguments_and_a_docstring(name):
    lines = [line for line in (getattr(_C, name).__doc__ or "").splitlines() if line.strip()]
    assert lines, f"{name} has no signature line"
    assert not re.search(r"\barg\d+\b", lines[0]), f"{name} has unnamed arguments: {lines[0]}"
    assert len(lines) >= 2, f"{name} has no docstring"
