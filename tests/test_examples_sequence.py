"""The sequence-model examples run and learn (at smaller settings than their defaults)."""
import importlib

import pytest

pytestmark = pytest.mark.usefixtures("examples_on_path")


def test_seq2seq_with_attention_reverses_digit_strings():
    assert importlib.import_module("seq2seq_reverse").main(epochs=8, n_train=2000) >= 0.95


def test_text_classifier_beats_the_majority_class_by_far():
    acc, majority = importlib.import_module("text_classification").main(epochs=6)
    assert acc >= 0.8 and acc > majority + 0.2


def test_char_lm_learns_and_generates_text():
    losses, sample = importlib.import_module("char_lm").main(epochs=12, length=60)
    assert losses[-1] < 0.6 * losses[0] and len(sample) == 40 + 60


def test_transformer_classifier_example():
    assert importlib.import_module("transformer_classifier").main(epochs=15) >= 0.85


def test_ctc_transcription_example():
    assert importlib.import_module("ctc_transcription").main(epochs=15, n_train=256) >= 0.8
