"""``DataParallel``: one model replica per MPI process, each on its slice of
every global batch (Horovod's design: broadcast at the start, one fused
gradient allreduce per step, metrics reduced in a fixed order, rank 0 writes).

Why one flat buffer and one ``Allreduce(IN_PLACE)`` per step: the models pynn
trains on a CPU are small, so a step's gradient exchange is latency-bound; one
collective instead of one per weight pays the latency once (PyTorch DDP's
bucketing, with a single bucket).
"""
import copy
import os
import sys
import time
from contextlib import contextmanager

import numpy as np

from .. import _parallel, _weights_epoch
from .core import mpi


def split(n, parts, index):
    """[lo, hi) of part ``index`` when ``n`` items are cut into ``parts`` contiguous
    pieces whose sizes differ by at most one (the first ``n % parts`` get one more)."""
    base, extra = divmod(n, parts)
    lo = index * base + min(index, extra)
    return lo, lo + base + (index < extra)


class DataParallel:
    """Data parallelism over MPI processes (``mpi4py``), with Keras 3's name.

    ``comm``: the mpi4py communicator to span (default ``MPI.COMM_WORLD``).
    Keras's ``devices``/``device_mesh`` are refused: the processes are the devices.
    Activate with ``pynn.distribution.set_distribution(DataParallel())``; then

    - ``fit``: ``batch_size`` is the global batch. Every rank shuffles with the
      same order (rank 0's generator state is broadcast each epoch), takes its
      contiguous slice of each global batch, and runs the same number of steps.
      Gradients are scaled by (local samples / global samples) and summed with
      one allreduce, so an uneven slice still gives the gradient of the global
      batch's mean loss. Rank 0's weights and optimizer state are broadcast when
      ``fit`` starts; non-trainable weights (BatchNormalization's moving
      statistics, kept per rank while training) are broadcast from rank 0 at each
      epoch's end, as PyTorch DDP's ``broadcast_buffers``. Logged loss and metrics
      are global: the metric states are summed across ranks in name order, once
      per epoch, and after every step too when a callback reads batch logs.
      Before the first step the ranks check they run the same loop (steps,
      epochs, samples...), so a mismatch is an error, not a hang. The progress
      bar, ``ModelCheckpoint``, ``CSVLogger``
      and ``save`` act on rank 0 only; ``EarlyStopping``/``ReduceLROnPlateau``
      see the global values, so all ranks stop together.
    - ``evaluate``/``predict``: each rank takes a contiguous shard; results are
      reduced (evaluate) or gathered in the original order (predict) on every rank.
    - Threads: each rank uses ``cores / ranks on this host`` native threads
      unless ``PYNN_NUM_THREADS`` is set (and NumPy's BLAS as many, through
      threadpoolctl when it is installed, unless ``OPENBLAS_NUM_THREADS`` or
      ``OMP_NUM_THREADS`` is set).

    ``stats`` counts the gradient and logs allreduces (calls, wall seconds, bytes,
    CPU seconds inside them) for benchmarks.
    """

    def __init__(self, comm=None, *, devices=None, device_mesh=None):
        if devices is not None or device_mesh is not None:
            raise ValueError("DataParallel: pynn's devices are the MPI processes mpiexec starts (one replica "
                             "each); Keras's devices=/device_mesh= have no meaning here. Pass comm= (an mpi4py "
                             "communicator) to train on a subset of the processes")
        MPI = mpi()
        self._MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.world_size = self.comm.Get_size()
        # Ranks that share this host's memory share its cores.
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        self.num_threads = None
        self._saved_threads = None
        self._blas_limits = None
        self.step_scale = 1.0   # this rank's share of the current global batch (read by synchronized BN)
        self.stats = {"allreduce_calls": 0, "allreduce_seconds": 0.0, "allreduce_bytes": 0,
                      "logs_reduce_calls": 0, "logs_reduce_seconds": 0.0,
                      "collective_cpu_seconds": 0.0}   # CPU spent inside those calls (MPI busy-polls while it waits)

    def __repr__(self):
        return f"DataParallel(rank={self.rank}, world_size={self.world_size}, local_size={self.local_size})"

    # ------------------------------------------------------------ activation
    def _activate(self):
        from .. import get_num_threads, set_num_threads
        self._saved_threads = get_num_threads()
        if os.environ.get("PYNN_NUM_THREADS"):
            self.num_threads = get_num_threads()   # the user's choice, read at import by the native runtime
        else:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            self.num_threads = max(1, cores // self.local_size)
            set_num_threads(self.num_threads)
        # NumPy's BLAS (the numpy backend, some ops) would otherwise start all-cores
        # thread pools in every rank. threadpoolctl ships with scikit-learn; without
        # it, OPENBLAS_NUM_THREADS/OMP_NUM_THREADS in the launch environment do the same.
        blas_env = any(os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"))
        if not blas_env and self.local_size > 1:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                pass
            else:
                self._blas_limits = threadpool_limits(limits=self.num_threads, user_api="blas")

    def _deactivate(self):
        from .. import set_num_threads
        if self._saved_threads is not None:
            set_num_threads(self._saved_threads)
            self._saved_threads = None
        if self._blas_limits is not None:
            self._blas_limits.restore_original_limits()
            self._blas_limits = None

    @contextmanager
    def scope(self):
        """``with dp.scope():`` activates this distribution for the block (Keras's name)."""
        from .core import distribution, set_distribution
        previous = distribution()
        set_distribution(self)
        try:
            yield self
        finally:
            set_distribution(previous)

    @contextmanager
    def _cpu_in_mpi(self):
        """Count the CPU time of the enclosed collectives in stats (benchmarks
        subtract it: MPI busy-polls while it waits for another rank)."""
        c = time.process_time()
        try:
            yield
        finally:
            self.stats["collective_cpu_seconds"] += time.process_time() - c

    # ------------------------------------------------------------ hooks used by Model
    def fit_session(self, model):
        return FitSession(self, model)

    def local_range(self, n):
        """This rank's contiguous [lo, hi) of ``n`` samples (evaluate/predict shards)."""
        return split(n, self.world_size, self.rank)

    def shard_arrays(self, xs, ys, sw, batch_size):
        """This rank's shard of evaluate's data, and the per-rank batch size that
        keeps the global batch at ``batch_size``."""
        lo, hi = self.local_range(len(xs[0]))
        sl = slice(lo, hi)
        return ([v[sl] for v in xs], [v[sl] for v in ys], None if sw is None else sw[sl],
                max(1, -(-batch_size // self.world_size)))

    def reduce_logs(self, model, logs):
        """``logs`` made global: each value that is a metric's result (the loss
        tracker, compiled metrics, any Metric the model holds) is recomputed from
        that metric's state summed over the ranks (weighted sums and counts, so
        the result is the one over every rank's samples); any other number (a
        custom step's own value) is averaged over the ranks. One allreduce, in
        name order, so every rank issues the same call."""
        metrics = {}
        for m in _metric_objects(model):
            metrics.setdefault(m.name, m)
        names = sorted(k for k in logs if k in metrics)
        others = sorted(k for k in logs if k not in metrics)
        layout, parts = [], []
        for name in names:
            m = metrics[name]
            for key in _state_keys(m):
                value = np.asarray(getattr(m, key), np.float64)
                layout.append((name, key, value.shape, isinstance(getattr(m, key), np.ndarray)))
                parts.append(value.ravel())
        parts.append(np.array([float(logs[k]) / self.world_size for k in others], np.float64))
        buf = np.concatenate(parts)
        t, c = time.perf_counter(), time.process_time()
        self.comm.Allreduce(self._MPI.IN_PLACE, buf)
        self.stats["logs_reduce_seconds"] += time.perf_counter() - t
        self.stats["collective_cpu_seconds"] += time.process_time() - c
        self.stats["logs_reduce_calls"] += 1
        merged = {name: copy.copy(metrics[name]) for name in names}
        offset = 0
        for name, key, shape, is_array in layout:
            size = int(np.prod(shape))
            value = buf[offset:offset + size].reshape(shape)
            offset += size
            setattr(merged[name], key, value.copy() if is_array else float(value))
        averaged = dict(zip(others, (float(v) for v in buf[offset:])))
        return {k: merged[k].result() if k in merged else averaged[k] for k in logs}

    def gather(self, outputs, n_local):
        """Concatenate every rank's predict outputs in rank order (= sample order),
        on every rank. ``outputs``: this rank's list of arrays (empty if it had no samples)."""
        meta = [(a.shape[1:], a.dtype.str) for a in outputs] if n_local else None
        metas = self.comm.allgather(meta)
        counts = self.comm.allgather(int(n_local))
        ref = next(m for m in metas if m is not None)
        gathered = []
        for j, (tail, dtype) in enumerate(ref):
            row = int(np.prod(tail))
            send = np.ascontiguousarray(outputs[j]) if n_local else np.empty((0,) + tuple(tail), dtype)
            recv = np.empty((sum(counts),) + tuple(tail), dtype)
            self.comm.Allgatherv(send, [recv, [c * row for c in counts]])
            gathered.append(recv)
        return gathered

    def broadcast_weights(self, weights):
        """Copy rank 0's value of each weight into every rank's, in place."""
        _weights_epoch.bump()   # inference plans rebuild (and release the arrays they froze)
        for w in weights:
            data = w.data
            if data.flags.c_contiguous and data.flags.writeable:
                self.comm.Bcast(data, root=0)
            else:
                tmp = np.ascontiguousarray(data)
                self.comm.Bcast(tmp, root=0)
                data[...] = tmp

    def batch_moments(self, x, axes):
        """Mean and (biased) variance of ``x`` over ``axes`` and over every rank's
        batch, as Tensors with kept dims; differentiable (BatchNormalization(synchronized=True))."""
        from .sync_batchnorm import GlobalMoments
        from .. import functional as F
        stacked = GlobalMoments.apply(x, axes=tuple(axes), strategy=self)
        return F.getitem(stacked, 0), F.getitem(stacked, 1)


def _metric_objects(model):
    """Every Metric the model updates: the loss tracker(s), the compiled
    metrics (flattening containers), and Metric attributes."""
    from ..metrics import Metric
    found, seen = [], set()

    def add(obj):
        if isinstance(obj, Metric):
            if id(obj) not in seen:
                seen.add(id(obj))
                found.append(obj)
        elif isinstance(obj, (list, tuple)) or (obj is not None and hasattr(obj, "__iter__")
                                                 and not isinstance(obj, (str, bytes, dict, np.ndarray))):
            for item in obj:
                add(item)
    add(getattr(model, "_loss_tracker", None))
    add(list(getattr(model, "_output_loss_trackers", None) or []))
    add(list(getattr(model, "compiled_metrics", None) or []))
    for value in vars(model).values():
        add(value if isinstance(value, Metric) else None)
    return found


_STATE_KEYS = {}


def _state_keys(metric):
    """Names of the attributes a metric's ``reset_state`` (re)creates: its
    accumulated state (sums, counts, confusion counts), as opposed to its
    configuration (thresholds, k). Found by resetting a copy whose numeric
    attributes are replaced by fresh objects and seeing which ones reset replaced."""
    cached = _STATE_KEYS.get(type(metric))
    if cached is not None:
        return cached
    probe = copy.copy(metric)
    markers = {}
    for key, value in vars(metric).items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (float, int, np.floating, np.integer)):
            markers[key] = _Marker(value)
        elif isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
            markers[key] = value.copy()
        else:
            continue
        setattr(probe, key, markers[key])
    probe.reset_state()
    keys = sorted(k for k, mark in markers.items() if getattr(probe, k) is not mark)
    if not keys:
        raise TypeError(f"DataParallel: cannot find the state of metric {metric.name!r} "
                        f"({type(metric).__name__}): reset_state() must assign its numeric state attributes")
    _STATE_KEYS[type(metric)] = keys   # reset_state assigns the same attributes for every instance of a class
    return keys


class _Marker(float):
    """A float with its own identity, so the probe can tell it was replaced."""


class FitSession:
    """Everything one ``fit`` call needs under DataParallel; created by the
    strategy and asked by the loop at a handful of points."""

    def __init__(self, strategy, model):
        self.strategy, self.model, self.comm = strategy, model, strategy.comm
        self.rank, self.world_size = strategy.rank, strategy.world_size
        self.local_n = 1
        self.active = False
        self.batch_logs = True
        self._buffer = None
        self._check_losses(model)

    def _check_losses(self, model):
        for loss in getattr(model, "_losses", []):
            reduction = getattr(loss, "reduction", "sum_over_batch_size")
            if reduction not in ("sum_over_batch_size", "mean"):
                raise ValueError(
                    f"fit under DataParallel: loss {getattr(loss, 'name', loss)!r} has reduction={reduction!r}; "
                    "only 'sum_over_batch_size' (the mean over the batch) is supported, because the global "
                    "batch's loss is then the sample-weighted mean of the ranks' losses")

    # ------------------------------------------------------------ start / end
    def begin(self, model, xs, verbose, callbacks, **loop):
        """Check that every rank runs the same loop (``loop``: steps, epochs,
        shuffle ... as keywords; a mismatch would leave ranks waiting in different
        collectives), settle the callbacks (see ``_callbacks``), build the weights
        if needed, broadcast rank 0's weights and optimizer state, and route the
        optimizer's gradients through the allreduce. Returns (verbose, callbacks)
        for this rank."""
        need, verbose, callbacks = self._callbacks(verbose, callbacks)
        signature = tuple(sorted(loop.items())) + (("samples", None if xs is None else len(xs[0])),)
        everyone = self.comm.allgather((signature, need))
        if any(sig != everyone[0][0] for sig, _ in everyone):
            raise ValueError("fit under DataParallel: the ranks disagree on the training loop: "
                             + "; ".join(f"rank {r}: {dict(sig)}" for r, (sig, _) in enumerate(everyone))
                             + ". Every rank must call fit with the same data size and arguments")
        # Callbacks may differ per rank (the Horovod idiom adds some on rank 0 only): agree.
        self.batch_logs = any(n for _, n in everyone)
        if not model.weights:
            if xs is None:
                raise ValueError(f"fit under DataParallel: model {model.name!r} has no weights yet and x is an "
                                 "iterable of batches; build it first (e.g. model(x[:1]) or an Input layer) so "
                                 "rank 0's weights can be broadcast before the first step")
            from ..autograd import no_grad
            with no_grad():
                model._forward([v[:1] for v in xs], training=False)
        self.strategy.broadcast_weights(model.weights)
        self._broadcast_optimizer(model)
        self._wrap_optimizer(model.optimizer)
        self.active = True
        return verbose, callbacks

    def _broadcast_optimizer(self, model):
        opt = model.optimizer
        state = self.comm.bcast(opt.get_state() if self.rank == 0 and opt.built else None, root=0)
        if state is None:
            if opt.built:  # rank 0's optimizer is fresh and this one is not: start fresh here too
                opt.set_state([np.array(0, np.int64)] + [np.full(np.shape(v.data), init, v.data.dtype)
                                                         for _, init in opt._slot_specs() for v in opt._variables])
            return
        if not opt.built:
            opt.build(model.trainable_weights)
        opt.set_state(state)

    def _wrap_optimizer(self, opt):
        original = vars(opt).get("apply_gradients")
        original = getattr(original, "_dp_original", None) or type(opt).apply_gradients.__get__(opt)
        session = self

        def apply_gradients(grads_and_vars):
            # Inert once fit ended, and also if fit was left by an exception the
            # script caught and the distribution was then switched off.
            if not session.active or _parallel.active() is not session.strategy:
                return original(grads_and_vars)
            return original(session.allreduce_gradients(list(grads_and_vars)))
        apply_gradients._dp_original = original
        opt.apply_gradients = apply_gradients
        self._optimizer = opt

    def end(self):
        """Stop routing gradients: the optimizer is the plain local one again."""
        self.active = False
        opt = getattr(self, "_optimizer", None)
        if opt is not None and "apply_gradients" in vars(opt):
            del opt.apply_gradients
        self.strategy.step_scale = 1.0

    # ------------------------------------------------------------ batches
    def permutation(self, n):
        """The epoch's shuffle, identical on every rank: rank 0 draws it from pynn's
        generator exactly as one process would; the others replay rank 0's
        generator state (broadcast: a few hundred bytes) without advancing their own."""
        from ..random import generator
        with self.strategy._cpu_in_mpi():
            state = self.comm.bcast(generator().bit_generator.state if self.rank == 0 else None, root=0)
        if self.rank == 0:
            return generator().permutation(n)
        bitgen = getattr(np.random, state["bit_generator"])()
        bitgen.state = state
        return np.random.Generator(bitgen).permutation(n)

    def local(self, idx, n):
        """This rank's part of the global batch ``idx`` (an index array or a slice
        of range(n)); records its share for the gradient scaling."""
        if isinstance(idx, slice):
            start, stop, _ = idx.indices(n)
            lo, hi = split(stop - start, self.world_size, self.rank)
            self._set_share(hi - lo, stop - start)
            return slice(start + lo, start + hi)
        lo, hi = split(len(idx), self.world_size, self.rank)
        self._set_share(hi - lo, len(idx))
        return idx[lo:hi]

    def shard_batches(self, batches_of):
        """Wrap a per-epoch batch source whose batches are global: yield this rank's slices."""
        def sharded(epoch):
            for xb, yb, swb in batches_of(epoch):
                lo, hi = split(len(xb[0]), self.world_size, self.rank)
                self._set_share(hi - lo, len(xb[0]))
                yield [v[lo:hi] for v in xb], [v[lo:hi] for v in yb], None if swb is None else swb[lo:hi]
        return sharded

    def _set_share(self, local_n, global_n):
        self.local_n = local_n
        self.strategy.step_scale = local_n / global_n if global_n else 0.0

    # ------------------------------------------------------------ gradients
    def allreduce_gradients(self, pairs):
        """Scale this rank's gradients by its share of the global batch, sum them
        over the ranks in one flat buffer, and hand back views of the sum."""
        live = [(g, v) for g, v in pairs if g is not None]
        if not live:
            return pairs
        dtype = np.result_type(*[np.asarray(g).dtype for g, _ in live])
        total = sum(int(np.size(g)) for g, _ in live)
        if self._buffer is None or self._buffer.size != total or self._buffer.dtype != dtype:
            self._buffer = np.empty(total, dtype)
        buf, scale = self._buffer, self.strategy.step_scale
        views, offset = [], 0
        for g, _ in live:
            g = np.asarray(g)
            view = buf[offset:offset + g.size].reshape(g.shape)
            offset += g.size
            if self.local_n:
                np.multiply(g, scale, out=view, casting="unsafe")
            else:
                view[...] = 0  # no samples here: contribute nothing (never NaN * 0)
            views.append(view)
        t, c = time.perf_counter(), time.process_time()
        self.comm.Allreduce(self.strategy._MPI.IN_PLACE, buf)
        stats = self.strategy.stats
        stats["allreduce_seconds"] += time.perf_counter() - t
        stats["collective_cpu_seconds"] += time.process_time() - c
        stats["allreduce_calls"] += 1
        stats["allreduce_bytes"] += buf.nbytes
        out, it = [], iter(views)
        for g, v in pairs:
            out.append((None, v) if g is None else (next(it), v))
        return out

    # ------------------------------------------------------------ logs and callbacks
    def _callbacks(self, verbose, callbacks):
        """Rank 0 keeps everything; the other ranks train silently and do not
        write files (no progress bar, ModelCheckpoint or CSVLogger).

        Also says whether this rank needs global per-batch logs: when some
        callback reads them (it overrides on_train_batch_end, e.g.
        TerminateOnNaN) or rank 0 draws a live progress bar on a terminal
        (``begin`` makes the answer common). Otherwise the metric states are
        reduced once per epoch, and a step costs a single (gradient) allreduce."""
        from ..callbacks import Callback, CSVLogger, History, ModelCheckpoint, ProgbarLogger
        callbacks = list(callbacks or [])

        def reads_batch_logs(cb):
            if isinstance(cb, (History, ProgbarLogger)):
                return False
            return "on_train_batch_end" in vars(cb) or type(cb).on_train_batch_end is not Callback.on_train_batch_end
        need = any(reads_batch_logs(cb) for cb in callbacks)
        if self.rank == 0 and verbose == 1:
            need = need or bool(getattr(sys.stdout, "isatty", lambda: False)())
        if self.rank == 0:
            return need, verbose, callbacks
        kept = [cb for cb in callbacks if not isinstance(cb, (ModelCheckpoint, CSVLogger, ProgbarLogger))]
        return need, 0, kept

    def logs(self, model, logs):
        """The step's logs for the batch callbacks: global when some callback reads them."""
        return self.strategy.reduce_logs(model, logs) if self.batch_logs else logs

    def end_epoch(self, model, epoch_logs):
        """The epoch's global logs; and every rank gets rank 0's non-trainable
        weights (per-rank BatchNormalization statistics), so validation,
        checkpoints and the next epoch see one model."""
        if not self.batch_logs:
            epoch_logs = self.strategy.reduce_logs(model, epoch_logs)
        trainable = {id(w) for w in model.trainable_weights}
        with self.strategy._cpu_in_mpi():
            self.strategy.broadcast_weights([w for w in model.weights if id(w) not in trainable])
        return epoch_logs
