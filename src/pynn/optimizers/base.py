"""Optimizer base class: build (state slots), apply_gradients (clip -> fused
multi-tensor kernel of the active backend -> constraints), state, config."""
from __future__ import annotations

import math
import numbers

import numpy as np

from pynn import _alignment, _weights_epoch, backend as _backend
from . import schedules as _schedules


class _LearningRate(float):
    """The current learning rate as a float that also has Keras' variable
    methods: ``opt.learning_rate.assign(1e-4)`` sets it, ``.numpy()`` reads it."""

    def __new__(cls, value, optimizer):
        self = super().__new__(cls, value)
        self._optimizer = optimizer
        return self

    def assign(self, value):
        self._optimizer.learning_rate = float(value)

    def numpy(self):
        return np.float32(self)


class Optimizer:
    """Base class. Subclasses set ``_slot_specs()`` and ``_update(...)``.

    Common kwargs (Keras): ``clipnorm`` (clip each gradient to this L2 norm),
    ``clipvalue`` (clip each element to [-v, v]), ``global_clipnorm`` (scale all
    gradients so their joint L2 norm is at most this). At most one may be set.
    ``learning_rate`` is a float or a schedule (callable on the step); reading
    ``opt.learning_rate`` gives the current value, assigning replaces it.

    Example:
        >>> opt = pynn.optimizers.SGD(learning_rate=0.1)      # every optimizer is an Optimizer
        >>> w = pynn.layers.Variable(np.ones(2, np.float32))
        >>> _ = opt.apply([np.ones(2, np.float32)], [w])
        >>> w.numpy()
        array([0.9, 0.9], dtype=float32)
    """

    def __init_subclass__(cls, **kwargs):
        # Every _update writes the weights in place, whoever calls it (apply_gradients or a
        # training loop that calls it directly): first move the weights epoch, so inference
        # plans rebuild and release the arrays they froze (pynn._weights_epoch).
        super().__init_subclass__(**kwargs)
        update = cls.__dict__.get("_update")
        if update is not None and not getattr(update, "_bumps_epoch", False):
            def _update(self, *args, **kw):
                _weights_epoch.bump()
                return update(self, *args, **kw)
            _update.__doc__, _update.__name__, _update._bumps_epoch = update.__doc__, "_update", True
            cls._update = _update

    def __init__(self, learning_rate, name=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
        self.name = name or type(self).__name__.lower()
        self._learning_rate = self._check_lr(learning_rate)
        for arg, val in (("clipnorm", clipnorm), ("clipvalue", clipvalue), ("global_clipnorm", global_clipnorm)):
            if val is not None:
                self._check(arg, val, lo=0.0)
        if sum(x is not None for x in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"{type(self).__name__}: only one of clipnorm, clipvalue and global_clipnorm "
                             f"can be set, got clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.iterations = 0
        self.built = False
        self._variables = []
        self._index = {}
        self._slots = {}

    # ------------------------------------------------------------ validation
    def _check(self, arg, value, lo=None, hi=None, hi_open=False, lo_open=False):
        cls = type(self).__name__
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{cls}: {arg} must be a finite number, got {value!r}")
        if lo is not None and (value < lo or (lo_open and value == lo)):
            raise ValueError(f"{cls}: {arg} must be {'>' if lo_open else '>='} {lo}, got {value}")
        if hi is not None and (value > hi or (hi_open and value == hi)):
            raise ValueError(f"{cls}: {arg} must be {'<' if hi_open else '<='} {hi}, got {value}")
        return float(value)

    def _check_lr(self, lr):
        if isinstance(lr, _schedules.LearningRateSchedule) or (callable(lr) and not isinstance(lr, numbers.Real)):
            return lr
        return self._check("learning_rate", lr, lo=0.0)

    # ------------------------------------------------------------ learning rate
    @property
    def learning_rate(self) -> float:
        lr = self._learning_rate
        if callable(lr):
            return float(lr(self.iterations))
        return _LearningRate(lr, self)

    @learning_rate.setter
    def learning_rate(self, value):
        self._learning_rate = self._check_lr(value)

    # ------------------------------------------------------------ state
    def _slot_specs(self):
        """[(slot_name, initial_value)] for the options in use, in state order."""
        return []

    def build(self, variables):
        """Create the state slots for ``variables`` (in this order)."""
        variables = list(variables)
        if self.built:
            raise ValueError(f"{type(self).__name__}.build: already built on {len(self._variables)} variables")
        self._variables = variables
        self._index = {id(v): i for i, v in enumerate(variables)}
        if len(self._index) != len(variables):
            raise ValueError(f"{type(self).__name__}.build: the same variable appears twice")
        # Each slot a different offset from its variable within the page (pynn._alignment: a fused
        # step streaming them side by side otherwise stalls on 4K aliasing).
        self._slots = {name: [_alignment.staggered_full(np.asarray(v.data), j + 1, init) for v in variables]
                       for j, (name, init) in enumerate(self._slot_specs())}
        self.built = True

    def get_state(self):
        """[iterations, then every slot (all variables of slot 1, then slot 2, ...)], copies."""
        out = [np.array(self.iterations, dtype=np.int64)]
        for name, _ in self._slot_specs():
            out.extend(s.copy() for s in self._slots.get(name, []))
        return out

    def set_state(self, state):
        """Restore what ``get_state`` returned (the optimizer must be built on matching variables)."""
        cls = type(self).__name__
        if not self.built:
            raise ValueError(f"{cls}.set_state: build the optimizer on its variables first")
        state = list(state)
        slots = [s for name, _ in self._slot_specs() for s in self._slots[name]]
        if len(state) != 1 + len(slots):
            raise ValueError(f"{cls}.set_state: expected {1 + len(slots)} arrays, got {len(state)}")
        it = np.asarray(state[0])
        # iterations feeds bias corrections (1 - beta**t) and schedules: -1 or 2.5 would make
        # the next fit divide by zero or step with a wrong rate.
        if it.shape != () or it.dtype.kind not in "iu" or int(it) < 0:
            raise ValueError(f"{cls}.set_state: iterations (array 0) must be a non-negative integer scalar, "
                             f"got {it.dtype} array of shape {it.shape}" + (f" = {int(it)}" if it.shape == () and it.dtype.kind in "iu" else ""))
        for i, (dst, src) in enumerate(zip(slots, state[1:])):
            src = np.asarray(src)
            if src.shape != dst.shape:
                raise ValueError(f"{cls}.set_state: array {i + 1} has shape {src.shape}, expected {dst.shape}")
            if src.dtype.kind != "f":
                raise ValueError(f"{cls}.set_state: array {i + 1} has dtype {src.dtype}, expected a float array")
        for dst, src in zip(slots, state[1:]):
            np.copyto(dst, src)
        self.iterations = int(np.asarray(state[0]))

    # ------------------------------------------------------------ update
    def _clip(self, grads):
        if self.clipvalue is not None:
            c = self.clipvalue
            return [np.clip(g, -c, c) for g in grads]
        if self.clipnorm is not None:
            out = []
            for g in grads:
                norm = math.sqrt(float(np.sum(np.square(g, dtype=np.float64))))
                out.append(g * (self.clipnorm / norm) if norm > self.clipnorm else g)
            return out
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
            if norm > self.global_clipnorm:
                scale = self.global_clipnorm / norm
                return [g * scale for g in grads]
        return grads

    def apply(self, grads, trainable_variables=None):
        """Keras 3's form: one step with ``grads`` for ``trainable_variables``
        (default: the variables the optimizer was built on)."""
        if trainable_variables is None:
            if not self.built:
                raise ValueError(f"{type(self).__name__}.apply: pass trainable_variables (the optimizer is not "
                                 "built on any variables yet)")
            trainable_variables = self._variables
        grads, trainable_variables = list(grads), list(trainable_variables)
        if len(grads) != len(trainable_variables):
            raise ValueError(f"{type(self).__name__}.apply: {len(grads)} gradients for "
                             f"{len(trainable_variables)} variables")
        return self.apply_gradients(zip(grads, trainable_variables))

    def apply_gradients(self, grads_and_vars):
        """Apply one step for each (gradient, variable); None gradients are skipped."""
        cls = type(self).__name__
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not self.built:
            self.build([v for _, v in pairs])
        idx, grads, params = [], [], []
        for g, v in pairs:
            i = self._index.get(id(v))
            if i is None:
                raise ValueError(f"{cls}.apply_gradients: variable {getattr(v, 'name', v)!r} was not in the "
                                 f"variables this optimizer was built on")
            g = g.data if hasattr(g, "data") and not isinstance(g, np.ndarray) else np.asarray(g)
            if g.shape != np.shape(v.data):
                raise ValueError(f"{cls}.apply_gradients: gradient of shape {g.shape} for variable "
                                 f"{getattr(v, 'name', '?')!r} of shape {np.shape(v.data)}")
            idx.append(i)
            grads.append(g)
            params.append(v.data)
        if not pairs:
            return self.iterations
        grads = self._clip(grads)
        slots = {name: [self._slots[name][i] for i in idx] for name, _ in self._slot_specs()}
        # _update moves the weights epoch before it writes (see __init_subclass__).
        self._update(_backend.current(), params, grads, slots, self.learning_rate, self.iterations + 1)
        self.iterations += 1
        for _, v in pairs:
            c = getattr(v, "constraint", None)
            if c is not None:
                v.data[...] = c(v.data)   # after _update's bump: no plan holds v frozen
        return self.iterations

    def _update(self, kernels, params, grads, slots, lr, step):
        raise NotImplementedError

    # ------------------------------------------------------------ config
    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, _schedules.LearningRateSchedule):
            lr = _schedules.serialize(lr)
        return {"name": self.name, "learning_rate": lr, "clipnorm": self.clipnorm,
                "clipvalue": self.clipvalue, "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = _schedules.deserialize(lr)
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(learning_rate={self._learning_rate!r})"
