"""Smoke subset for an installed wheel (CI runs it in a bare venv with no build tools; cibuildwheel
runs it for every wheel of the matrix): the package imports with its native kernels, trains on the
bundled digits, gives the same result on the portable kernels, and saves/loads."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pynn

pytestmark = pytest.mark.skipif(not pynn.backend.NATIVE_AVAILABLE, reason="native extension not built")


def test_every_kernel_is_native_in_the_installed_build():
    cov = pynn.coverage()
    fallbacks = sorted(k for k, where in cov.items() if where != "native")
    assert cov and not fallbacks, f"kernels falling back to numpy: {fallbacks}"


_FIT = textwrap.dedent("""
    import numpy as np, pynn
    from pynn import layers
    (x, y), _ = pynn.datasets.load_digits(flatten=True)
    x, y = x[:512], y[:512]
    pynn.set_seed(0)
    model = pynn.Sequential([layers.Input((64,)), layers.Dense(32, activation="relu"),
                             layers.Dense(10, activation="softmax")])
    model.compile(optimizer=pynn.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=32, epochs=5, shuffle=False, verbose=0)
    np.save({out!r}, np.concatenate([w.ravel() for w in model.get_weights()]))
    print(pynn._C.isa(), hist.history["loss"][-1], hist.history["accuracy"][-1])
""")


def _fit_in_subprocess(tmp_path, isa):
    out = tmp_path / f"w_{isa or 'default'}.npy"
    env = {k: v for k, v in os.environ.items() if k != "PYNN_ISA"}
    env.update(PYNN_NUM_THREADS="2", **({"PYNN_ISA": isa} if isa else {}))
    r = subprocess.run([sys.executable, "-c", _FIT.format(out=str(out))], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    isa_used, loss, acc = r.stdout.split()
    return isa_used, float(loss), float(acc), np.load(out)


def test_short_fit_on_digits_learns_and_generic_isa_matches_default(tmp_path):
    isa_default, loss, acc, w_default = _fit_in_subprocess(tmp_path, None)
    isa_generic, loss_g, acc_g, w_generic = _fit_in_subprocess(tmp_path, "generic")
    assert isa_generic == "generic"
    assert acc > 0.8 and loss < 0.8, (loss, acc)
    # Same model, same data, different microkernels: float32 rounding differs, the training does not.
    np.testing.assert_allclose(w_generic, w_default, rtol=1e-3, atol=1e-4)
    assert abs(loss_g - loss) < 1e-3


def test_save_and_load_round_trip_predicts_identically(tmp_path):
    from pynn import layers
    pynn.set_seed(1)
    model = pynn.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"),
                             layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    model.fit(x, np.arange(16) % 10, epochs=1, verbose=0)
    path = tmp_path / "m.pynn"
    model.save(path)
    again = pynn.load_model(path)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
