"""Hostile and malformed model files (issue #20, findings 4-6, 10, 14, 15): every one is a
ValueError naming the problem, checked before anything large is read or allocated."""
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import pynn
from pynn import layers


def _model():
    m = pynn.Sequential([layers.Input((4,)), layers.Dense(3, activation="relu"), layers.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    m.fit(x, np.zeros((16, 2), np.float32), epochs=1, verbose=0)
    return m, x


def _saved(tmp_path):
    m, x = _model()
    path = tmp_path / "m.pynn"
    m.save(path)
    return m, x, path


def _rewrite(src, dst, edit_config=None, replace=None, drop=(), compression=zipfile.ZIP_STORED):
    """Copy the zip at src to dst with model.json edited and some entries replaced or dropped."""
    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    if edit_config is not None:
        cfg = json.loads(entries["model.json"])
        out = edit_config(cfg)
        entries["model.json"] = out if isinstance(out, (bytes, str)) else json.dumps(cfg)
    entries.update(replace or {})
    with zipfile.ZipFile(dst, "w", compression=compression) as z:
        for n, data in entries.items():
            if n not in drop:
                z.writestr(n, data)
    return dst


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _load_error(path, match):
    with pytest.raises(ValueError, match=match):
        pynn.load_model(path)


def test_weight_entry_that_inflates_beyond_its_shape_is_refused_unread(tmp_path):
    _, _, path = _saved(tmp_path)
    # (600 MB of zeros would deflate to ~0.6 MiB: kept smaller here, same check)
    bomb = _npy(np.zeros((4, 3 * 2_000_000), np.float32))
    bad = _rewrite(path, tmp_path / "bomb.pynn", replace={"weights/0000.npy": bomb}, compression=zipfile.ZIP_DEFLATED)
    assert os.path.getsize(bad) < 200_000
    _load_error(bad, r"weights/0000.npy has shape \(4, 6000000\), the model expects \(4, 3\)")


def test_npy_header_whose_size_disagrees_with_entry_is_refused(tmp_path):
    _, _, path = _saved(tmp_path)
    good = _npy(np.zeros((4, 3), np.float32))
    bad = _rewrite(path, tmp_path / "pad.pynn", replace={"weights/0000.npy": good + b"\0" * 1_000_000})
    _load_error(bad, r"weights/0000.npy holds \d+ data bytes; shape \(4, 3\) of <f4 needs 48")


@pytest.mark.parametrize("dtype", ["V50000000", "<i1", "|b1", "<f2", "<c8"])
def test_weight_with_non_float_dtype_is_refused(tmp_path, dtype):
    _, _, path = _saved(tmp_path)
    header = {"descr": dtype, "fortran_order": False, "shape": (4, 3)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    bad = _rewrite(path, tmp_path / "dt.pynn", replace={"weights/0000.npy": buf.getvalue()})
    _load_error(bad, r"weights/0000.npy has dtype .*expected one of")


def test_object_dtype_npy_is_refused(tmp_path):
    _, _, path = _saved(tmp_path)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": (4, 3)})
    bad = _rewrite(path, tmp_path / "obj.pynn", replace={"weights/0000.npy": buf.getvalue() + b"x" * 96})
    _load_error(bad, r"dtype|npy")


@pytest.mark.parametrize("dtype", ["int8", "bool", "object", "float16"])
def test_layer_dtype_outside_float32_float64_is_refused(tmp_path, dtype):
    _, _, path = _saved(tmp_path)

    def edit(cfg):
        cfg["model"]["config"]["layers"][0]["config"]["dtype"] = dtype
    bad = _rewrite(path, tmp_path / "ldt.pynn", edit_config=edit)
    _load_error(bad, r"dtype must be one of \['float32', 'float64'\]")


def _layers_key(cfg):
    return cfg["model"]["config"]["layers"]


MALFORMED = {
    "class __builtins__": lambda c: _layers_key(c)[0].__setitem__("class_name", "__builtins__"),
    "class Variable": lambda c: _layers_key(c)[0].__setitem__("class_name", "Variable"),
    "class lower-case dense": lambda c: _layers_key(c)[0].__setitem__("class_name", "dense"),
    "class a number": lambda c: _layers_key(c)[0].__setitem__("class_name", 7),
    "config not a dict": lambda c: _layers_key(c)[0].__setitem__("config", [1, 2]),
    "layers missing": lambda c: c["model"]["config"].pop("layers"),
    "model missing": lambda c: c.pop("model"),
    "layer entry a string": lambda c: _layers_key(c).__setitem__(0, "Dense"),
    "json a list": lambda c: b"[1, 2, 3]",
    "deep nesting": lambda c: ("[" * 200_000 + "]" * 200_000).encode(),
    "deep but parseable nesting": lambda c: json.dumps(
        dict(c, extra=json.loads("[" * 500 + "]" * 500))),
    "compile not a dict": lambda c: c.__setitem__("compile", [1]),
    "unknown loss": lambda c: c["compile"].__setitem__("loss", {"class_name": "os.system", "config": {}}),
    "not json": lambda c: b"\xff\xfe{",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_model_json_is_a_valueerror(tmp_path, case):
    _, _, path = _saved(tmp_path)
    bad = _rewrite(path, tmp_path / "bad.pynn", edit_config=MALFORMED[case])
    with pytest.raises(ValueError, match="load_model"):
        pynn.load_model(bad)


def test_unknown_class_error_lists_known_classes(tmp_path):
    _, _, path = _saved(tmp_path)
    bad = _rewrite(path, tmp_path / "bad.pynn", edit_config=MALFORMED["class __builtins__"])
    _load_error(bad, r"unknown layer class '__builtins__'; known classes: .*Dense")


def test_functional_model_with_out_of_range_node_index_is_a_valueerror(tmp_path):
    inp = pynn.Input((4,))
    m = pynn.Model(inp, layers.Dense(2)(layers.Dense(3)(inp)))
    m.save(tmp_path / "f.pynn")
    text = json.dumps(json.loads(zipfile.ZipFile(tmp_path / "f.pynn").read("model.json")))
    cfg = json.loads(text)

    def corrupt(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if isinstance(x, int) and not isinstance(x, bool) and k not in ("version", "units"):
                    v[k] = 10_000
                else:
                    corrupt(x)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                if isinstance(x, int) and not isinstance(x, bool):
                    v[i] = 10_000
                else:
                    corrupt(x)
    corrupt(cfg["model"]["config"].get("output_layers", cfg["model"]["config"]))
    bad = _rewrite(tmp_path / "f.pynn", tmp_path / "fbad.pynn", edit_config=lambda c: c.update(cfg))
    with pytest.raises(ValueError, match="load_model"):
        pynn.load_model(bad)


def test_unknown_format_version_is_a_clear_error(tmp_path):
    _, _, path = _saved(tmp_path)
    bad = _rewrite(path, tmp_path / "v.pynn", edit_config=lambda c: c.__setitem__("version", 99))
    _load_error(bad, r"format version 99 is not one this pynn reads \(1\.\.1\); a newer pynn wrote it")


@pytest.mark.parametrize("iterations", [np.array(-1, np.int64), np.array([3, 4], np.int64), np.array(2.5)])
def test_invalid_optimizer_iterations_is_refused(tmp_path, iterations):
    _, _, path = _saved(tmp_path)
    bad = _rewrite(path, tmp_path / "it.pynn", replace={"optimizer/0000.npy": _npy(iterations)})
    with pytest.raises(ValueError, match=r"optimizer/0000.npy|iterations"):
        pynn.load_model(bad)


def test_optimizer_slot_with_wrong_shape_is_refused(tmp_path):
    _, _, path = _saved(tmp_path)
    bad = _rewrite(path, tmp_path / "slot.pynn", replace={"optimizer/0001.npy": _npy(np.zeros((5, 5), np.float32))})
    _load_error(bad, r"optimizer/0001.npy has shape \(5, 5\), the model expects \(4, 3\)")


def test_set_state_rejects_negative_iterations():
    m, _ = _model()
    state = m.optimizer.get_state()
    state[0] = np.array(-1)
    with pytest.raises(ValueError, match="iterations .* non-negative integer"):
        m.optimizer.set_state(state)


def test_missing_optimizer_state_warns_and_still_loads(tmp_path):
    m, x, path = _saved(tmp_path)
    with zipfile.ZipFile(path) as z:
        opt = [n for n in z.namelist() if n.startswith("optimizer/")]
    bad = _rewrite(path, tmp_path / "noopt.pynn", drop=opt)
    with pytest.warns(RuntimeWarning, match="has no optimizer state"):
        m2 = pynn.load_model(bad)
    np.testing.assert_allclose(m2.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6)
    assert m2.optimizer.iterations == 0


def test_round_trip_still_exact(tmp_path):
    m, x, path = _saved(tmp_path)
    m2 = pynn.load_model(path)
    np.testing.assert_array_equal(m2.predict(x, verbose=0), m.predict(x, verbose=0))
    assert m2.optimizer.iterations == m.optimizer.iterations


def test_stale_temporaries_of_killed_saves_are_removed_at_next_save(tmp_path):
    path = tmp_path / "big.pynn"
    script = textwrap.dedent(f"""
        import numpy as np, pynn, pynn.saving as s, time
        def slow(f):
            f.write(b"x" * 1000); f.flush(); print("writing", flush=True); time.sleep(60)
        s.atomic_write({str(path)!r}, slow)
    """)
    for _ in range(2):
        p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "writing"
        p.send_signal(signal.SIGKILL)
        p.wait()
    stale = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(stale) == 1  # the second interrupted save already removed the first one's file
    other = tmp_path / ".pynn-other.pynn.1.abc.tmp"  # another target's temporary is not touched
    other.write_bytes(b"")
    m, _ = _model()
    m.save(path)
    left = sorted(n for n in os.listdir(tmp_path) if n.endswith(".tmp"))
    assert left == [other.name]
    pynn.load_model(path)


def test_temporary_of_a_live_writer_is_kept(tmp_path):
    path = tmp_path / "m.pynn"
    mine = tmp_path / f".pynn-m.pynn.{os.getppid()}.x.tmp"  # the parent process is alive
    mine.write_bytes(b"")
    m, _ = _model()
    m.save(path)
    assert mine.exists()
