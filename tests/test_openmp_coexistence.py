"""pynn's OpenMP runtime (the system libgomp, or the copy a repaired wheel vendors) shares a process
with PyTorch's own libgomp and NumPy's OpenBLAS threads: whichever is imported first, both train
a step with 2 threads, the results are right, and nothing deadlocks."""
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch", reason="torch is needed for the OpenMP coexistence test")

_SCRIPT = textwrap.dedent("""
    import numpy as np
    {first}
    {second}
    torch.set_num_threads(2)
    pynn.set_num_threads(2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 300)).astype(np.float32)
    b = rng.standard_normal((300, 200)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    for _ in range(3):   # interleave the three thread pools
        np.testing.assert_allclose(pynn.ops.matmul(a, b), ref, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(torch.from_numpy(a) @ torch.from_numpy(b), ref, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(a @ b, ref, rtol=1e-4, atol=1e-3)

    # One training step in each library on the same data and weights: same loss, same update.
    x = rng.standard_normal((64, 32)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    w = (rng.standard_normal((32, 10)) * 0.1).astype(np.float32)
    model = pynn.Sequential([pynn.layers.Input((32,)), pynn.layers.Dense(10, use_bias=False)])
    model.compile(optimizer=pynn.optimizers.SGD(learning_rate=0.1),
                  loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.set_weights([w])
    loss_pynn = float(model.train_on_batch(x, y))
    tw = torch.tensor(w, requires_grad=True)
    loss_torch = torch.nn.functional.cross_entropy(torch.from_numpy(x) @ tw, torch.from_numpy(y))
    loss_torch.backward()
    with torch.no_grad():
        tw -= 0.1 * tw.grad
    assert abs(loss_pynn - loss_torch.item()) < 1e-5, (loss_pynn, loss_torch.item())
    np.testing.assert_allclose(model.get_weights()[0], tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    print("ok")
""")


@pytest.mark.parametrize("order", ["torch_first", "pynn_first"])
def test_pynn_and_torch_train_in_one_process_without_deadlock(order):
    imports = ["import torch", "import pynn"]
    if order == "pynn_first":
        imports.reverse()
    code = _SCRIPT.format(first=imports[0], second=imports[1])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
