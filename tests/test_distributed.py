"""DataParallel over MPI: two ranks train exactly what one process trains on the
global batch, and the rank-0-only / global-logs / abort contracts hold.

Every MPI test runs ``mpiexec -n 2 python -m mpi4py script.py`` in a subprocess
with a timeout (a hung collective must fail the test, not the CI job). The
scripts are written to tmp_path; each rank reports through its own JSON file.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pynn
from pynn.distribution import find_mpiexec
from pynn.distribution.data_parallel import split

MPIEXEC = find_mpiexec()


def _need_mpi():
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'pynn-cpu[mpi]')")
    pytest.importorskip("sklearn")
    if MPIEXEC is None:
        pytest.skip("no mpiexec next to this Python, in the mpich wheel or on PATH (pip install mpich)")


def run_mpi(script, args=(), n=2, timeout=180, threads="1"):
    """Run ``script`` on ``n`` ranks; returns the CompletedProcess (never hangs past timeout)."""
    env = dict(os.environ)
    env.pop("PYNN_NUM_THREADS", None)
    if threads is not None:
        env["PYNN_NUM_THREADS"] = threads  # one thread per rank: 2 ranks on 2 cores, no oversubscription
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [MPIEXEC, "-n", str(n), sys.executable, "-m", "mpi4py", str(script), *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _check(proc):
    assert proc.returncode == 0, f"mpiexec failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


COMMON = textwrap.dedent("""
    import json, sys
    import numpy as np
    import pynn
    from pynn import layers, optimizers
    from pynn.distribution import DataParallel, set_distribution
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    out_dir = sys.argv[1]
    (x_all, y_all), (xt, yt) = pynn.datasets.load_digits(flatten=True)
    xt, yt = xt[:101], yt[:101]

    def dump(name, obj):
        with open(f"{out_dir}/{name}-rank{rank}.json", "w") as f:
            json.dump(obj, f)
""")

# Each case: the distributed fit (rank-dependent initial weights and generator),
# then, on rank 0 only, the same fit on one process from rank 0's initial weights
# and rank 0's generator seed.
EQUIVALENCE = COMMON + textwrap.dedent("""
    CASES = {
        # name: (optimizer, shuffle, samples, batch_size, extra)
        "sgd-shuffle":    ("sgd", True, 301, 32, ""),     # 9 batches of 32 (16|16), a tail of 13 (7|6)
        "sgd-noshuffle":  ("sgd", False, 301, 32, ""),
        "adam-shuffle":   ("adam", True, 301, 32, ""),
        "adam-noshuffle": ("adam", False, 301, 33, ""),   # every global batch split 17|16
        "adam-tail-of-1": ("adam", True, 289, 32, ""),    # the last batch has 1 sample: rank 1 gets none
        "sgd-weighted-validation": ("sgd", True, 301, 32, "sw"),
        "bn-synchronized": ("sgd", True, 301, 32, "bn-sync"),
        # SGD: a 1-sample batch through BatchNormalization has an exactly zero true gradient for the
        # weights before it, so both runs' gradients there are rounding residue, which Adam (m/sqrt(v)
        # with v ~ 0) would turn into full learning-rate steps of either sign.
        "bn-synchronized-tail-of-1": ("sgd", True, 289, 32, "bn-sync"),
        "bn-per-rank":     ("sgd", True, 301, 32, "bn-local"),
        "conv-bn-synchronized": ("sgd", True, 301, 32, "conv-bn-sync"),  # statistics over (N, H, W)
        "binary-precision-recall-auc": ("adam", True, 301, 32, "binary"),  # metrics with array states
        "adam-iterable-of-batches": ("adam", False, 301, 32, "iterable"),  # x: an iterable of global batches
        "adam-resumed": ("adam", True, 301, 32, "resumed"),  # ranks arrive with different Adam states
    }

    def build(opt, extra):
        body = [layers.Input((64,)), layers.Dense(32)]
        if extra == "conv-bn-sync":
            body = [layers.Input((8, 8, 1)), layers.Conv2D(4, 3), layers.BatchNormalization(synchronized=True),
                    layers.Activation("relu"), layers.Flatten(), layers.Dense(10)]
            m = pynn.Sequential(body)
            m.compile(optimizer=optimizers.SGD(0.05, momentum=0.9),
                      loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
            return m
        if extra.startswith("bn"):
            body.append(layers.BatchNormalization(momentum=0.9, synchronized=extra == "bn-sync"))
        binary = extra == "binary"
        body += [layers.Activation("relu"), layers.Dense(1, activation="sigmoid") if binary else layers.Dense(10)]
        m = pynn.Sequential(body)
        optimizer = optimizers.SGD(0.05, momentum=0.9) if opt == "sgd" else optimizers.Adam(1e-2)
        if binary:
            m.compile(optimizer=optimizer, loss="binary_crossentropy",
                      metrics=["accuracy", "precision", "recall", "auc"])
        else:
            m.compile(optimizer=optimizer, loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return m

    def train(m, x, y, bs, shuffle, extra):
        kw = {}
        if extra == "sw":
            kw = dict(sample_weight=np.linspace(0.2, 2.0, len(x)).astype(np.float32), validation_split=0.1)
        if extra == "iterable":
            class Batches:  # re-iterable, as a Keras PyDataset: fit iterates it once per epoch
                def __iter__(self):
                    return ((x[i:i + bs], y[i:i + bs]) for i in range(0, len(x), bs))

                def __len__(self):
                    return -(-len(x) // bs)
            return m.fit(Batches(), epochs=3, verbose=0).history
        return m.fit(x, y, batch_size=bs, epochs=3, shuffle=shuffle, verbose=0, **kw).history

    report = {}
    for name, (opt, shuffle, n, bs, extra) in CASES.items():
        x, y = x_all[:n], y_all[:n]
        xte, yte = xt, yt
        if extra == "conv-bn-sync":
            x, xte = x.reshape(-1, 8, 8, 1), xt.reshape(-1, 8, 8, 1)
        if extra == "binary":
            y, yte = (y < 5).astype(np.float32), (yt < 5).astype(np.float32)
        pynn.set_seed(100 + rank)            # different initial weights on each rank
        m = build(opt, extra)
        opt_state = None
        if extra == "resumed":   # one local epoch on a different slice per rank, before any distribution
            m.fit(x[rank * 64:(rank + 1) * 64], y[rank * 64:(rank + 1) * 64], batch_size=16, verbose=0)
            opt_state = m.optimizer.get_state()
        init = m.get_weights()
        pynn.set_seed(1000 + rank)           # different generators: rank 0's drives the shuffle
        dp = DataParallel()
        set_distribution(dp)
        hist = train(m, x, y, bs, shuffle, extra)
        ev = m.evaluate(xte, yte, batch_size=16, return_dict=True)
        pred = m.predict(xte, batch_size=16)
        set_distribution(None)
        weights = m.get_weights()
        everyone = comm.gather(weights, root=0)
        if rank == 0:
            ref = build(opt, extra)
            ref.set_weights(init)
            if opt_state is not None:
                ref.optimizer.build(ref.trainable_weights)
                ref.optimizer.set_state(opt_state)
            pynn.set_seed(1000)
            ref_hist = train(ref, x, y, bs, shuffle, extra)
            ref_ev = ref.evaluate(xte, yte, return_dict=True)
            ref_pred = ref.predict(xte)
            report[name] = {
                "weight_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(weights, ref.get_weights())),
                "rank_diff": max(float(np.max(np.abs(a - b))) for w in everyone[1:] for a, b in zip(everyone[0], w)),
                "init_rank_diff": None,
                "history": hist, "ref_history": ref_hist, "evaluate": ev, "ref_evaluate": ref_ev,
                "predict_diff": float(np.max(np.abs(pred - ref_pred))),
                "predict_scale": float(np.max(np.abs(ref_pred))),
                "predict_shape": list(pred.shape), "allreduce_calls": dp.stats["allreduce_calls"],
                "logs_reduce_calls": dp.stats["logs_reduce_calls"],
            }
        inits = comm.gather(init, root=0)
        if rank == 0:
            report[name]["init_rank_diff"] = max(float(np.max(np.abs(a - b))) for w in inits[1:]
                                                 for a, b in zip(inits[0], w))
    if rank == 0:
        dump("equivalence", report)
""")


@pytest.fixture(scope="module")
def equivalence(tmp_path_factory):
    _need_mpi()
    d = tmp_path_factory.mktemp("mpi_equivalence")
    (d / "script.py").write_text(EQUIVALENCE)
    _check(run_mpi(d / "script.py", [d]))
    return json.loads((d / "equivalence-rank0.json").read_text())


EXACT_CASES = ["sgd-shuffle", "sgd-noshuffle", "adam-shuffle", "adam-noshuffle", "adam-tail-of-1",
               "sgd-weighted-validation", "bn-synchronized", "bn-synchronized-tail-of-1", "conv-bn-synchronized",
               "binary-precision-recall-auc",
               "adam-iterable-of-batches", "adam-resumed"]


@pytest.mark.parametrize("case", EXACT_CASES)
def test_two_ranks_train_the_same_weights_as_one_process_on_the_global_batch(equivalence, case):
    r = equivalence[case]
    assert r["init_rank_diff"] > 1e-3          # the ranks really started from different weights
    assert r["weight_diff"] <= 1e-5, r["weight_diff"]


@pytest.mark.parametrize("case", EXACT_CASES)
def test_two_ranks_log_the_losses_and_metrics_of_one_process(equivalence, case):
    r = equivalence[case]
    assert sorted(r["history"]) == sorted(r["ref_history"])
    for key, ref in r["ref_history"].items():
        np.testing.assert_allclose(r["history"][key], ref, rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("case", list(EXACT_CASES) + ["bn-per-rank"])
def test_every_rank_ends_with_identical_weights(equivalence, case):
    assert equivalence[case]["rank_diff"] == 0.0


def test_each_step_makes_one_allreduce_when_no_callback_reads_batch_logs(equivalence):
    r = equivalence["sgd-shuffle"]
    assert r["allreduce_calls"] == 3 * 10     # 3 epochs of ceil(301/32) steps
    assert r["logs_reduce_calls"] == 3 + 1    # the metric states: once per epoch, once in evaluate


@pytest.mark.parametrize("case", EXACT_CASES)
def test_evaluate_and_predict_are_global_and_in_order(equivalence, case):
    r = equivalence[case]
    for key, ref in r["ref_evaluate"].items():
        np.testing.assert_allclose(r["evaluate"][key], ref, rtol=1e-5, atol=1e-6, err_msg=key)
    assert r["predict_shape"] == [101, 1 if case.startswith("binary") else 10]
    assert r["predict_diff"] <= 1e-5 * max(1.0, r["predict_scale"])


def test_per_rank_batch_statistics_differ_from_the_global_batch(equivalence):
    # The default BatchNormalization normalises each rank's slice by its own
    # statistics (as Keras and PyTorch): not the one-process result. This is what
    # synchronized=True fixes, and shows the equivalence tests can fail.
    assert equivalence["bn-per-rank"]["weight_diff"] > 1e-4
    assert equivalence["bn-synchronized"]["weight_diff"] <= 1e-5


CALLBACKS = COMMON + textwrap.dedent("""
    import os
    from pynn import callbacks
    files = f"{out_dir}/files"
    x, y = x_all[:256], y_all[:256]
    pynn.set_seed(rank)
    m = pynn.Sequential([layers.Input((64,)), layers.Dense(16, activation="relu"), layers.Dense(10)])
    m.compile(optimizer=optimizers.SGD(0.1), loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    dp = DataParallel()
    set_distribution(dp)
    cbs = [callbacks.ModelCheckpoint(f"{files}/ckpt-rank{rank}-{{epoch}}.pynn", monitor="val_loss"),
           callbacks.CSVLogger(f"{files}/log-rank{rank}.csv"),
           # min_delta so large that the second epoch never improves: stop after it, on every rank together
           callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0),
           callbacks.ReduceLROnPlateau(monitor="val_loss", patience=0, factor=0.5, min_delta=10.0),
           callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batch_logs.append(dict(logs)))]
    batch_logs = []
    hist = m.fit(x, y, batch_size=64, epochs=5, validation_data=(xt, yt), callbacks=cbs, verbose=1)
    m.save(f"{files}/model-rank{rank}.pynn")
    m.save_weights(f"{files}/weights-rank{rank}.npz")
    lr = float(m.optimizer.learning_rate)
    set_distribution(None)
    before = dp.stats["logs_reduce_calls"]
    with dp.scope():   # Keras's context-manager form
        inside = pynn.distribution.distribution() is dp
        scoped_eval = m.evaluate(xt, yt, return_dict=True)
    scope = {"inside": inside, "after": pynn.distribution.distribution() is None, "eval": scoped_eval,
             "reductions": dp.stats["logs_reduce_calls"] - before}
    set_distribution(dp)
    errors = {}
    try:
        m.compile(optimizer="sgd", loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum"))
        m.fit(x, y, epochs=1, verbose=0)
    except ValueError as e:
        errors["sum"] = str(e)
    try:
        m.train_on_batch(x[:8], y[:8])
    except NotImplementedError as e:
        errors["train_on_batch"] = str(e)
    dump("callbacks", {"epochs": len(hist.history["loss"]), "history": hist.history, "batch_logs": batch_logs,
                       "lr": lr, "scope": scope, "threads": dp.num_threads,
                       "local_size": dp.local_size, "cores": len(os.sched_getaffinity(0)), "errors": errors})
""")


@pytest.fixture(scope="module")
def callbacks_run(tmp_path_factory):
    _need_mpi()
    d = tmp_path_factory.mktemp("mpi_callbacks")
    (d / "files").mkdir()
    (d / "script.py").write_text(CALLBACKS)
    # No PYNN_NUM_THREADS: DataParallel picks the threads per rank itself.
    proc = run_mpi(d / "script.py", [d], threads=None)
    _check(proc)
    ranks = [json.loads((d / f"callbacks-rank{r}.json").read_text()) for r in range(2)]
    return d, proc, ranks


def test_only_rank_0_writes_checkpoints_logs_and_saved_models(callbacks_run):
    d, _, _ = callbacks_run
    written = sorted(p.name for p in (d / "files").iterdir())
    assert written == ["ckpt-rank0-1.pynn", "ckpt-rank0-2.pynn", "log-rank0.csv", "model-rank0.pynn",
                       "weights-rank0.npz"], written
    rows = (d / "files" / "log-rank0.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2


def test_only_rank_0_prints_the_progress_bar(callbacks_run):
    _, proc, _ = callbacks_run
    assert proc.stdout.count("Epoch 1/5") == 1 and proc.stdout.count("Epoch 2/5") == 1


def test_early_stopping_and_lr_schedule_decide_together_on_global_values(callbacks_run):
    _, _, (r0, r1) = callbacks_run
    assert r0["epochs"] == r1["epochs"] == 2
    assert r0["history"] == r1["history"]          # the logs (loss, val_loss, lr ...) are the global ones
    assert r0["lr"] == r1["lr"] == pytest.approx(0.1 * 0.5)   # reduced once, after epoch 2


def test_batch_callbacks_see_global_logs_on_every_rank(callbacks_run):
    _, _, (r0, r1) = callbacks_run
    assert len(r0["batch_logs"]) == 2 * 4     # 2 epochs of 256/64 steps
    assert r0["batch_logs"] == r1["batch_logs"]
    # The last batch's running values are the epoch's.
    assert r0["batch_logs"][-1]["loss"] == r0["history"]["loss"][-1]


def test_scope_activates_the_distribution_for_a_block(callbacks_run):
    _, _, (r0, r1) = callbacks_run
    assert r0["scope"]["inside"] and r0["scope"]["after"]
    assert r0["scope"]["reductions"] == r1["scope"]["reductions"] == 1    # evaluated as one sharded job
    assert r0["scope"]["eval"] == r1["scope"]["eval"]


def test_threads_per_rank_default_to_cores_over_local_ranks(callbacks_run):
    _, _, ranks = callbacks_run
    for r in ranks:
        assert r["local_size"] == 2
        assert r["threads"] == max(1, r["cores"] // 2)


def test_unsupported_uses_fail_clearly_under_data_parallel(callbacks_run):
    _, _, (r0, _) = callbacks_run
    assert "reduction='sum'" in r0["errors"]["sum"]
    assert "use fit()" in r0["errors"]["train_on_batch"]


FAILING = COMMON + textwrap.dedent("""
    from pynn import callbacks
    m = pynn.Sequential([layers.Input((64,)), layers.Dense(10)])
    m.compile(optimizer="sgd", loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    set_distribution(DataParallel())

    def fail(epoch, logs=None):
        if rank == 1 and epoch == 1:
            raise RuntimeError("rank 1 fails on purpose")
    # Rank 0 goes on into epoch 2's first allreduce and would wait forever without -m mpi4py's abort.
    m.fit(x_all[:128], y_all[:128], batch_size=32, epochs=50, verbose=0,
          callbacks=[callbacks.LambdaCallback(on_epoch_begin=fail)])
""")


def test_one_rank_raising_ends_the_whole_job_with_an_error(tmp_path):
    _need_mpi()
    (tmp_path / "script.py").write_text(FAILING)
    proc = run_mpi(tmp_path / "script.py", [tmp_path], timeout=120)
    assert proc.returncode != 0
    assert "rank 1 fails on purpose" in proc.stderr


EXAMPLE = textwrap.dedent("""
    import json, os, sys
    from mpi4py import MPI
    sys.path.insert(0, sys.argv[2])
    import distributed_mnist_like
    accuracy = distributed_mnist_like.main(epochs=6, verbose=0, checkpoint=os.path.join(sys.argv[1], "best.pynn"))
    with open(os.path.join(sys.argv[1], f"accuracy-rank{MPI.COMM_WORLD.Get_rank()}.json"), "w") as f:
        json.dump(accuracy, f)
""")


def test_distributed_digits_cnn_example_learns_and_every_rank_agrees(tmp_path):
    _need_mpi()
    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
    (tmp_path / "script.py").write_text(EXAMPLE)
    _check(run_mpi(tmp_path / "script.py", [tmp_path, examples]))
    accuracies = [json.loads((tmp_path / f"accuracy-rank{r}.json").read_text()) for r in range(2)]
    assert accuracies[0] == accuracies[1] >= 0.9
    assert (tmp_path / "best.pynn").exists()
    assert pynn.load_model(tmp_path / "best.pynn").count_params() > 0


MISMATCHED = COMMON + textwrap.dedent("""
    m = pynn.Sequential([layers.Input((64,)), layers.Dense(10)])
    m.compile(optimizer="sgd", loss=pynn.losses.SparseCategoricalCrossentropy(from_logits=True))
    set_distribution(DataParallel())
    n = 128 if rank == 0 else 96   # a script bug: the ranks load different amounts of data
    m.fit(x_all[:n], y_all[:n], batch_size=32, epochs=2, verbose=0)
""")


def test_ranks_with_different_data_sizes_fail_clearly_instead_of_hanging(tmp_path):
    _need_mpi()
    (tmp_path / "script.py").write_text(MISMATCHED)
    proc = run_mpi(tmp_path / "script.py", [tmp_path], timeout=120)
    assert proc.returncode != 0
    assert "the ranks disagree on the training loop" in proc.stderr
    assert "'samples': 128" in proc.stderr and "'samples': 96" in proc.stderr


# ---------------------------------------------------------------- without MPI
def test_importing_pynn_does_not_import_mpi4py():
    code = "import sys, pynn, pynn.distribution; assert 'mpi4py' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_rank_queries_answer_for_one_process_without_mpi():
    code = ("import pynn.distribution as d; "
            "assert (d.rank(), d.world_size(), d.is_primary(), d.distribution()) == (0, 1, True, None); "
            "d.barrier()")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_data_parallel_refuses_keras_device_arguments():
    # Checked before mpi4py is imported: no MPI is started in the test process.
    with pytest.raises(ValueError, match="MPI processes"):
        pynn.distribution.DataParallel(devices=["cpu:0", "cpu:1"])


def test_set_distribution_rejects_other_objects():
    with pytest.raises(TypeError, match="DataParallel"):
        pynn.distribution.set_distribution("data_parallel")


def _metric_inputs(rng, n=40):
    """Candidate (y_true, y_pred) pairs; each metric takes the first it accepts."""
    p3 = rng.random((n, 3))
    p3 /= p3.sum(1, keepdims=True)
    return [((rng.random((n, 1)) > 0.5).astype(np.float32), rng.random((n, 1))),
            (rng.integers(0, 3, n), p3),
            (np.eye(3)[rng.integers(0, 3, n)], p3),
            (rng.standard_normal((n, 2)), rng.standard_normal((n, 2)))]


def test_metric_states_are_found_and_add_up_across_ranks_for_every_builtin_metric():
    # DataParallel sums each metric's state over the ranks: for every built-in metric, the state
    # keys must be found and summing two shards' states must give the metric of the whole data.
    import copy
    from pynn.distribution.data_parallel import _state_keys
    rng = np.random.default_rng(0)
    for name, cls in pynn.metrics._BY_NAME.items():
        keys = _state_keys(cls())
        assert keys, name
        for yt, yp in _metric_inputs(rng):
            whole = cls()
            try:
                whole.update_state(yt, yp)
            except (ValueError, TypeError, IndexError):
                continue
            a, b = cls(), cls()
            a.update_state(yt[:17], yp[:17])
            b.update_state(yt[17:], yp[17:])
            summed = copy.deepcopy(a)
            for k in keys:
                setattr(summed, k, getattr(a, k) + getattr(b, k))
            np.testing.assert_allclose(np.asarray(summed.result(), np.float64),
                                       np.asarray(whole.result(), np.float64), rtol=1e-6, atol=1e-7,
                                       err_msg=name)
            break
        else:
            raise AssertionError(f"no test input fits metric {name}")
    assert _state_keys(pynn.metrics.Mean("loss")) == ["count", "total"]


@pytest.mark.parametrize("n", [0, 1, 5, 13, 32, 33])
@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_split_covers_every_sample_once_with_sizes_differing_by_at_most_one(n, parts):
    ranges = [split(n, parts, r) for r in range(parts)]
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = [hi - lo for lo, hi in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_batch_normalization_synchronized_round_trips_its_config():
    layer = pynn.layers.BatchNormalization(synchronized=True)
    assert layer.get_config()["synchronized"] is True
    assert type(layer).from_config(layer.get_config()).synchronized is True
    assert pynn.layers.BatchNormalization().get_config()["synchronized"] is False


def test_synchronized_batch_normalization_on_one_process_is_the_ordinary_layer(rng):
    x = rng.standard_normal((16, 5)).astype(np.float32)
    plain, synced = pynn.layers.BatchNormalization(), pynn.layers.BatchNormalization(synchronized=True)
    np.testing.assert_allclose(synced(x, training=True).data, plain(x, training=True).data, rtol=1e-6, atol=1e-6)
