"""CTC loss vs torch.nn.functional.ctc_loss; blanks, repeats, impossible alignments, errors, learning."""
import numpy as np
import pytest

import pynn
import pynn.functional as F
from pynn.autograd import Tensor

R = np.random.default_rng(0)
N, T, C = 4, 12, 5
LOGITS = R.standard_normal((N, T, C)).astype(np.float32)
LABELS = np.array([[1, 2, 2, 3], [4, 4, 1, 0], [2, 0, 0, 0], [3, 1, 3, 1]])  # repeats need a blank between
LAB_LEN = np.array([4, 3, 1, 4])
IN_LEN = np.array([12, 9, 5, 8])


def _torch_ctc(torch, logits, reduction, labels=LABELS, in_len=IN_LEN, lab_len=LAB_LEN, zero_infinity=False):
    x = torch.from_numpy(logits).requires_grad_(True)
    lp = torch.log_softmax(x, -1).permute(1, 0, 2)                      # torch is time-major
    loss = torch.nn.functional.ctc_loss(lp, torch.from_numpy(labels), torch.from_numpy(in_len),
                                        torch.from_numpy(lab_len), reduction=reduction, zero_infinity=zero_infinity)
    return loss, x


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_ctc_matches_torch_loss_and_gradient(backend_name, reduction):
    torch = pytest.importorskip("torch")
    x = Tensor(LOGITS.copy(), requires_grad=True)
    loss = F.ctc_loss(F.log_softmax(x), LABELS, IN_LEN, LAB_LEN, reduction=reduction)
    ref, xt = _torch_ctc(torch, LOGITS.copy(), reduction)
    np.testing.assert_allclose(loss.data, ref.detach().numpy(), rtol=1e-5)
    g = np.ones(loss.shape, np.float32)
    loss.backward(g)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_ctc_hand_value_single_step():
    # One step, one label: the only path emits the label, so loss = −log p(label).
    lp = np.log(np.array([[[0.2, 0.7, 0.1]]]))
    loss = pynn.ops.ctc_loss(lp, np.array([[1]]), [1], [1], reduction="none")
    np.testing.assert_allclose(loss, [-np.log(0.7)], rtol=1e-12)
    # Two steps, label "1": paths 1b, b1, 11.
    p = np.array([[[0.5, 0.5], [0.25, 0.75]]])
    loss = pynn.ops.ctc_loss(np.log(p), np.array([[1]]), [2], [1], reduction="none")
    np.testing.assert_allclose(loss, [-np.log(0.5 * 0.25 + 0.5 * 0.75 + 0.5 * 0.75)], rtol=1e-12)


def test_impossible_alignment_is_inf_or_zero_with_zero_infinity():
    torch = pytest.importorskip("torch")
    labels, in_len, lab_len = np.array([[1, 1, 1]]), np.array([4]), np.array([3])   # needs 5 steps
    lp = np.log(np.full((1, 4, 3), 1 / 3, np.float32))
    assert np.isinf(pynn.ops.ctc_loss(lp, labels, in_len, lab_len, reduction="none")[0])
    x = Tensor(np.zeros((1, 4, 3), np.float32), requires_grad=True)
    loss = F.ctc_loss(F.log_softmax(x), labels, in_len, lab_len, reduction="sum", zero_infinity=True)
    loss.backward()
    assert float(loss.data) == 0.0 and np.all(x.grad == 0)
    ref, _ = _torch_ctc(torch, np.zeros((1, 4, 3), np.float32), "sum", labels, in_len, lab_len, zero_infinity=True)
    assert float(ref.detach()) == 0.0


def test_bad_lengths_and_labels_give_clear_errors():
    lp = np.log(np.full((2, 5, 3), 1 / 3, np.float32))
    with pytest.raises(ValueError, match=r"input_lengths must be in \[1, 5\]"):
        pynn.ops.ctc_loss(lp, np.ones((2, 2), int), [6, 5], [2, 2])
    with pytest.raises(ValueError, match=r"labels of sample 1 .* other than the blank 0, got \[1, 0\]"):
        pynn.ops.ctc_loss(lp, np.array([[1, 2], [1, 0]]), [5, 5], [2, 2])
    with pytest.raises(ValueError, match=r"label_lengths must be in \[0, 2\]"):
        pynn.ops.ctc_loss(lp, np.ones((2, 2), int), [5, 5], [3, 1])
    with pytest.raises(ValueError, match=r"log_probs must be \(N, T, C\)"):
        pynn.ops.ctc_loss(lp[0], np.ones((2, 2), int), [5, 5], [2, 2])


def test_ctc_is_accurate_for_saturated_log_probabilities(backend_name):
    """Very confident logits (log-probs near -1000 off the argmax) must not underflow."""
    torch = pytest.importorskip("torch")
    logits = (LOGITS * 60.0).astype(np.float32)
    x = Tensor(logits.copy(), requires_grad=True)
    loss = F.ctc_loss(F.log_softmax(x), LABELS, IN_LEN, LAB_LEN, reduction="none")
    ref, xt = _torch_ctc(torch, logits.copy(), "none")
    finite = np.isfinite(ref.detach().numpy())
    np.testing.assert_allclose(loss.data[finite], ref.detach().numpy()[finite], rtol=1e-4)
    assert np.array_equal(np.isfinite(loss.data), finite)
